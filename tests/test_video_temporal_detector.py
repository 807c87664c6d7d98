"""The temporal detector: registry member over per-track features; fit/predict/threshold; save/load round trip."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import forensics.detectors as D
from forensics.detectors.base import NotFittedError
from forensics.metrics import roc_auc
from forensics.video.features import ALL_FEATURES, TRACK_FEATURES


def _tracks(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-track feature rows: fakes have a higher warp_face_bg and landmark jitter, the rest is noise;
    some values are missing (short tracks) and the score features are absent (NaN)."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    df = pd.DataFrame(rng.normal(0, 1, (2 * n, len(ALL_FEATURES))), columns=list(ALL_FEATURES))
    df["warp_face_bg"] += 2.0 * y
    df["landmark_jitter"] += 1.0 * y
    df.loc[rng.choice(2 * n, 5, replace=False), "shape_jitter"] = np.nan
    df[["score_std", "score_diff"]] = np.nan
    return df, y


def test_registered_with_explicit_hyperparameters() -> None:
    assert "temporal" in D.list()
    det = D.create("temporal", C=0.5)
    assert det.get_params() == {"features": ",".join(TRACK_FEATURES), "C": 0.5, "target_fpr": 0.05, "seed": 0}
    assert not [k for k in vars(det) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        det.predict_proba(_tracks(3, 0)[0])


def test_fit_separates_and_calibrates_on_validation_reals() -> None:
    (x, y), (vx, vy), (tx, ty) = _tracks(80, 0), _tracks(200, 1), _tracks(60, 2)
    det = D.create("temporal").fit(x, y, vx, vy)
    p = det.predict_proba(tx)
    assert p.shape == (len(tx),) and np.all((p >= 0) & (p <= 1))
    assert roc_auc(ty, p) > 0.85
    assert det.threshold_source_ == "val" and np.mean(det.predict_proba(vx[vy == 0]) > det.threshold_) <= 0.05
    w = det.weights()
    assert w["warp_face_bg"] > 0.5 and abs(w["hf_variation"]) < w["warp_face_bg"] / 2
    # the same rows as a list of dicts or an array in feature order give the same scores
    np.testing.assert_allclose(det.predict_proba(tx.to_dict("records")), p)
    np.testing.assert_allclose(det.predict_proba(tx[list(TRACK_FEATURES)].to_numpy()), p)
    with pytest.raises(ValueError, match="missing"):
        det.predict_proba(tx.drop(columns=["warp_std"]))


def test_save_load_round_trip_gives_identical_scores(tmp_path) -> None:
    (x, y), (tx, _) = _tracks(50, 3), _tracks(30, 4)
    det = D.create("temporal", features=",".join(TRACK_FEATURES + ("score_std",)), C=2.0).fit(x, y)
    det.save(tmp_path / "t")
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["config.json", "weights.safetensors"]
    cfg = json.loads((tmp_path / "t" / "config.json").read_text())
    assert cfg["detector"] == "temporal" and cfg["params"]["C"] == 2.0
    loaded = D.load(tmp_path / "t")
    assert type(loaded) is type(det) and loaded.threshold_ == det.threshold_
    assert loaded.feature_names_ == det.feature_names_
    np.testing.assert_array_equal(loaded.predict_proba(tx), det.predict_proba(tx))
    np.testing.assert_array_equal(loaded.predict(tx), det.predict(tx))


@pytest.mark.slow
def test_predict_video_cli_scores_clips_of_a_real_video(tmp_path) -> None:
    """The analyst path: a saved temporal detector scores a video it has never seen (real MTCNN, real decoding);
    a broken file is reported and the batch goes on."""
    from pathlib import Path

    from typer.testing import CliRunner

    from forensics.cli import app

    (x, y) = _tracks(40, 5)
    D.create("temporal").fit(x, y).save(tmp_path / "t")
    video = Path(__file__).resolve().parent.parent / "forensics" / "assets" / "starter" / "carphone_pristine.mp4"
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 64)
    res = CliRunner().invoke(app, ["detect", "predict-video", str(tmp_path / "t"), str(tmp_path / "broken.mp4"),
                                   str(video), "--max-clips", "1"])
    assert res.exit_code == 0, res.output
    lines = [ln.split("\t") for ln in res.stdout.splitlines() if ln.startswith(str(video))]
    assert len(lines) == 1 and lines[0][1] == "clip 0 @ 0.0s" and lines[0][2] == "track 0"
    assert 0.0 <= float(lines[0][3]) <= 1.0 and lines[0][4] in ("fake", "real")
    assert "broken.mp4\terror" in res.output
