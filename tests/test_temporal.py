"""Flicker measures: they rank a jittered face above a steady one, and optical flow explains real motion."""
from __future__ import annotations

import numpy as np
import pytest

from forensics.temporal import (
    background_mask,
    backward_flows,
    ellipse_mask,
    flicker_stats,
    flicker_vs_source,
    warp_with_flow,
)

BOX = (60.0, 30.0, 120.0, 100.0)
SHAPE = (128, 176)


def _texture(seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (SHAPE[0] // 4, SHAPE[1] // 4, 3)).astype(np.uint8)
    return cv2.resize(noise, (SHAPE[1], SHAPE[0]), interpolation=cv2.INTER_CUBIC)


def _sequence(jitter: float, n: int = 8, seed: int = 0) -> list[np.ndarray]:
    """A scene panning 1 px per frame; with jitter, the face region also shifts and brightens at random."""
    rng = np.random.default_rng(seed)
    base = _texture(seed)
    face = ellipse_mask(SHAPE, BOX)
    frames = []
    for t in range(n):
        f = np.roll(base, t, axis=1).astype(np.float32)
        if jitter:
            dx, dy = rng.integers(-2, 3, 2)
            moved = np.roll(np.roll(f, int(dx), axis=1), int(dy), axis=0) + rng.normal(0, jitter)
            f[face] = moved[face]
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def _masks(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return [ellipse_mask(SHAPE, BOX)] * n, [background_mask(SHAPE, BOX)] * n


def test_jittered_face_ranks_above_a_steady_one() -> None:
    steady, jittered = _sequence(0.0), _sequence(12.0)
    fm, bm = _masks(len(steady))
    a, b = flicker_stats(steady, fm, bm), flicker_stats(jittered, fm, bm)
    assert b.face_bg_ratio > 2 * a.face_bg_ratio
    assert b.warp_error > 2 * a.warp_error
    assert b.change_per_texture > 2 * a.change_per_texture
    fake, src = flicker_vs_source(jittered, steady, fm, bm)
    assert src.face_energy_vs_source == 1.0 and fake.face_energy_vs_source > 2 and fake.warp_error_vs_source > 2
    assert fake.change_per_texture_vs_source > 2
    steady_vs, _ = flicker_vs_source(steady, steady, fm, bm)
    assert steady_vs.face_energy_vs_source == pytest.approx(1.0) and steady_vs.warp_error < 1.0


def test_flow_explains_a_pure_translation() -> None:
    frames = _sequence(0.0, n=2)
    (flow,) = backward_flows(frames)
    warped = warp_with_flow(frames[0], flow)
    inner = (slice(20, -20), slice(20, -20))
    err = np.abs(warped - frames[1].astype(np.float32))[inner].mean()
    naive = np.abs(frames[0].astype(np.float32) - frames[1])[inner].mean()
    assert err < 0.3 * naive


def test_change_per_texture_discounts_blur() -> None:
    """A blurred copy of a steady scene changes less per frame, but not more per unit of texture."""
    import cv2

    steady = _sequence(0.0)
    blurred = [cv2.GaussianBlur(f, (0, 0), 2.0) for f in steady]
    fm, bm = _masks(len(steady))
    a, b = flicker_stats(steady, fm, bm), flicker_stats(blurred, fm, bm)
    assert b.face_energy < a.face_energy
    assert b.change_per_texture < 1.5 * a.change_per_texture


def test_masks_and_input_checks() -> None:
    face, bg = ellipse_mask(SHAPE, BOX), background_mask(SHAPE, BOX)
    assert face.any() and bg.any() and not (face & bg).any()
    with pytest.raises(ValueError, match="two frames"):
        flicker_stats(_sequence(0.0, n=1), *_masks(1))
    with pytest.raises(ValueError, match="same length"):
        flicker_stats(_sequence(0.0, n=3), *_masks(2))
