"""`forensics detect export BUNDLE --onnx` and the onnx runtime: the record says what was made from what, and the
bundle scores the same (within 1e-4, same verdicts, same structure) on onnxruntime as on torch / numpy, for a toy
bundle with every part and for the shipped bundle as it is at test time."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from forensics.bundle import load_bundle
from forensics.runtime import select_runtime
from tests.onnx_util import SHIPPED, assert_same_scores, build_full_toy_bundle, copy_bundle, probe_faces

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The full toy bundle, exported through the CLI."""
    from forensics.cli import app

    root = build_full_toy_bundle(tmp_path_factory.mktemp("onnx") / "toy")
    result = CliRunner().invoke(app, ["detect", "export", str(root), "--onnx"])
    assert result.exit_code == 0, result.output
    return root, result.output


def test_the_export_record_names_every_file_its_hash_and_source(toy) -> None:
    import onnx
    import onnxruntime
    import torch

    from forensics.runtime.export import source_sha256

    root, output = toy
    doc = json.loads((root / "onnx" / "export.json").read_text())
    assert set(doc["models"]) == {"cnn", "dct", "spectral", "mask_head"} and doc["not_exported"] == {}
    assert doc["opset"] == 17 and doc["versions"] == {"torch": torch.__version__, "onnx": onnx.__version__,
                                                      "onnxruntime": onnxruntime.__version__}
    for name, rec in doc["models"].items():
        data = (root / "onnx" / rec["file"]).read_bytes()
        assert rec["sha256"] == hashlib.sha256(data).hexdigest() and rec["bytes"] == len(data)
        assert rec["source_sha256"] == source_sha256(root / rec["source"])
        assert all(v <= 1e-4 for v in rec["max_abs_diff"].values()), name
        assert name in output
    assert doc["models"]["cnn"]["outputs"] == {"logit": ["n"], "embedding": ["n", 1280]}
    assert doc["models"]["cnn"]["input"]["shape"] == ["n", 64, 64, 3]


def test_toy_bundle_scores_the_same_on_both_runtimes(toy) -> None:
    root, _ = toy
    bundle = load_bundle(root)
    crops = probe_faces(64)
    assert select_runtime(bundle, "torch") == "torch"
    torch_scores = bundle.score(crops)
    assert torch_scores.ood_distance is not None  # the guard's embedding is compared too
    assert select_runtime(bundle, "auto") == "onnx" and bundle.runtime == "onnx"
    assert set(bundle.predictors) == {"cnn", "dct", "spectral"} and bundle.mask_runner is not None
    onnx_scores = bundle.score(crops)
    assert_same_scores(torch_scores, onnx_scores)
    # crops of another size go through the detectors' own resize first, on both runtimes
    big = np.repeat(np.repeat(crops, 2, axis=1), 2, axis=2)  # [N,128,128,3]
    select_runtime(bundle, "torch")
    assert_same_scores(bundle.score(big), (select_runtime(bundle, "onnx"), bundle.score(big))[1])


def test_mask_head_gives_the_same_masks_on_onnx(toy) -> None:
    from forensics.evidence.mask_head import MaskHead

    root, _ = toy
    bundle = load_bundle(root)
    select_runtime(bundle, "onnx")
    head = MaskHead.load(root)
    crops = probe_faces(64, n=8)
    torch_masks = head.predict(crops)
    head.runner = bundle.mask_runner
    onnx_masks = head.predict(crops)
    assert onnx_masks.shape == torch_masks.shape == (8, 64, 64) and onnx_masks.dtype == np.float32
    assert np.max(np.abs(onnx_masks - torch_masks)) <= 1e-4
    assert np.max(np.abs(head.predict(np.repeat(np.repeat(crops, 2, 1), 2, 2)) - (
        MaskHead.load(root).predict(np.repeat(np.repeat(crops, 2, 1), 2, 2))))) <= 1e-4  # the resize path


def test_frequency_detector_variants_have_faithful_graphs(rng) -> None:
    """The graph options the shipped detectors do not use: DCT on RGB planes, spectral without min-max."""
    import onnxruntime  # noqa: F401

    from forensics.detectors import toydata
    from forensics.detectors.dct import DCTDetector
    from forensics.detectors.spectral import SpectralDetector
    from forensics.runtime.graphs import dct_graph, spectral_graph
    from forensics.runtime.session import make_session

    images = np.concatenate([toydata.real_images(rng, 20, 48), toydata.fake_images(rng, 20, 48, "nearest")])
    labels = np.array([0] * 20 + [1] * 20)
    crops = probe_faces(48, n=8)
    for det, graph in ((DCTDetector(channels="rgb", log_eps=0.5), dct_graph),
                       (SpectralDetector(n_bins=40, normalize="none"), spectral_graph),
                       (SpectralDetector(classifier="svm"), spectral_graph)):
        det.fit(images, labels)
        got = make_session(graph(det).SerializeToString(), threads=1).run(None, {"crops": crops})[0]
        assert np.max(np.abs(got - det.predict_proba(crops))) <= 1e-4, det


def test_a_detector_without_an_onnx_form_stays_on_its_own_runtime(toy, tmp_path, monkeypatch) -> None:
    from forensics.runtime import export as export_mod

    root = copy_bundle(toy[0], tmp_path / "b")
    monkeypatch.setattr(export_mod, "GRAPHS", {"dct": export_mod.GRAPHS["dct"]})  # as if spectral had none
    doc = export_mod.export_bundle(root)
    assert "spectral" in doc["not_exported"] and "spectral" not in doc["models"]
    bundle = load_bundle(root)
    assert select_runtime(bundle, "onnx") == "onnx" and "spectral" not in bundle.predictors
    crops = probe_faces(64, n=6)
    onnx_scores = bundle.score(crops)
    select_runtime(bundle, "torch")
    assert_same_scores(bundle.score(crops), onnx_scores)


def test_shipped_bundle_scores_the_same_on_both_runtimes(tmp_path) -> None:
    from forensics.runtime.export import export_bundle

    if not (SHIPPED / "bundle.json").is_file():
        pytest.skip("no shipped bundle in this checkout")
    root = copy_bundle(SHIPPED, tmp_path / "shipped")
    doc = export_bundle(root)
    bundle = load_bundle(root)
    exportable = {n for n, d in bundle.detectors.items() if d.name in ("cnn", "dct", "spectral")}
    expected = exportable | ({"mask_head"} if (root / "mask_head").is_dir() else set())
    assert set(doc["models"]) == expected, doc["not_exported"]
    assert set(doc["not_exported"]) == set(bundle.detectors) - exportable  # any other kind: named, with a reason
    crops = probe_faces(bundle.face_size, n=16)
    select_runtime(bundle, "torch")
    torch_scores = bundle.score(crops)
    assert select_runtime(bundle, "onnx") == "onnx"
    assert_same_scores(torch_scores, bundle.score(crops))
