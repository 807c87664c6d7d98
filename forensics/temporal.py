"""Temporal flicker measures for videos with a face: what per-frame face swaps get wrong.

A face swap made frame by frame (alignment, decoding, colour transfer and blending each redone per frame)
has no temporal correlation (Li & Lyu; the deepfake deck's "creation" step): the face region changes from
frame to frame more than the scene around it and more than the real motion explains. Three measures:

- *frame-difference energy* of the face region, relative to the background (needs only the video) and
  relative to the source video (needs the source: a generator-side figure); and relative to the face's own
  spatial texture (gradient energy): a blurry swapped face changes less in absolute terms than a sharp real
  one, but more per unit of texture when it flickers;
- *warping error*: optical flow (Farneback) estimated on a reference video carries frame t onto t+1; for a
  temporally consistent face the warped frame matches frame t+1, for a flickering one it does not. With the
  source as reference this isolates the flicker the swap added; with the video itself it needs no source;
- the *temporal variation of high-frequency energy* in the face (blur that comes and goes).

Only numpy and OpenCV: detectors can use this module without importing the generator zoo. The source-free
per-track features of the temporal detector (`forensics.video.features`) are built from these measures.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import cv2
import numpy as np

FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def _gray(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 [H,W,3] (or gray [H,W]) -> float32 gray [H,W] in 0..255."""
    if frame.ndim == 2:
        return frame.astype(np.float32)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


def ellipse_mask(shape: tuple[int, int], box: Sequence[float], scale: float = 0.9) -> np.ndarray:
    """A filled ellipse inscribed in a face box (x1, y1, x2, y2), shrunk by `scale`. bool [H,W]"""
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    centre = (int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2)))
    axes = (max(1, int(round((x2 - x1) / 2 * scale))), max(1, int(round((y2 - y1) / 2 * scale))))
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


def background_mask(shape: tuple[int, int], box: Sequence[float], grow: float = 1.6) -> np.ndarray:
    """Everything outside the face box enlarged `grow` times about its centre (hair, neck, blend seam
    excluded). bool [H,W]"""
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2 * grow, (y2 - y1) / 2 * grow
    mask = np.ones((h, w), bool)
    mask[max(0, int(cy - hh)):max(0, int(np.ceil(cy + hh))), max(0, int(cx - hw)):max(0, int(np.ceil(cx + hw)))] = False
    return mask


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def difference_energy(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
    """Mean squared gray-level change between consecutive frames inside masks[t] & masks[t+1]. [T-1]"""
    out = np.full(max(len(frames) - 1, 0), np.nan)
    for t in range(len(frames) - 1):
        diff = np.square(_gray(frames[t + 1]) - _gray(frames[t]))
        out[t] = _masked_mean(diff, np.asarray(masks[t]) & np.asarray(masks[t + 1]))
    return out


def texture_energy(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
    """Mean squared Sobel gradient magnitude of frame t inside masks[t] & masks[t+1]: spatial texture. [T-1]"""
    out = np.full(max(len(frames) - 1, 0), np.nan)
    for t in range(len(frames) - 1):
        g = _gray(frames[t])
        energy = np.square(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.square(cv2.Sobel(g, cv2.CV_32F, 0, 1))
        out[t] = _masked_mean(energy, np.asarray(masks[t]) & np.asarray(masks[t + 1]))
    return out


def backward_flows(reference: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Farneback flow from frame t+1 back to t for each pair: next(y, x) ~ prev(y + f_y, x + f_x). [T-1] of [H,W,2]"""
    grays = [_gray(f).astype(np.uint8) for f in reference]
    return [cv2.calcOpticalFlowFarneback(grays[t + 1], grays[t], None, **FARNEBACK) for t in range(len(grays) - 1)]


def warp_with_flow(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Carry frame t onto t+1 with a backward flow. [H,W,C] -> [H,W,C] float32"""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(frame.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def warping_error(frames: Sequence[np.ndarray], flows: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
    """Mean absolute RGB error between warp(frame t, flow t) and frame t+1 inside masks[t+1]. [T-1]"""
    out = np.full(len(flows), np.nan)
    for t, flow in enumerate(flows):
        err = np.abs(warp_with_flow(frames[t], flow) - frames[t + 1].astype(np.float32))
        err = err.mean(axis=2) if err.ndim == 3 else err
        out[t] = _masked_mean(err, np.asarray(masks[t + 1]))
    return out


def high_frequency_energy(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
    """Variance of the Laplacian inside each frame's mask: sharpness per frame. [T]"""
    return np.array([_masked_mean(np.square(cv2.Laplacian(_gray(f), cv2.CV_32F)), np.asarray(m))
                     for f, m in zip(frames, masks)])


@dataclass(frozen=True)
class FlickerStats:
    """Per-video flicker figures (means over frame pairs). Ratios > 1 mean the face flickers more."""

    frames: int
    face_energy: float  # mean squared gray change per frame pair inside the face
    background_energy: float
    face_bg_ratio: float  # face_energy / background_energy
    change_per_texture: float  # 100 * face_energy / the face's spatial gradient energy (blur-robust, no source)
    warp_error: float  # mean |warp(t) - (t+1)| in the face, flow from the reference video
    hf_variation: float  # std / mean over time of the face's high-frequency energy
    face_energy_vs_source: float | None = None  # face_energy / the source's face_energy
    change_per_texture_vs_source: float | None = None
    warp_error_vs_source: float | None = None  # warp_error / the source's own warp_error

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def flicker_stats(frames: Sequence[np.ndarray], face_masks: Sequence[np.ndarray], bg_masks: Sequence[np.ndarray],
                  flows: Sequence[np.ndarray] | None = None) -> FlickerStats:
    """Flicker figures for one video. frames: RGB uint8 [H,W,3]; masks bool [H,W] per frame; flows: backward
    flows of a reference video (default: of these frames, so no source is needed)."""
    if len(frames) < 2:
        raise ValueError("flicker needs at least two frames")
    if not (len(frames) == len(face_masks) == len(bg_masks)):
        raise ValueError("frames, face_masks and bg_masks must have the same length")
    flows = backward_flows(frames) if flows is None else flows
    face = float(np.nanmean(difference_energy(frames, face_masks)))
    bg = float(np.nanmean(difference_energy(frames, bg_masks)))
    texture = float(np.nanmean(texture_energy(frames, face_masks)))
    hf = high_frequency_energy(frames, face_masks)
    return FlickerStats(frames=len(frames), face_energy=face, background_energy=bg,
                        face_bg_ratio=face / max(bg, 1e-6), change_per_texture=100.0 * face / max(texture, 1e-6),
                        warp_error=float(np.nanmean(warping_error(frames, flows, face_masks))),
                        hf_variation=float(np.nanstd(hf) / max(np.nanmean(hf), 1e-6)))


def flicker_vs_source(fake: Sequence[np.ndarray], source: Sequence[np.ndarray], face_masks: Sequence[np.ndarray],
                      bg_masks: Sequence[np.ndarray]) -> tuple[FlickerStats, FlickerStats]:
    """(fake, source) figures on the same regions, the fake's warping error measured with the *source's* flow:
    the motion is the source's, so what the flow cannot explain is flicker the swap added."""
    flows = backward_flows(source)
    src = flicker_stats(source, face_masks, bg_masks, flows)
    fk = flicker_stats(fake, face_masks, bg_masks, flows)
    fk = FlickerStats(**{**asdict(fk), "face_energy_vs_source": fk.face_energy / max(src.face_energy, 1e-6),
                         "change_per_texture_vs_source": fk.change_per_texture / max(src.change_per_texture, 1e-6),
                         "warp_error_vs_source": fk.warp_error / max(src.warp_error, 1e-6)})
    src = FlickerStats(**{**asdict(src), "face_energy_vs_source": 1.0, "change_per_texture_vs_source": 1.0,
                          "warp_error_vs_source": 1.0})
    return fk, src
