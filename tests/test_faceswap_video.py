"""Fake videos: the writer round-trips frame count and size, the real source is re-encoded alike, rows are valid."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from forensics.data.faces import Face, align_face, template_points
from forensics.data.manifest import new_row, read_manifest, to_frame, validate_manifest, write_manifest
from forensics.data.media import iter_frames, probe_video, write_image, write_video
from generators.checkpoint import save_generator
from generators.faceswap import PRESETS, FaceSwapAutoencoder
from generators.faceswap_video import (
    VARIANTS,
    landmark_sequence,
    smooth_landmarks,
    synthesize_faceswap_images,
    synthesize_faceswap_video,
    variant,
)

TINY = dataclasses.replace(PRESETS["tiny"], identities=("A", "B"))
N_FRAMES, W, H = 8, 160, 128


def _landmarks(t: int) -> np.ndarray:
    return template_points(64, 0.0) + np.array([48.0 + t, 30.0])  # the face drifts right 1 px per frame


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[int, list[Face]]]:
    """A real video of identity A (8 frames), its first 4 frames as corpus crops, and a tiny checkpoint."""
    root = tmp_path_factory.mktemp("vid")
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 255, (H // 4, W // 4, 3)).astype(np.uint8), (W, H))
    frames = []
    for t in range(N_FRAMES):
        f = base.copy()
        cv2.ellipse(f, (80 + t, 66), (30, 38), 0, 0, 360, (190, 150, 120), -1)
        frames.append(f)
    write_video(root / "videos" / "clip.mp4", frames, fps=10.0)
    rows = [new_row(sample_id="video:clip", path="videos/clip.mp4", label=0, media="video", group_id="video:clip",
                    split="train", identity="A", video_id="clip", width=W, height=H)]
    tracks = {}
    for idx, frame in iter_frames(root / "videos" / "clip.mp4"):
        face = Face(box=np.array([50.0 + idx, 28, 110 + idx, 104]), score=0.99, landmarks=_landmarks(idx))
        tracks[idx] = [face]
        if idx < 4:
            aligned = align_face(frame, face, size=128, margin=0.25)
            rel = f"crops/A/clip_f{idx:05d}.png"
            write_image(root / rel, aligned.crop)
            rows.append(new_row(sample_id=f"clip:f{idx:05d}", path=rel, label=0, media="frame", group_id="A:clip:s0",
                                split="train", identity="A", video_id="clip", frame_idx=idx, width=128, height=128,
                                postproc={"aligned": {"matrix": aligned.matrix.tolist(), "size": 128, "margin": 0.25},
                                          "landmarks": face.landmarks.tolist()}))
    write_manifest(to_frame(rows), root / "manifest.parquet")
    torch.manual_seed(0)
    save_generator(root / "ck", "faceswap", TINY, FaceSwapAutoencoder(TINY), {"steps": 0, "seed": 0})
    return root / "manifest.parquet", root / "ck", tracks


def test_fake_video_round_trips_count_and_size_and_rows_are_valid(tmp_path: Path, dataset) -> None:
    manifest, ck, tracks = dataset
    out = tmp_path / "out"
    for name in ("naive", "smoothed"):
        df = synthesize_faceswap_video(ck, manifest, out, "clip", variant(name), tracks=tracks)
    validate_manifest(df, out)
    assert read_manifest(out / "manifest.parquet").equals(df)
    src, real, fakes = probe_video(dataset[0].parent / "videos" / "clip.mp4"), None, []
    for row in df[df["media"] == "video"].to_dict("records"):
        info = probe_video(out / row["path"])
        assert (info.frame_count, info.width, info.height) == (N_FRAMES, W, H) == (src.frame_count, src.width, src.height)
        assert info.fps == pytest.approx(src.fps)
        if row["label"] == 0:
            real = row
        else:
            fakes.append(row)
    assert real is not None and real["sample_id"] == "video:clip:reencoded" and json.loads(real["postproc"])["reencoded"]
    assert len(fakes) == 2 and {f["source_id"] for f in fakes} == {"video:clip:reencoded"}
    assert {json.loads(f["generator_config"])["video"]["variant"] for f in fakes} == {"naive", "smoothed"}
    assert all(f["target"] == "B" and f["split"] == "train" for f in fakes)
    frame_rows = df[(df["media"] == "frame") & (df["label"] == 1)]
    assert len(frame_rows) == 2 * N_FRAMES
    with_source = frame_rows[frame_rows["source_id"] != ""]
    assert sorted(set(with_source["frame_idx"])) == [0, 1, 2, 3]  # the frames the corpus has
    for row in frame_rows.to_dict("records"):
        mask = cv2.imread(str(out / json.loads(row["postproc"])["mask_path"]), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (128, 128) and mask.max() == 255
    # the fake differs from the re-encoded real inside the face, far less outside it
    real_frames = [f for _, f in iter_frames(out / real["path"])]
    fake_frames = [f for _, f in iter_frames(out / fakes[0]["path"])]
    diff = np.abs(real_frames[3].astype(int) - fake_frames[3]).mean(axis=2)
    assert diff[50:80, 70:95].mean() > 4 * diff[:, :20].mean()


def test_rerun_is_idempotent(tmp_path: Path, dataset) -> None:
    manifest, ck, tracks = dataset
    a = synthesize_faceswap_video(ck, manifest, tmp_path, "clip", variant("naive"), tracks=tracks)
    b = synthesize_faceswap_video(ck, manifest, tmp_path, "clip", variant("naive"), tracks=tracks)
    assert len(a) == len(b) and set(a["sample_id"]) == set(b["sample_id"])


def test_image_fakes_are_merged_frames_with_masks(tmp_path: Path, dataset) -> None:
    manifest, ck, _ = dataset
    df = synthesize_faceswap_images(ck, manifest, tmp_path, n=2, seed=0)
    fakes = df[df["label"] == 1]
    assert len(fakes) == 1  # identity B has no frames here: only the A -> B half is made
    row = fakes.iloc[0]
    post = json.loads(row["postproc"])
    assert row["source_id"] in set(df["sample_id"]) and row["target"] == "B" and row["width"] == 128
    # Swapped frames form their own fake video: video-level scoring must never pool them with the real clip.
    assert row["video_id"].startswith("clip__faceswap_to_B_") and "clip" in set(df.loc[df["label"] == 0, "video_id"])
    full = cv2.imread(str(tmp_path / post["merged_frame_path"]))
    mask = cv2.imread(str(tmp_path / post["frame_mask_path"]), cv2.IMREAD_UNCHANGED)
    assert full.shape == (H, W, 3) and mask.shape == (H, W) and 0 < (mask > 0).mean() < 0.5


def test_landmark_smoothing_is_zero_lag_and_reduces_jitter() -> None:
    rng = np.random.default_rng(0)
    truth = {t: _landmarks(t) for t in range(40)}
    noisy = {t: p + rng.normal(0, 1.5, p.shape) for t, p in truth.items()}
    smooth = smooth_landmarks(noisy, 0.75)
    err = lambda seq: np.mean([np.abs(seq[t] - truth[t]).mean() for t in range(5, 35)])  # noqa: E731
    assert err(smooth) < 0.6 * err(noisy)
    assert np.allclose(smooth_landmarks(truth, 0.75)[20], truth[20], atol=0.05)  # a steady drift is not lagged
    tracks = {t: [Face(np.zeros(4), 1.0, p)] for t, p in truth.items()}
    jit = landmark_sequence(tracks, VARIANTS["jittered"])
    assert not np.allclose(jit[3], truth[3]) and np.allclose(landmark_sequence(tracks, VARIANTS["naive"])[3], truth[3])
    with pytest.raises(ValueError, match="unknown video variant"):
        variant("calm")


def test_synth_cli_makes_faceswap_images_and_videos(tmp_path: Path, dataset) -> None:
    from typer.testing import CliRunner

    from forensics.cli import app

    manifest, ck, _ = dataset
    res = CliRunner().invoke(app, ["synth", "--ckpt", str(ck), "--data", str(manifest), "--n", "2", "--out",
                                   str(tmp_path / "ds"), "--videos", "clip", "--video-variant", "naive",
                                   "--max-frames", "3"])
    assert res.exit_code == 0, res.output
    df = read_manifest(tmp_path / "ds" / "manifest.parquet")
    validate_manifest(df, tmp_path / "ds")
    # MTCNN finds no face in the synthetic clip: the video is reported and skipped, never labeled fake
    assert "skipped" in res.output and "no face" in res.output
    assert not ((df["media"] == "video") & (df["label"] == 1)).any()
    assert ((df["label"] == 1) & (df["media"] == "frame")).sum() >= 1  # the merged-frame image fake
    bad = CliRunner().invoke(app, ["synth", "--ckpt", str(ck), "--ckpt", str(ck), "--data", str(manifest), "--n", "1",
                                   "--out", str(tmp_path / "x"), "--videos", "nope"])
    assert bad.exit_code != 0


def test_a_video_without_faces_is_refused_not_labeled_fake(tmp_path: Path, dataset) -> None:
    from generators.faceswap_video import NoFaceError

    manifest, ck, _ = dataset
    with pytest.raises(NoFaceError, match="no face"):
        synthesize_faceswap_video(ck, manifest, tmp_path, "clip", variant("naive"), tracks={})
    assert not list(tmp_path.glob("fake/**/*.mp4")) and not (tmp_path / "manifest.parquet").exists()


def test_fake_crops_equal_the_real_crop_outside_their_mask(tmp_path: Path, dataset) -> None:
    """The pixel label is exact at crop level too, also where the crop reaches past the frame edge."""
    manifest, ck, tracks = dataset
    df = synthesize_faceswap_video(ck, manifest, tmp_path, "clip", variant("naive"), tracks=tracks)
    paths = dict(zip(df["sample_id"], df["path"]))
    fakes = df[(df["label"] == 1) & (df["media"] == "frame") & (df["source_id"] != "")]
    assert len(fakes) == 4
    for row in fakes.to_dict("records"):
        fake = cv2.imread(str(tmp_path / row["path"])).astype(int)
        real = cv2.imread(str(tmp_path / paths[row["source_id"]])).astype(int)
        mask = cv2.imread(str(tmp_path / json.loads(row["postproc"])["mask_path"]), cv2.IMREAD_UNCHANGED)
        outside = mask == 0
        assert outside.any() and np.abs(fake - real).max(axis=2)[outside].max() <= 2  # video decode + re-crop rounding
