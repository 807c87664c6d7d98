"""Creation step: face-shaped masks from 5 landmarks, colour transfer, and merging that leaves the rest untouched."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from forensics.data.faces import Face, align_face, template_points
from generators.merge import (
    MergeOptions,
    colour_stats,
    crop_landmarks,
    face_outline,
    face_region_mask,
    merge_face,
    refine_mask,
    reinhard_transfer,
    write_mask_png,
)


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured 160x200 frame with a face-like blob and its 5 landmarks (frame pixels)."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 255, (160, 200, 3)).astype(np.uint8)
    landmarks = template_points(60, 0.0) + np.array([70.0, 40.0])
    cv2.ellipse(frame, (100, 75), (28, 36), 0, 0, 360, (190, 150, 120), -1)
    frame = np.clip(frame.astype(int) + rng.integers(-30, 30, frame.shape), 0, 255).astype(np.uint8)  # skin texture
    return frame, landmarks


def _swap(frame: np.ndarray, landmarks: np.ndarray, size: int = 64):
    aligned = align_face(frame, Face(np.zeros(4), 1.0, landmarks), size=size, margin=0.0)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = ((xx // 4 + yy // 4) % 2 * 160 + 40).astype(np.uint8)
    swapped = np.ascontiguousarray(np.stack([stripes, stripes[::-1], stripes.T], axis=2))  # an obviously other "face"
    return aligned, swapped


def test_face_mask_covers_eyes_and_mouth_but_not_the_corners() -> None:
    pts = template_points(64, 0.0)
    mask = face_region_mask(pts, 64)
    for x, y in pts:
        assert mask[int(y), int(x)] == 1.0
    assert mask[0, 0] == 0 and mask[63, 63] == 0 and mask[0, 63] == 0
    assert 0.2 < mask.mean() < 0.8
    ell = face_region_mask(pts, 64, "ellipse")
    assert abs(ell.mean() - mask.mean()) < 0.15
    outline = face_outline(pts)
    assert outline[:, 1].min() < pts[:2, 1].min() and outline[:, 1].max() > pts[3:, 1].max()  # brows up, chin down


def test_refined_mask_is_feathered_and_stays_inside_the_region() -> None:
    region = face_region_mask(template_points(64, 0.0), 64)
    soft = refine_mask(region, erode=0.03, blur=0.05)
    assert soft.max() == pytest.approx(1.0, abs=1e-3) and 0 < soft[soft > 0].min() < 0.5
    assert (soft[region == 0] == 0).all()


@pytest.mark.parametrize("blend", ["alpha", "seamless"])
@pytest.mark.parametrize("colour", ["none", "reinhard"])
def test_merge_changes_only_pixels_inside_the_mask(blend: str, colour: str) -> None:
    frame, landmarks = _scene()
    aligned, swapped = _swap(frame, landmarks)
    merged = merge_face(frame, aligned.crop, swapped, aligned.matrix, landmarks,
                        MergeOptions(colour=colour, blend=blend))
    outside = merged.mask == 0
    assert merged.frame.shape == frame.shape and merged.mask.shape == frame.shape[:2]
    assert outside.mean() > 0.5 and (merged.frame[outside] == frame[outside]).all()
    inside = merged.mask == 255
    assert inside.any() and np.abs(merged.frame[inside].astype(int) - frame[inside]).mean() > 10
    # the mask sits around the landmarks
    for x, y in landmarks[[0, 1, 2]]:
        assert merged.mask[int(y), int(x)] > 0


def test_reinhard_transfer_matches_the_target_statistics() -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 120, (32, 32, 3)).astype(np.uint8)
    dst = rng.integers(100, 255, (32, 32, 3)).astype(np.uint8)
    mask = np.ones((32, 32), np.float32)
    out = reinhard_transfer(src, colour_stats(src, dst, mask))
    lab_out = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)
    lab_dst = cv2.cvtColor(dst, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)
    assert np.abs(lab_out.mean(0) - lab_dst.mean(0)).max() < 4.0
    s = colour_stats(src, dst, mask)
    mid = s.blend(colour_stats(dst, src, mask), 0.5)
    assert np.allclose(mid.src_mean, (s.src_mean + s.dst_mean) / 2, atol=1e-3)


def test_options_validate_and_round_trip_and_learned_mask_is_required() -> None:
    opts = MergeOptions(mask="ellipse", blend="seamless")
    assert MergeOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ValueError, match="mask"):
        MergeOptions(mask="box")
    with pytest.raises(ValueError, match="unknown"):
        MergeOptions.from_dict({"mask": "hull", "feather": 1})
    frame, landmarks = _scene()
    aligned, swapped = _swap(frame, landmarks)
    with pytest.raises(ValueError, match="mask head"):
        merge_face(frame, aligned.crop, swapped, aligned.matrix, landmarks, MergeOptions(mask="learned"))
    learned = np.zeros((64, 64), np.float32)
    learned[16:48, 16:48] = 1.0
    merged = merge_face(frame, aligned.crop, swapped, aligned.matrix, landmarks, MergeOptions(mask="learned"), learned)
    assert merged.mask.any()


def test_crop_landmarks_and_mask_png(tmp_path: Path) -> None:
    frame, landmarks = _scene()
    aligned, _ = _swap(frame, landmarks)
    assert np.allclose(crop_landmarks(landmarks, aligned.matrix), template_points(64, 0.0), atol=1e-6)
    mask = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    write_mask_png(tmp_path / "m.png", mask)
    back = cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and (back == mask).all()
