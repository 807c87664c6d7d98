"""ONNX files in a bundle come from whoever made the bundle: each is checked before onnxruntime sees it (size,
sha256 against the record, no external data, standard operators only, the input the record names, the source it
was made from unchanged), and the runtime switch says clearly why it cannot use them."""
from __future__ import annotations

import json

import numpy as np
import pytest

from forensics.bundle import BundleError, load_bundle
from forensics.runtime import select_runtime
from tests.onnx_util import copy_bundle

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small bundle (spectral + dct) with its export."""
    from forensics.runtime.export import export_bundle
    from tests.test_scan_helpers import build_toy_bundle

    root = build_toy_bundle(tmp_path_factory.mktemp("files") / "toy", size=32)
    assert set(export_bundle(root)["models"]) == {"dct", "spectral"}
    return root


@pytest.fixture
def bundle_copy(exported, tmp_path):
    """A copy of the exported bundle, export included, for one test to damage."""
    import shutil

    return shutil.copytree(exported, tmp_path / "b")


def _record(root):
    return json.loads((root / "onnx" / "export.json").read_text())


def _write_record(root, doc) -> None:
    (root / "onnx" / "export.json").write_text(json.dumps(doc))


def _use_onnx(root):
    return select_runtime(load_bundle(root), "onnx")


def test_an_intact_export_is_used(bundle_copy) -> None:
    assert _use_onnx(bundle_copy) == "onnx"


def test_a_changed_file_is_refused(bundle_copy) -> None:
    path = bundle_copy / "onnx" / "dct.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="dct.onnx"):
        _use_onnx(bundle_copy)
    with pytest.raises(BundleError):  # auto refuses a tampered file too: it is not a stale export
        select_runtime(load_bundle(bundle_copy), "auto")


def test_an_oversized_file_is_refused_before_it_is_read(bundle_copy, monkeypatch) -> None:
    from forensics.runtime import session

    monkeypatch.setattr(session, "MAX_ONNX_BYTES", 1000)
    with pytest.raises(BundleError, match="limit 1000"):
        _use_onnx(bundle_copy)


@pytest.mark.parametrize("name", ["../dct.onnx", "/etc/passwd", "sub/dct.onnx", "dct.onnx.data", 7])
def test_a_file_name_that_is_not_a_plain_onnx_name_is_refused(bundle_copy, name) -> None:
    doc = _record(bundle_copy)
    doc["models"]["dct"]["file"] = name
    _write_record(bundle_copy, doc)
    with pytest.raises(BundleError, match="plain"):
        _use_onnx(bundle_copy)


def test_a_symlink_out_of_the_bundle_is_refused(bundle_copy, tmp_path) -> None:
    outside = tmp_path / "elsewhere.onnx"
    path = bundle_copy / "onnx" / "dct.onnx"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(BundleError, match="symlink|regular file"):
        _use_onnx(bundle_copy)


def _rewrite_model(root, name, change) -> None:
    """Change the ONNX model `name` with `change(model)` and fix its record's size and hash, as an attacker would."""
    import hashlib

    import onnx

    path = root / "onnx" / f"{name}.onnx"
    model = onnx.load_model_from_string(path.read_bytes())
    change(model)
    data = model.SerializeToString()
    path.write_bytes(data)
    doc = _record(root)
    doc["models"][name].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    _write_record(root, doc)


def test_a_tensor_kept_in_an_external_file_is_refused(bundle_copy) -> None:
    from onnx import TensorProto

    def external(model) -> None:
        t = model.graph.initializer[0]
        t.data_location = TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = "location", "../../../../etc/hostname"
        t.ClearField("raw_data")

    _rewrite_model(bundle_copy, "dct", external)
    with pytest.raises(BundleError, match="external"):
        _use_onnx(bundle_copy)


def test_a_custom_operator_domain_is_refused(bundle_copy) -> None:
    def custom(model) -> None:
        model.graph.node[0].domain = "com.example.evil"
        model.opset_import.add(domain="com.example.evil", version=1)

    _rewrite_model(bundle_copy, "spectral", custom)
    with pytest.raises(BundleError, match="domain"):
        _use_onnx(bundle_copy)


def test_an_input_other_than_the_record_says_is_refused(bundle_copy) -> None:
    doc = _record(bundle_copy)
    doc["models"]["dct"]["input"]["shape"] = ["n", 99, 99, 3]
    _write_record(bundle_copy, doc)
    with pytest.raises(BundleError, match="input"):
        _use_onnx(bundle_copy)


def test_a_record_that_is_not_an_export_record_is_refused(bundle_copy) -> None:
    (bundle_copy / "onnx" / "export.json").write_text("[1, 2]")
    with pytest.raises(BundleError):
        _use_onnx(bundle_copy)
    _write_record(bundle_copy, {"format": "something-else/9", "models": {}})
    with pytest.raises(BundleError, match="format"):
        _use_onnx(bundle_copy)


def test_a_stale_export_falls_back_to_torch_on_auto_and_fails_on_onnx(bundle_copy, capsys) -> None:
    (bundle_copy / "detectors" / "dct" / "NOTE.txt").write_text("retrained since")  # the detector folder changed
    bundle = load_bundle(bundle_copy)
    assert select_runtime(bundle, "auto") == "torch" and bundle.predictors == {}
    assert "re-run" in capsys.readouterr().err
    with pytest.raises(BundleError, match="re-run"):
        select_runtime(bundle, "onnx")


def test_without_an_export_or_onnxruntime_auto_means_torch_and_onnx_says_why(exported, tmp_path,
                                                                             monkeypatch) -> None:
    import forensics.runtime as runtime

    plain = copy_bundle(exported, tmp_path / "plain")
    bundle = load_bundle(plain)
    assert select_runtime(bundle, "auto") == "torch"
    with pytest.raises(BundleError, match="detect export"):
        select_runtime(bundle, "onnx")
    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    with_export = load_bundle(exported)
    assert select_runtime(with_export, "auto") == "torch"
    with pytest.raises(BundleError, match="onnxruntime"):
        select_runtime(with_export, "onnx")
    with pytest.raises(ValueError, match="runtime"):
        select_runtime(with_export, "tensorrt")


def test_scan_refuses_to_start_on_onnx_without_an_export(exported, tmp_path) -> None:
    from typer.testing import CliRunner

    from forensics.cli import app

    plain = copy_bundle(exported, tmp_path / "plain")
    import cv2

    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 100, np.uint8))
    result = CliRunner().invoke(app, ["scan", str(image), "--out", str(tmp_path / "out"), "--model", str(plain),
                                      "--runtime", "onnx", "--no-progress"])
    assert result.exit_code == 2 and "detect export" in result.output
    result = CliRunner().invoke(app, ["scan", str(image), "--out", str(tmp_path / "out2"), "--model", str(plain),
                                      "--runtime", "fast", "--no-progress"])
    assert result.exit_code == 2


def test_the_export_command_says_what_is_wrong(tmp_path) -> None:
    from typer.testing import CliRunner

    from forensics.cli import app

    result = CliRunner().invoke(app, ["detect", "export", str(tmp_path / "nothing"), "--onnx"])
    assert result.exit_code == 2 and "not a model bundle" in result.output
    result = CliRunner().invoke(app, ["detect", "export", str(tmp_path)])
    assert result.exit_code == 2 and "--onnx" in result.output
