"""Untrusted model files (issue #14 part 5): every bad bundle or checkpoint is refused with a clear error naming
the file and the reason, before any tensor is used. Each bad file is made here from a copy of the shipped
bundle (forensics/assets/bundle) or from a tiny model fitted in the test; nothing binary is committed."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file, save_file

import forensics.detectors as registry
from forensics.bundle import BundleError, load_bundle
from forensics.modelfiles import MAX_HEADER_BYTES, MAX_TENSORS, CheckpointError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "forensics" / "assets" / "bundle"
STARTER_IMAGE = next(iter(sorted((REPO / "forensics" / "assets" / "starter").rglob("*.jpg"))), None)

pytestmark = pytest.mark.skipif(not (SHIPPED / "bundle.json").is_file(), reason="no shipped bundle in this checkout")


# ---------------------------------------------------------------------------------------------- helpers

@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    """A private copy of the shipped bundle to corrupt."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "bundle"))


@pytest.fixture()
def spectral(bundle: Path) -> Path:
    """The shipped spectral detector's folder (small: 2 KB of weights)."""
    return bundle / "detectors" / "spectral"


def split_safetensors(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_safetensors_raw(path: Path, header: dict | list | bytes, body: bytes) -> None:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def refused(directory: Path, *patterns: str) -> str:
    """Load a detector folder, expect CheckpointError, check the message names a file there and says why."""
    with pytest.raises(CheckpointError) as info:
        registry.load(directory)
    message = str(info.value)
    assert "\n" not in message
    assert str(directory) in message, message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------------------------- safetensors header

def _bad_headers(header: dict, body: bytes) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, expected reason) for every corrupt-header case."""
    raw = json.dumps(header).encode()
    names = [k for k in header if k != "__metadata__"]
    first, second = sorted(names, key=lambda k: header[k]["data_offsets"][0])[:2]

    def with_entry(name: str, **change) -> bytes:
        h = json.loads(raw)
        h[name].update(change)
        out = json.dumps(h).encode()
        return struct.pack("<Q", len(out)) + out + body

    end = header[first]["data_offsets"][1]
    return {
        "empty file": (b"", r"file is 0 bytes"),
        "length prefix only": (struct.pack("<Q", 10), r"file is 8 bytes|invalid header length"),
        "length prefix too small": (struct.pack("<Q", 3) + raw + body, r"invalid JSON"),
        "length past the end": (struct.pack("<Q", len(raw) + len(body) + 100) + raw + body, r"invalid header length"),
        "header not JSON": (struct.pack("<Q", len(raw)) + b"{'" + raw[2:] + body, r"invalid JSON"),
        "header a JSON list": (struct.pack("<Q", 6) + b"[1, 2]" + body, r"invalid JSON.*sequence"),
        "offsets past the data": (with_entry(first, data_offsets=[0, len(body) + 64]),
                                  r"invalid (shape, data type, or )?offset"),
        "overlapping offsets": (with_entry(second, data_offsets=[0, header[second]["data_offsets"][1] - end]),
                                r"invalid offset"),
        "unknown dtype": (with_entry(first, dtype="Q99"), r"unknown variant `Q99`"),
        "dtype not allowed": (with_entry(first, dtype="BF16", shape=[header[first]["shape"][0] * 4]),
                              r"dtype BF16, not one of"),
        "shape vs byte size": (with_entry(first, shape=[header[first]["shape"][0] + 1]), r"invalid shape"),
        "negative shape": (with_entry(first, shape=[-1]), r"invalid value"),
        "huge declared shape": (with_entry(first, shape=[2**40, 2**40]), r"overflow computing buffer size"),
        "shape overflowing u64": (with_entry(first, shape=[2**62, 16]), r"overflow computing buffer size"),
        "truncated data": (struct.pack("<Q", len(raw)) + raw + body[:-8], r"not fully covered"),
        "trailing bytes": (struct.pack("<Q", len(raw)) + raw + body + b"\0" * 8, r"not fully covered"),
    }


def test_every_corrupt_safetensors_header_is_refused_naming_file_and_reason(spectral: Path) -> None:
    weights = spectral / "weights.safetensors"
    header, body = split_safetensors(weights)
    pristine = weights.read_bytes()
    cases = _bad_headers(header, body)
    assert len(cases) == 16
    for case, (data, reason) in cases.items():
        weights.write_bytes(data)
        message = refused(spectral, reason)
        assert "weights.safetensors" in message, (case, message)
    weights.write_bytes(pristine)
    assert registry.load(spectral).n_features_in_ == 64  # the pristine copy still loads: the checks are not too strict


def test_a_huge_header_is_refused_from_its_length_prefix_before_it_is_read(spectral: Path) -> None:
    weights = spectral / "weights.safetensors"
    size = 100 * 1024 * 1024  # a 100 MB header: the library's own limit is 100_000_000 bytes, ours 16 MiB
    with weights.open("wb") as fh:
        fh.write(struct.pack("<Q", size) + b"{")
        fh.truncate(8 + size + 16)  # sparse: the test writes 9 bytes, not 100 MB
    refused(spectral, rf"header of {size} bytes exceeds the {MAX_HEADER_BYTES}-byte bound", "refused before reading")


def test_more_tensors_than_the_bound_are_refused(spectral: Path) -> None:
    header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(MAX_TENSORS + 1)}
    write_safetensors_raw(spectral / "weights.safetensors", header, b"")
    refused(spectral, rf"{MAX_TENSORS + 1} tensors exceed the bound")


# ---------------------------------------------------------------------------------------------- pickles

class _Exploit:
    marker = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("kind", ["pickle", "torch-zip", "torch-legacy"])
def test_a_pickle_where_safetensors_is_expected_is_refused_and_never_run(spectral: Path, tmp_path: Path,
                                                                        kind: str) -> None:
    import torch

    marker = tmp_path / "pwned"
    _Exploit.marker = str(marker)
    weights = spectral / "weights.safetensors"
    payload = {"attr.coef_": _Exploit()}
    if kind == "pickle":
        weights.write_bytes(pickle.dumps(payload, protocol=4))
        reason = r"it is a pickle, protocol 4"
    else:
        torch.save(payload, weights, _use_new_zipfile_serialization=kind == "torch-zip")
        reason = "zip archive" if kind == "torch-zip" else r"it is a pickle, protocol 2"
    refused(spectral, "not a safetensors file", "never unpickled", reason)
    assert not marker.exists()


def test_pickle_formats_by_name_are_refused(spectral: Path) -> None:
    weights = spectral / "weights.safetensors"
    weights.rename(spectral / "weights.pt")
    refused(spectral, r"weights.safetensors: missing", r"'weights.pt'", "never unpickled")
    from forensics.modelfiles import read_safetensors

    with pytest.raises(CheckpointError, match=r"weights\.pt: pickle-based checkpoint formats \(\.pt\) are refused"):
        read_safetensors(spectral / "weights.pt")
    (spectral / "config.json").write_bytes(pickle.dumps({"format": "forensics-detector/1"}))
    refused(spectral, r"config.json: not JSON, it is a pickle")


def test_no_unsafe_deserialiser_in_the_library() -> None:
    """torch.load only with weights_only=True; no pickle, joblib, dill, np.load(allow_pickle) in the code."""
    offenders = []
    for folder in ("forensics", "generators"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for no, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if re.search(r"\btorch\.load\(", code) and "weights_only=True" not in code:
                    offenders.append(f"{path}:{no}: {line.strip()}")
                if re.search(r"^\s*(import|from)\s+(pickle|cPickle|joblib|dill|cloudpickle|shelve)\b", code):
                    offenders.append(f"{path}:{no}: {line.strip()}")
                if re.search(r"allow_pickle\s*=\s*True|pd\.read_pickle|\.to_pickle\(", code):
                    offenders.append(f"{path}:{no}: {line.strip()}")
    assert offenders == []


# ---------------------------------------------------------------------------------------------- config vs weights

def test_a_config_that_lies_about_shapes_is_refused_naming_what_disagrees(spectral: Path, bundle: Path) -> None:
    cfg = spectral / "config.json"
    pristine = cfg.read_text()
    h, w = json.loads(pristine)["fitted"]["image_size_"]  # the shipped bundle's face size
    edit_json(cfg, lambda c: c["params"].update(n_bins=32))  # the weights are 64 bins
    refused(spectral, rf"n_features_in_ is 64 but the spectral features at {h}x{w} have 32")
    cfg.write_text(pristine)
    edit_json(cfg, lambda c: c["params"].update(n_bins=32) or c["fitted"].update(n_features_in_=32))
    refused(spectral, r"tensor 'attr.scaler_mean_' has shape \[64\] but a spectral head on 32 features needs \[32\]")
    cfg.write_text(pristine)
    dct = bundle / "detectors" / "dct"
    fitted = json.loads((dct / "config.json").read_text())["fitted"]
    gray, (h, w) = fitted["n_features_in_"], fitted["image_size_"]  # one gray coefficient per pixel
    edit_json(dct / "config.json", lambda c: c["params"].update(channels="rgb"))
    refused(dct, rf"n_features_in_ is {gray} but the dct features at {h}x{w} have {3 * gray}")
    edit_json(dct / "config.json", lambda c: c["params"].update(channels="cmyk"))
    refused(dct, r"bad hyperparameters.*channels")


def test_weights_that_disagree_with_the_config_are_refused(spectral: Path) -> None:
    weights = spectral / "weights.safetensors"
    arrays = load_file(str(weights))
    pristine = dict(arrays)
    save_file({**arrays, "attr.scaler_mean_": arrays["attr.scaler_mean_"][:32]}, str(weights))
    refused(spectral, r"tensor 'attr.scaler_mean_' has shape \[32\] but a spectral head on 64 features needs \[64\]")
    save_file({k: v for k, v in pristine.items() if k != "attr.platt_"}, str(weights))
    refused(spectral, r"missing tensor\(s\) \['attr.platt_'\]")
    save_file({**pristine, "attr.bonus_": np.zeros(3)}, str(weights))
    refused(spectral, r"unexpected tensor\(s\) \['attr.bonus_'\]")
    save_file({**pristine, "sneaky": np.zeros(3)}, str(weights))
    refused(spectral, r"unexpected tensor 'sneaky'")
    save_file({**pristine, "attr.scaler_scale_": np.zeros(64)}, str(weights))
    refused(spectral, r"scaler_scale_' has entries <= 0")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_not_warned_about(spectral: Path, bad: float) -> None:
    weights = spectral / "weights.safetensors"
    arrays = load_file(str(weights))
    arrays["attr.coef_"][5] = bad
    save_file(arrays, str(weights))
    refused(spectral, r"tensor 'attr.coef_' holds NaN or infinite values; refused")


def test_bad_json_configs_are_refused(spectral: Path) -> None:
    cfg = spectral / "config.json"
    pristine = json.loads(cfg.read_text())
    for text, reason in [
        ("[1, 2, 3]", r"must be a JSON object, got list"),
        ("{\"format\": ", r"not valid JSON"),
        (json.dumps({k: v for k, v in pristine.items() if k != "fitted"}), r"lacks \['fitted'\]"),
        (json.dumps({**pristine, "fitted": [1]}), r"'fitted' must be a JSON object"),
        (json.dumps({**pristine, "detector": "spectrall"}), r"config.json: .*spectral"),
        (json.dumps({**pristine, "params": {**pristine["params"], "evil": 1}}), r"unknown hyperparameters \['evil'\]"),
        (json.dumps({**pristine, "fitted": {**pristine["fitted"], "predict_proba": 1}}),
         r"\['predict_proba'\] are not fitted attributes"),
        (json.dumps({**pristine, "fitted": {**pristine["fitted"], "threshold_": float("nan")}}),
         r"threshold_ is nan; refused"),
        (json.dumps({**pristine, "fitted": {**pristine["fitted"], "image_size_": [64, 10**9]}}),
         r"image_size_ must be 2 integers"),
    ]:
        cfg.write_text(text)
        refused(spectral, reason)
    with cfg.open("wb") as fh:  # a 17 MB "config"
        fh.truncate(17 * 1024 * 1024)
    refused(spectral, r"too large for a JSON")


def test_the_cnn_refuses_an_unknown_architecture_and_a_state_dict_that_does_not_fit(bundle: Path) -> None:
    cnn = bundle / "detectors" / "cnn"
    cfg = cnn / "config.json"
    pristine = cfg.read_text()
    edit_json(cfg, lambda c: c["params"].update(model_name="efficientnet_lite9000"))
    refused(cnn, r"model_name 'efficientnet_lite9000' is not a timm architecture")
    cfg.write_text(pristine)
    edit_json(cfg, lambda c: c["params"].update(model_name="resnet10t", weights="scratch"))
    refused(cnn, r"missing tensor\(s\) \['extra\.model\.conv1\.0\.weight'", "timm resnet10t")
    cfg.write_text(pristine)
    weights = cnn / "weights.safetensors"
    arrays = load_file(str(weights))
    arrays["extra.model.classifier.weight"] = np.zeros((2, 1280), np.float32)
    save_file(arrays, str(weights))
    refused(cnn, r"tensor 'extra\.model\.classifier\.weight' has shape \[2, 1280\] but timm efficientnet_lite0 "
                 r"with one output needs \[1, 1280\]")


# ---------------------------------------------------------------------------------------------- bundles

def bundle_refused(root: Path, *patterns: str) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(root)
    message = str(info.value)
    assert "\n" not in message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    return message


def test_bundle_paths_and_symlinks_must_stay_inside_the_bundle(bundle: Path, tmp_path: Path) -> None:
    meta = bundle / "bundle.json"
    pristine = meta.read_text()
    for path in ("../../etc", "/etc", "detectors/../../bundle-elsewhere", ".", ""):
        edit_json(meta, lambda m: m["detectors"][0].update(path=path))
        bundle_refused(bundle, rf"detector path {re.escape(repr(path))} leaves the bundle")
        meta.write_text(pristine)
    outside = Path(shutil.copytree(bundle / "detectors" / "spectral", tmp_path / "elsewhere"))
    cfg = bundle / "detectors" / "spectral" / "config.json"
    cfg.unlink()
    cfg.symlink_to(outside / "config.json")
    bundle_refused(bundle, r"spectral/config.json: a symlink leading out of the bundle", "elsewhere")
    cfg.unlink()
    shutil.copy(outside / "config.json", cfg)
    shutil.rmtree(bundle / "detectors" / "dct")
    (bundle / "detectors" / "dct").symlink_to(outside, target_is_directory=True)
    bundle_refused(bundle, r"detectors/dct: a symlink leading out of the bundle")
    (bundle / "detectors" / "dct").unlink()
    (bundle / "loop").symlink_to(bundle / "loop")
    bundle_refused(bundle, r"loop: a symlink leading out of the bundle")


def test_bundle_records_that_lie_are_refused(bundle: Path) -> None:
    meta = bundle / "bundle.json"
    pristine = meta.read_text()
    cases = [
        (lambda m: m["fusion"]["coef"].__setitem__(0, float("nan")), r"fusion\.coef\[0\] is nan; refused"),
        (lambda m: m["detectors"][1]["calibration"].update(coef_=float("inf")),
         r"detectors\[1\]\.calibration\.coef_ is inf"),
        (lambda m: m["detectors"][2].pop("path"), r"each detectors entry needs a string name and path"),
        (lambda m: m.pop("fusion"), r"bundle record lacks \['fusion'\]"),
        (lambda m: m.update(detectors={}), r"'detectors' must be a non-empty list"),
        (lambda m: m["detectors"][2]["decision"].update(low=0.9, high=0.1), r"decision band needs"),
    ]
    for edit, reason in cases:
        edit_json(meta, edit)
        bundle_refused(bundle, "bundle.json", reason)
        meta.write_text(pristine)
    meta.write_text("[\"a bundle\"]")
    bundle_refused(bundle, r"bundle.json: the bundle record must be a JSON object, got list")


def test_a_bundle_with_a_corrupt_detector_names_the_detector_and_the_file(bundle: Path) -> None:
    weights = bundle / "detectors" / "cnn" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:9] = b"["  # the header's opening brace
    weights.write_bytes(bytes(data))
    bundle_refused(bundle, r"detector 'cnn' of bundle", re.escape(str(weights)), r"invalid JSON")


# ---------------------------------------------------------------------------------------------- other loaders

def test_generator_checkpoints_refuse_nan_weights_and_lying_records(tmp_path: Path) -> None:
    import torch

    import generators
    from generators.checkpoint import load_generator, save_generator

    torch.manual_seed(0)
    folder = tmp_path / "ck"
    model = generators.create("stylegan2", "tiny")
    save_generator(folder, "stylegan2", generators.resolve_config("stylegan2", "tiny"), model, {"steps": 0})
    assert load_generator(folder).name == "stylegan2"
    record = (folder / "model.json").read_text()
    edit_json(folder / "model.json", lambda m: m.update(generator="stylegan9"))
    with pytest.raises(CheckpointError, match=r"model.json: cannot build generator 'stylegan9'"):
        load_generator(folder)
    (folder / "model.json").write_text("[]")
    with pytest.raises(CheckpointError, match=r"model.json: the checkpoint record must be a JSON object"):
        load_generator(folder)
    (folder / "model.json").write_text(record)
    edit_json(folder / "model.json", lambda m: m.pop("config"))
    with pytest.raises(CheckpointError, match=r"'config' must be a JSON dict"):
        load_generator(folder)
    (folder / "model.json").write_text(record)
    with torch.no_grad():
        next(iter(model.parameters())).view(-1)[0] = float("nan")
    save_generator(folder, "stylegan2", generators.resolve_config("stylegan2", "tiny"), model, {"steps": 0})
    with pytest.raises(CheckpointError, match=r"model.safetensors: tensor '.*' holds NaN or infinite values"):
        load_generator(folder)


def test_the_video_fusion_model_and_the_attributor_check_shapes_against_their_config(tmp_path: Path) -> None:
    from forensics.attribution import GeneratorAttributor
    from forensics.video.fusion import FusionModel

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.random(40), "b": rng.random(40)})
    labels = np.r_[np.zeros(20), np.ones(20)]
    FusionModel(["a", "b"]).fit(table, labels).save(tmp_path / "fusion")
    edit_json(tmp_path / "fusion" / "config.json", lambda c: c["inputs"].append("c"))
    with pytest.raises(CheckpointError, match=r"weights.safetensors: tensor 'mean' has shape \[2\] but a fusion head "
                                              r"on 3 inputs needs \[3\]"):
        FusionModel.load(tmp_path / "fusion")

    images = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    names = np.repeat(["real", "gan_a", "gan_b"], 10)
    GeneratorAttributor(features="spectral", C=1.0).fit(images, names).save(tmp_path / "att")
    assert GeneratorAttributor.load(tmp_path / "att").n_features_in_ == 64
    edit_json(tmp_path / "att" / "config.json", lambda c: c["fitted"]["classes_"].append("gan_c"))
    with pytest.raises(CheckpointError, match=r"tensor 'coef_' has shape \[3, 64\] but an attributor of 4 classes"):
        GeneratorAttributor.load(tmp_path / "att")
    edit_json(tmp_path / "att" / "config.json", lambda c: c["params"].update(features="dct"))
    with pytest.raises(CheckpointError, match=r"n_features_in_ is 64 but features 'dct' at 32x32 give 1024"):
        GeneratorAttributor.load(tmp_path / "att")


# ---------------------------------------------------------------------------------------------- command line

def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "forensics", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow  # ~40 s: the scan command's start-up on a busy 2-core machine
@pytest.mark.skipif(STARTER_IMAGE is None, reason="no starter image")
def test_scan_with_a_bad_bundle_exits_2_with_one_line_and_no_traceback(bundle: Path, tmp_path: Path) -> None:
    weights = bundle / "detectors" / "dct" / "weights.safetensors"
    weights.write_bytes(pickle.dumps({"w": 1}))
    result = _cli("scan", str(STARTER_IMAGE), "--out", str(tmp_path / "out"), "--model", str(bundle),
                  "--no-progress", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "forensics scan: cannot use the model bundle" in lines[0] and str(weights) in lines[0]
    assert "never unpickled" in lines[0]


@pytest.mark.skipif(STARTER_IMAGE is None, reason="no starter image")
def test_detect_predict_with_a_bad_checkpoint_exits_2_with_one_line(spectral: Path, tmp_path: Path) -> None:
    (spectral / "weights.safetensors").write_bytes(b"\x80\x04not really")
    result = _cli("detect", "predict", str(spectral), str(STARTER_IMAGE), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(spectral / "weights.safetensors") in lines[0]


def test_the_temporal_detector_checks_its_feature_names_and_head(tmp_path: Path) -> None:
    from forensics.detectors.temporal import TemporalDetector
    from forensics.video.features import TRACK_FEATURES

    rng = np.random.default_rng(1)
    names = list(TRACK_FEATURES[:3])
    table = pd.DataFrame({n: rng.random(40) for n in names})
    TemporalDetector(features=",".join(names)).fit(table, np.r_[np.zeros(20), np.ones(20)]).save(tmp_path / "t")
    assert registry.load(tmp_path / "t").feature_names_ == names
    cfg = tmp_path / "t" / "config.json"
    edit_json(cfg, lambda c: c["params"].update(features=",".join(names + ["rm -rf"])))
    refused(tmp_path / "t", r"unknown: \['rm -rf'\]")
    edit_json(cfg, lambda c: c["params"].update(features=",".join(names + [TRACK_FEATURES[5]])))
    refused(tmp_path / "t", r"feature_names_/n_features_in_ disagree")
    edit_json(cfg, lambda c: c["fitted"].update(feature_names_=c["fitted"]["feature_names_"] + [TRACK_FEATURES[5]],
                                                n_features_in_=4))
    refused(tmp_path / "t", r"tensor 'attr.scaler_mean_' has shape \[3\] but a temporal head on 4 features needs \[4\]")
