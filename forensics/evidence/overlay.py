"""PNG pictures of a where-map (Grad-CAM, noise residual, predicted mask): the map in colour over the face crop,
and the map alone. Shared by every map section so that all maps read the same way (same colour scale: 0 is
dark blue, 1 is dark red; same blending), and an analyst can compare them side by side.
"""
from __future__ import annotations

import cv2
import numpy as np

from forensics.data.media import encode_png

MAX_SIDE = 512  # the evidence contract's cap on a picture's long side
COLORMAP = cv2.COLORMAP_JET


def _check_heat(heat: np.ndarray) -> np.ndarray:
    """A 2-D finite map in [0, 1] as float32; values a hair outside [0, 1] (float rounding) are clipped."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2 or heat.shape[0] < 1 or heat.shape[1] < 1:
        raise ValueError(f"heat must be a 2-D map [h,w], got shape {heat.shape}")
    if not np.isfinite(heat).all():
        raise ValueError("heat has NaN or infinite values")
    if heat.min() < -1e-3 or heat.max() > 1 + 1e-3:
        raise ValueError(f"heat must lie in [0, 1], got [{heat.min():.4g}, {heat.max():.4g}]")
    return np.clip(heat, 0.0, 1.0)


def _fit_side(rgb: np.ndarray) -> np.ndarray:
    """Shrink (never enlarge) so the long side is at most MAX_SIDE."""
    h, w = rgb.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale >= 1.0:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def colorize(heat: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Map [h,w] in [0,1] to RGB uint8 with the shared colour map, resized bilinearly to size=(H, W) if given.
    # [h,w] float -> [H,W,3] uint8"""
    heat = _check_heat(heat)
    if size is not None and heat.shape != tuple(size):
        heat = np.clip(cv2.resize(heat, (size[1], size[0]), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    levels = np.rint(heat * 255.0).astype(np.uint8)  # [H,W]
    return cv2.cvtColor(cv2.applyColorMap(levels, COLORMAP), cv2.COLOR_BGR2RGB)  # [H,W,3]


def overlay_rgb(crop_rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The map, resized to the crop, blended over it: (1 - alpha) * crop + alpha * colour.
    # [S,S,3] uint8, [h,w] float -> [S,S,3] uint8"""
    crop = np.asarray(crop_rgb)
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"crop must be RGB uint8 [H,W,3], got {crop.dtype} {crop.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    colour = colorize(heat, crop.shape[:2]).astype(np.float32)
    mixed = (1.0 - alpha) * crop.astype(np.float32) + alpha * colour
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def overlay_png(crop_rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> bytes:
    """PNG bytes of the map over the crop (long side <= 512 px). Same inputs, same bytes."""
    return encode_png(_fit_side(overlay_rgb(crop_rgb, heat, alpha)))


def heat_png(heat: np.ndarray) -> bytes:
    """PNG bytes of the map alone in the shared colours, at its own size (long side <= 512 px)."""
    return encode_png(_fit_side(colorize(heat)))
