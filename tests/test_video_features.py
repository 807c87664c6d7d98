"""Clips, tracks, track features, aggregation and fusion on synthetic videos whose flicker is known."""
from __future__ import annotations

import numpy as np
import pytest

from forensics.data.faces import Face, template_points
from forensics.data.media import write_video
from forensics.video.aggregate import aggregate, aggregate_all, confident_mean
from forensics.video.clips import clip_ranges, iter_clips
from forensics.video.features import ALL_FEATURES, TRACK_FEATURES, aligned_crops, track_features
from forensics.video.fusion import FusionModel
from forensics.video.tracks import FaceTrack, link_tracks

H, W, T = 144, 192, 16
BOX = np.array([66.0, 36.0, 126.0, 108.0])


def _scene(seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 255, (H // 4, W // 4, 3)).astype(np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)


def _video(flicker: float, seed: int = 0) -> list[np.ndarray]:
    """A scene panning 1 px per frame; the face region is re-noised every frame with `flicker` (0: it moves
    with the scene like real skin)."""
    rng = np.random.default_rng(seed)
    base = _scene(seed)
    frames = []
    for t in range(T):
        f = np.roll(base, t, axis=1).astype(np.float32)
        if flicker:
            y0, x0, y1, x1 = int(BOX[1]), int(BOX[0]) + t, int(BOX[3]), int(BOX[2]) + t
            f[y0:y1, x0:x1] += rng.normal(0, flicker, (y1 - y0, x1 - x0, 3))
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def _track(landmark_noise: float = 0.0, seed: int = 0) -> FaceTrack:
    rng = np.random.default_rng(seed)
    boxes = np.stack([BOX + [t, 0, t, 0] for t in range(T)])
    marks = np.stack([template_points(60, 0.0) + [BOX[0] + t, BOX[1] + 6] for t in range(T)])
    marks = marks + rng.normal(0, landmark_noise, marks.shape)
    return FaceTrack(np.arange(T), boxes, marks, np.ones(T, bool))


def test_flickering_face_separates_from_a_steady_one() -> None:
    steady = track_features(_video(0.0), _track())
    flicker = track_features(_video(25.0), _track())
    assert set(steady) == set(ALL_FEATURES) and all(np.isfinite(steady[k]) for k in TRACK_FEATURES)
    # log ratios: the pan is explained by the flow, so the warp features separate most
    for name, margin in (("warp_face_bg", 1.5), ("warp_per_texture", 1.5), ("face_bg_energy", 0.3),
                         ("change_per_texture", 0.3)):
        assert flicker[name] > steady[name] + margin, (name, flicker[name], steady[name])
    assert flicker["hf_variation"] > 2 * steady["hf_variation"]
    assert np.isnan(steady["score_std"])  # no image scores given


def test_landmark_jitter_is_measured_on_detections() -> None:
    frames = _video(0.0)
    calm, shaky = track_features(frames, _track(0.0)), track_features(frames, _track(1.5))
    assert shaky["landmark_jitter"] > calm["landmark_jitter"] + 2.0
    assert shaky["shape_jitter"] > calm["shape_jitter"] + 2.0
    # jitter on interpolated entries is not evidence: with only two detections there is none to measure
    t = _track(1.5)
    sparse = FaceTrack(t.frame_idx, t.boxes, t.landmarks, np.arange(T) % 8 == 0)
    assert np.isnan(track_features(frames, sparse)["landmark_jitter"])  # 2 detections: no second difference
    assert track_features(frames, _track(0.0), scores=np.r_[np.full(8, 0.1), np.full(8, 0.9)])["score_std"] > 1.0


def test_track_feature_input_checks() -> None:
    with pytest.raises(ValueError, match="frames for a track"):
        track_features(_video(0.0)[:5], _track())
    short = _track()
    short = FaceTrack(short.frame_idx[:2], short.boxes[:2], short.landmarks[:2], short.detected[:2])
    with pytest.raises(ValueError, match="at least 3"):
        track_features(_video(0.0)[:2], short)


def test_clip_ranges_cap_and_spread() -> None:
    clips = clip_ranges(250, 25.0, 2.0)
    assert [(c.start, c.stop) for c in clips] == [(0, 50), (50, 100), (100, 150), (150, 200), (200, 250)]
    assert len(clip_ranges(240, 25.0, 2.0)) == 4 + 1  # 40 frames left >= half a clip: kept
    assert len(clip_ranges(215, 25.0, 2.0)) == 4  # 15 frames left: dropped
    assert [c.index for c in clip_ranges(5000, 25.0, 2.0, max_clips=3)] == [0, 50, 99]  # spread over the video
    assert len(clip_ranges(5000, 25.0, 2.0, max_seconds=10)) == 5


def test_iter_clips_decodes_each_clip_once(tmp_path) -> None:
    frames = [np.full((32, 48, 3), 8 * t, np.uint8) for t in range(20)]
    write_video(tmp_path / "v.mp4", frames, fps=5.0)
    clips = clip_ranges(20, 5.0, 2.0)  # 10-frame clips
    got = list(iter_clips(tmp_path / "v.mp4", clips))
    assert [len(f) for _, f in got] == [10, 10]
    assert abs(float(got[1][1][0].mean()) - 80.0) < 6  # frame 10 (lossy codec: close, not equal)


def test_link_tracks_follows_two_faces() -> None:
    def face(x: float) -> Face:
        return Face(np.array([x, 10, x + 40, 50.0]), 0.99, np.zeros((5, 2)))
    faces = {t: [face(10 + t), face(100 - t)] for t in range(6)}
    faces[6] = [face(16)]  # the second face leaves
    tracks = link_tracks(faces, set(range(0, 7, 2)), min_length=3)
    assert [len(t) for t in tracks] == [7, 6]
    assert np.allclose(tracks[0].boxes[:, 0], 10 + np.arange(7))
    assert tracks[0].detected.tolist() == [True, False, True, False, True, False, True]
    assert FaceTrack.from_dict(tracks[1].to_dict()).boxes.shape == (6, 4)


def test_aggregations() -> None:
    s = np.r_[np.full(10, 0.1), np.full(10, 0.95)]
    agg = aggregate_all(s)
    assert agg["mean"] == pytest.approx(0.525) and agg["max"] == pytest.approx(0.95)
    assert agg["topk"] == pytest.approx(0.95) and agg["confident"] == pytest.approx(0.95)  # half the frames fake
    assert confident_mean(np.r_[np.full(19, 0.05), 0.5]) == pytest.approx(0.05)  # nearly all confidently real
    assert confident_mean(np.r_[np.full(10, 0.5), 0.9, 0.9]) == pytest.approx(np.mean(np.r_[np.full(10, 0.5), 0.9, 0.9]))
    assert np.isnan(aggregate(np.array([]), "max"))
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(s, "median")


def test_fusion_round_trip_and_weights(tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60, int), np.ones(60, int)]
    table = {"a": np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15, 120), 0.01, 0.99),  # informative
             "b": rng.uniform(0.01, 0.99, 120)}  # noise
    import pandas as pd

    df = pd.DataFrame(table)
    fm = FusionModel(["a", "b"]).fit(df, y)
    w = fm.weights()
    assert w["a"] > 3 * abs(w["b"])
    fm.save(tmp_path / "f")
    again = FusionModel.load(tmp_path / "f")
    np.testing.assert_array_equal(again.predict_proba(df), fm.predict_proba(df))
    with pytest.raises(ValueError, match="missing"):
        fm.predict_proba(df[["a"]])


def test_aligned_crops_shape() -> None:
    crops = aligned_crops(_video(0.0)[:3], FaceTrack(np.arange(3), _track().boxes[:3], _track().landmarks[:3],
                                                      np.ones(3, bool)), size=64)
    assert crops.shape == (3, 64, 64, 3) and crops.dtype == np.uint8


def test_h264_roundtrip_degrades_with_crf() -> None:
    pytest.importorskip("av")
    from forensics.video.codec import perturb_video

    frames = _video(0.0)[:8]
    err = {}
    for name in ("crf23", "crf35"):
        out = perturb_video(frames, 25.0, name)
        assert len(out) == len(frames) and out[0].shape == frames[0].shape  # 144x192: even sizes kept
        err[name] = float(np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(out, frames)]))
    assert 0 < err["crf23"] < err["crf35"]
    assert perturb_video(frames, 25.0, "none")[0] is frames[0]
    with pytest.raises(ValueError, match="unknown video perturbation"):
        perturb_video(frames, 25.0, "jpeg75")
