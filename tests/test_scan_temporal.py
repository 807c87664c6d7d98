"""Temporal flicker in the scan's video verdicts: the track segmenter, the bundle's video model (save, load,
refusals), and a real video whose face flickers scored above the same video untouched, through the scan path."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forensics.data.media import iter_frames, write_video
from tests.test_scan_helpers import STARTER, build_toy_bundle

FPS = 25.0
SEGMENT_S = 1.0  # 25 frames: the toy model's segments


def _flickered(frames: list[np.ndarray], box: np.ndarray, strength: float, seed: int) -> list[np.ndarray]:
    """The face box's brightness changed on every frame (the colour mismatch of a per-frame swap's blending,
    exaggerated): smooth within a frame, so a single frame's spectrum hardly shows it; only time does."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = (int(v) for v in box)
    out = []
    for f in frames:
        g = f.astype(np.float32)
        g[y0:y1, x0:x1] += rng.normal(0, strength)
        out.append(np.clip(g, 0, 255).astype(np.uint8))
    return out


def _video_and_box(name: str, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The first `n` frames of a real starter video and its face box on the first frame."""
    from forensics.data.faces import FaceDetector

    frames = [f for _, f in iter_frames(STARTER / name, max_frames=n)]
    face = max(FaceDetector(min_score=0.9).detect([frames[0]])[0], key=lambda f: f.score)
    return frames, face.box


@pytest.fixture(scope="module")
def source() -> tuple[list[np.ndarray], np.ndarray]:
    """What the toy video model trains on (72 frames of one person)."""
    return _video_and_box("single_face.mp4", 72)


@pytest.fixture(scope="module")
def temporal_bundle(tmp_path_factory, source) -> Path:
    """A toy bundle with a video model trained, the scan's way, on the untouched video and flickered copies."""
    from forensics.data.faces import FaceDetector
    from forensics.scan.faces import FaceFinder
    from forensics.bundle.model import load_bundle
    from forensics.video.release import VideoModelConfig, _row_of, attach_to_bundle, clip_segments, fit_video_model

    root = build_toy_bundle(tmp_path_factory.mktemp("bundle") / "toy")
    bundle = load_bundle(root)
    frames, box = source
    cfg = VideoModelConfig(segment_seconds=SEGMENT_S, conditions=("none",), min_reals_per_video=1)
    finder = FaceFinder(FaceDetector(min_score=0.9), 480, 40)
    rows = []
    for k, start in enumerate((0, 8, 16, 24, 32)):  # five "source videos": clips at different offsets
        clip = frames[start:start + 40]
        for label, strength in ((0, 0.0), (1, 6.0 + 3 * k), (1, 12.0 + 2 * k)):
            pix = clip if strength == 0 else _flickered(clip, box, strength, seed=k)
            row = _row_of(clip_segments(pix, FPS, bundle, finder, cfg))
            assert row is not None
            rows.append({**row, "label": label, "source": f"v{k}", "split": "train", "cond": "none",
                         "sample_id": f"v{k}-{label}-{strength}", "fake_type": "flicker" if label else "real"})
    model, _ = fit_video_model(pd.DataFrame(rows), cfg)
    attach_to_bundle(root, model)
    return root


@pytest.mark.slow  # a toy bundle, MTCNN on 15 short clips and two scans: ~40 s
def test_flickering_track_scores_above_the_same_video_untouched(tmp_path, temporal_bundle) -> None:
    from forensics.scan.pipeline import run_scan
    from forensics.scan.settings import ScanSettings

    frames, box = _video_and_box("franck.mp4", 50)  # another person and camera than the model trained on
    case = tmp_path / "case"
    case.mkdir()
    write_video(case / "untouched.mp4", frames, fps=FPS)
    write_video(case / "flicker.mp4", _flickered(frames, box, 10.0, seed=99), fps=FPS)
    run_scan([str(case)], tmp_path / "out", temporal_bundle, ScanSettings(evidence=False), progress=False, log=lambda m: None)
    from forensics.scan.schema import validate_scan

    doc = json.loads((tmp_path / "out" / "scan.json").read_text())
    validate_scan(doc)  # the temporal record with its segments follows the schema
    tracks = {Path(f["path"]).name: f["faces"][0] for f in doc["files"]}
    real, fake = tracks["untouched.mp4"]["temporal"], tracks["flicker.mp4"]["temporal"]
    assert real["available"] and fake["available"], (real["reason"], fake["reason"])
    assert fake["decides"], fake["decides_why"]  # flicker is the only signal here: the fusion beats the frames
    assert len(fake["segments"]) == 2  # 50 frames in segments of 25
    assert fake["probability"] > real["probability"] + 0.2, (fake["probability"], real["probability"])
    assert fake["video_probability"] > real["video_probability"]
    # the track's score is the video score, and the frames' mean is kept beside it
    assert tracks["flicker.mp4"]["probability"] == pytest.approx(fake["video_probability"], rel=1e-3)
    assert "frames_probability" in tracks["flicker.mp4"]
    assert all(s["flicker_frames"] for s in fake["segments"])


@pytest.mark.slow
def test_a_scan_detecting_at_another_spacing_says_why_it_has_no_temporal_score(tmp_path, temporal_bundle,
                                                                              source) -> None:
    from forensics.scan.pipeline import run_scan
    from forensics.scan.settings import ScanSettings

    frames, _ = source
    case = tmp_path / "case"
    case.mkdir()
    write_video(case / "clip.mp4", frames[:30], fps=FPS)
    run_scan([str(case)], tmp_path / "out", temporal_bundle, ScanSettings(evidence=False, every=5), progress=False,
             log=lambda m: None)
    track = json.loads((tmp_path / "out" / "scan.json").read_text())["files"][0]["faces"][0]
    assert not track["temporal"]["available"]
    assert "every 10" in track["temporal"]["reason"] and "every 5" in track["temporal"]["reason"]
    assert track["probability"] == track["frames_probability"]


def test_segmenter_cuts_tracks_into_segments_and_closes_ended_tracks() -> None:
    from forensics.video.segments import TrackSegmenter

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    box, marks = np.array([60.0, 30.0, 100.0, 80.0]), np.tile([[70.0, 45.0]], (5, 1))
    seg = TrackSegmenter(segment_frames=10, min_frames=4)
    done = []
    for i in range(25):  # track 0: 25 frames -> 10 + 10 + 5
        done += seg.add(0, i, frame, box, marks + rng.normal(0, 0.2, marks.shape), i % 3 == 0, 0.2)
        if i < 3:  # track 1: 3 frames, then gone: too short to score
            seg.add(1, i, frame, box + 5, marks, True, 0.9)
        done += seg.finish_missing({0, 1} if i < 3 else {0})
    done += seg.finish_all()
    assert [(s.track, int(s.frame_idx[0]), s.frame_idx.size) for s in done] == [(0, 0, 10), (0, 10, 10), (0, 20, 5)]
    assert all(np.isfinite(s.features["warp_face_bg"]) for s in done)
    assert done[0].frames_mean == pytest.approx(0.2)
    assert done[0].face_side == pytest.approx(50.0)  # the box's longer side in the frame's pixels
    with pytest.raises(ValueError):
        TrackSegmenter(segment_frames=2)


def test_video_model_round_trip_and_refusals(tmp_path, temporal_bundle) -> None:
    from forensics.bundle.model import BundleError, load_bundle
    from forensics.modelfiles import CheckpointError
    from forensics.video.model import VideoModel

    model = load_bundle(temporal_bundle).video_model
    assert model is not None and model.every == 10 and model.segment_seconds == SEGMENT_S
    copy = tmp_path / "vm"
    model.save(copy)
    again = VideoModel.load(copy)
    feats = [{n: 0.1 * i for n in model.temporal.feature_names} for i in range(4)]
    for a, b in zip(model.score_segments(feats, np.array([0.1, 0.4, 0.6, 0.9])),
                    again.score_segments(feats, np.array([0.1, 0.4, 0.6, 0.9]))):
        np.testing.assert_array_equal(a, b)
    record = json.loads((copy / "video_model.json").read_text())
    assert again.video_score == model.video_score == record["video_score"]
    assert again.min_face_side == model.min_face_side == record["min_face_side"]
    (copy / "video_model.json").write_text(json.dumps({**record, "min_face_side": "64"}))
    with pytest.raises(CheckpointError, match="min_face_side"):
        VideoModel.load(copy)
    (copy / "video_model.json").write_text(json.dumps({**record, "video_score": "frames"}))
    with pytest.raises(CheckpointError, match="video_score"):
        VideoModel.load(copy)
    (copy / "video_model.json").write_text(json.dumps({**record, "every": 0}))
    with pytest.raises(CheckpointError, match="every"):
        VideoModel.load(copy)
    broken = tmp_path / "bundle"
    shutil.copytree(temporal_bundle, broken)
    meta = json.loads((broken / "bundle.json").read_text())
    (broken / "bundle.json").write_text(json.dumps({**meta, "temporal": "../elsewhere"}))
    with pytest.raises(BundleError, match="temporal"):
        load_bundle(broken)


def _lovo_scores(frames: float, temporal: float, fused: float, n: int = 200) -> pd.DataFrame:
    """Leave-one-video-out scores of n clips whose three scores separate the labels by the given margins."""
    from scipy.special import expit

    rng = np.random.default_rng(0)
    y = np.tile([0, 1], n // 2)
    return pd.DataFrame({"label": y, "source": np.repeat(["a", "b", "c", "d"], n // 4),
                         **{name: expit(y * margin + rng.normal(0, 1, n)) for name, margin in
                            (("frames:mean", frames), ("temporal", temporal), ("fused", fused))}})


def test_the_video_score_is_the_candidate_that_won_leave_one_video_out() -> None:
    from forensics.video.release import choose_video_score

    temporal_best = choose_video_score(_lovo_scores(frames=0.5, temporal=2.0, fused=1.0))
    assert temporal_best["video_score"] == "temporal" and temporal_best["decides"], temporal_best
    assert "temporal score alone" in temporal_best["why"]
    fused_best = choose_video_score(_lovo_scores(frames=0.5, temporal=1.0, fused=2.0))
    assert fused_best["video_score"] == "fused" and fused_best["decides"], fused_best
    frames_best = choose_video_score(_lovo_scores(frames=2.0, temporal=0.5, fused=1.0))
    assert frames_best["video_score"] == "fused" and not frames_best["decides"], frames_best
    assert frames_best["lovo_auc"]["frames:mean"] > frames_best["lovo_auc"]["fused"]


def test_a_score_whose_reals_of_one_video_score_high_loses_at_the_band_despite_its_auc() -> None:
    """The temporal score ranks clips better overall, but one video's reals sit at the top: a band bounding the
    false-positive rate must rise above them and catches fewer fakes than the fusion's."""
    from forensics.video.release import choose_video_score

    lovo = _lovo_scores(frames=0.5, temporal=4.0, fused=1.5, n=400)
    odd = lovo.index[(lovo["source"] == "a") & (lovo["label"] == 0)][:16]
    lovo.loc[odd, "temporal"] = 0.9999  # 8% of the reals, all of one video: above a 5% false-positive threshold
    choice = choose_video_score(lovo)
    assert choice["lovo_auc"]["temporal"] > choice["lovo_auc"]["fused"], choice
    assert choice["video_score"] == "fused" and choice["decides"], choice
    assert choice["lovo_likely_rate"]["temporal"] < choice["lovo_likely_rate"]["fused"]


def test_the_segments_video_score_is_the_one_the_model_names(temporal_bundle) -> None:
    from dataclasses import replace

    from forensics.bundle.model import load_bundle

    model = load_bundle(temporal_bundle).video_model
    feats = [{n: 0.3 * i for n in model.temporal.feature_names} for i in range(4)]
    frames = np.array([0.9, 0.1, 0.8, 0.2])
    temporal, fused, video = replace(model, video_score="temporal").score_segments(feats, frames)
    np.testing.assert_array_equal(video, temporal)
    assert not np.allclose(fused, temporal)
    np.testing.assert_array_equal(replace(model, video_score="fused").score_segments(feats, frames)[2], fused)
    with pytest.raises(ValueError, match="video_score"):
        replace(model, video_score="frames")


def test_a_track_whose_face_is_under_the_models_minimum_gets_no_temporal_score(temporal_bundle) -> None:
    """A face smaller than the flicker window's face width would be upscaled into it: out of calibration."""
    from dataclasses import replace
    from types import SimpleNamespace

    from forensics.bundle.model import load_bundle
    from forensics.scan.temporal import score_segments, small_face_reason, track_temporal
    from forensics.video.segments import TrackSegmenter

    model = load_bundle(temporal_bundle).video_model
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    seg = TrackSegmenter(segment_frames=12, min_frames=4)
    done = []
    for i in range(12):  # a 40 px face
        done += seg.add(0, i, frame, np.array([60.0, 40.0, 100.0, 80.0]), np.tile([[70.0, 50.0]], (5, 1)) + i % 2,
                        i % 3 == 0, 0.4)
    done += seg.finish_all()
    small = SimpleNamespace(video_model=replace(model, min_face_side=64.0))
    reason = small_face_reason(small, done)
    assert reason is not None and "40 px" in reason and "64 px" in reason, reason
    assert score_segments(small, done) == []
    assert not track_temporal(small, reason, [])["available"]
    large_enough = SimpleNamespace(video_model=replace(model, min_face_side=32.0))
    assert small_face_reason(large_enough, done) is None
    assert len(score_segments(large_enough, done)) == 1


def test_training_leaves_out_clips_whose_face_is_too_small() -> None:
    from forensics.video.release import split_small_faces

    rows = pd.DataFrame({"source": ["qcif", "qcif", "hd"], "face_side": [58.0, 63.9, 180.0], "label": [0, 1, 0]})
    kept, left = split_small_faces(rows, 64.0)
    assert kept["source"].tolist() == ["hd"] and left["face_side"].tolist() == [58.0, 63.9]


def test_bench_video_needs_a_bundle_with_a_video_model(tmp_path) -> None:
    from typer.testing import CliRunner

    from forensics.cli import app

    plain = build_toy_bundle(tmp_path / "plain")
    result = CliRunner().invoke(app, ["detect", "bench", "--video", "--data", str(tmp_path / "clips.parquet"),
                                      "--out", str(tmp_path / "out"), "--model", str(plain)])
    assert result.exit_code == 2 and "has no video model" in result.output, result.output


def test_shipped_bundle_scores_tracks_with_its_video_model_at_the_scan_default() -> None:
    from forensics.bundle.model import load_bundle
    from forensics.scan.pipeline import default_bundle_dir
    from forensics.scan.settings import ScanSettings
    from forensics.scan.temporal import unavailable_reason

    bundle = load_bundle(default_bundle_dir())
    assert bundle.video_model is not None, "the shipped bundle has no video model (forensics detect video-model)"
    assert unavailable_reason(bundle, ScanSettings().every) is None
    record = bundle.video_model.record
    assert record["config"]["train_splits"] == ["train", "val"] and record["clips"] > 0
    # the fusion and band were fitted on frame scores of folds that never saw the video's person (--release)
    assert record["frames_from"] and all(how.startswith("out of fold") for how in record["frames_from"].values()), \
        record.get("frames_from")
