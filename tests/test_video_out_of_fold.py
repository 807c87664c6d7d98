"""Out-of-fold frame scores for the video model: a fold bundle scores with the release fold's detectors (not the
shipped ones, nor an ONNX export of them), keeps the bundle's calibration, and only people a fold held out get one."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file, save_file

from tests.test_scan_helpers import build_toy_bundle


def _fake_release(root: Path, bundle: Path, folds: dict[str, int]) -> Path:
    """A release run's folder as far as the video model reads it: metrics.json's per-identity folds and each
    fold's detectors (here the bundle's, with the logistic heads negated: a fold model that scores otherwise)."""
    for fold in set(folds.values()):
        for name in ("spectral", "dct"):
            dst = root / "models" / f"fold{fold}" / name
            shutil.copytree(bundle / "detectors" / name, dst)
            arrays = load_file(dst / "weights.safetensors")
            for key in ("attr.coef_", "attr.intercept_"):
                arrays[key] = -arrays[key]
            save_file(arrays, dst / "weights.safetensors")
    (root / "metrics.json").write_text(json.dumps({"loio": {i: {"fold": f, "scorer": "dct"} for i, f in folds.items()}}))
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("oof")
    bundle = build_toy_bundle(base / "bundle")
    (bundle / "onnx").mkdir()  # an export of the shipped weights must not travel into a fold bundle
    (bundle / "onnx" / "dct.onnx").write_bytes(b"shipped weights")
    return bundle, _fake_release(base / "release", bundle, {"alice": 0})


def test_a_fold_bundle_scores_with_the_folds_detectors_under_the_bundles_calibration(tmp_path, toy) -> None:
    from forensics.bundle.model import load_bundle
    from forensics.detectors import toydata
    from forensics.video.out_of_fold import FOLD_RECORD, frame_bundles

    bundle, release = toy
    scorers = frame_bundles(bundle, release, {"alice_video": "alice", "bob_video": "bob"}, tmp_path)
    assert set(scorers) == {"alice_video"}, "only a person some fold held out gets out-of-fold frame scores"
    fold = scorers["alice_video"]
    assert not (fold / "onnx").exists()
    assert json.loads((fold / FOLD_RECORD).read_text())["identity"] == "alice"
    for name in ("spectral", "dct"):
        assert (fold / "detectors" / name / "weights.safetensors").read_bytes() == \
            (release / "models" / "fold0" / name / "weights.safetensors").read_bytes()

    crops = toydata.real_images(np.random.default_rng(5), 6, 128)
    shipped, out_of_fold = load_bundle(bundle), load_bundle(fold)
    raw_shipped = shipped.detectors["dct"].predict_proba(crops)
    raw_fold = out_of_fold.detectors["dct"].predict_proba(crops)
    assert np.abs(raw_fold - raw_shipped).max() > 0.05, "the fold bundle scored with the shipped weights"
    assert out_of_fold.meta["detectors"] == shipped.meta["detectors"], "the calibration must stay the bundle's"
    np.testing.assert_allclose(out_of_fold.score(crops).fused, shipped.calibration.apply(
        {n: d.predict_proba(crops) for n, d in out_of_fold.detectors.items()}).fused)


def test_fold_bundles_are_rewritten_not_mixed(tmp_path, toy) -> None:
    from forensics.video.out_of_fold import frame_bundles

    bundle, release = toy
    fold = frame_bundles(bundle, release, {"v": "alice"}, tmp_path)["v"]
    (fold / "detectors" / "dct" / "stale.bin").write_bytes(b"from an earlier run")
    again = frame_bundles(bundle, release, {"v": "alice"}, tmp_path)["v"]
    assert again == fold and not (fold / "detectors" / "dct" / "stale.bin").exists()


def test_a_release_folder_without_fold_records_is_refused_by_name(tmp_path, toy) -> None:
    from forensics.video.out_of_fold import fold_of_identity, write_fold_bundle

    bundle, release = toy
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        fold_of_identity(tmp_path)
    with pytest.raises(FileNotFoundError, match="fold3"):
        write_fold_bundle(bundle, release, 3, "carol", tmp_path / "f")


def test_video_identities_come_from_the_clip_manifests_reals() -> None:
    from forensics.video.out_of_fold import video_identities

    clips = pd.DataFrame({"source": ["a", "a", "b", "c"]})
    manifest = pd.DataFrame({"label": [0, 1, 0, 0], "group_id": ["video:a", "video:b", "video:b", "video:c"],
                             "identity": ["alice", "mallory", "bob", ""]})
    assert video_identities(clips, manifest) == {"a": "alice", "b": "bob"}
