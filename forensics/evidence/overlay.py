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


# ---------------------------------------------------------------------------- where on the aligned face
# Every crop is aligned to the same five-point template (forensics.data.faces), so fixed regions of the crop are
# the same parts of every face. The face ellipse is a rough skin area drawn from the template: centred between
# the eyes and the mouth a little above their midpoint (faces run higher to the hairline than to the chin),
# 1.0 inter-ocular distance wide on each side and 1.2 eye-to-mouth distances tall on each side.
FACE_ELLIPSE_WIDTH = 1.0  # semi-axis, in inter-ocular distances
FACE_ELLIPSE_HEIGHT = 1.2  # semi-axis, in eye-to-mouth distances
BORDER_BAND = 0.125  # the crop's outer band (context around the face), as a fraction of its side
FEATURE_RADIUS = 0.4  # a point this close to a landmark (inter-ocular distances) is "on" that feature


def face_points(size: int, margin: float = 0.25) -> dict[str, np.ndarray]:
    """Where the template's eyes, nose and mouth centre land in an aligned crop of `size`.  # name -> [2] (x, y)"""
    from forensics.data.faces import LANDMARK_NAMES, template_points

    pts = dict(zip(LANDMARK_NAMES, template_points(size, margin)))
    return {"left_eye": pts["left_eye"], "right_eye": pts["right_eye"], "nose": pts["nose"],
            "mouth": (pts["mouth_left"] + pts["mouth_right"]) / 2.0}


def face_ellipse_mask(size: int, margin: float = 0.25) -> np.ndarray:
    """True inside the face ellipse of an aligned crop.  # -> [S,S] bool"""
    p = face_points(size, margin)
    eyes = (p["left_eye"] + p["right_eye"]) / 2.0
    iod = float(np.linalg.norm(p["right_eye"] - p["left_eye"]))
    eye_mouth = float(p["mouth"][1] - eyes[1])
    cx, cy = eyes[0], eyes[1] + 0.25 * eye_mouth
    a, b = FACE_ELLIPSE_WIDTH * iod, FACE_ELLIPSE_HEIGHT * eye_mouth
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    return ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0


def border_band_mask(size: int, margin: float = 0.25) -> np.ndarray:
    """True in the crop's outer band (BORDER_BAND of the side) outside the face ellipse.  # -> [S,S] bool"""
    width = max(1, round(BORDER_BAND * size))
    band = np.ones((size, size), bool)
    band[width:size - width, width:size - width] = False
    return band & ~face_ellipse_mask(size, margin)


def face_region_at(x: float, y: float, size: int, margin: float = 0.25) -> str:
    """Name the part of an aligned face at crop pixel (x, y): left_eye / right_eye / nose / mouth when within
    FEATURE_RADIUS of it (image-left eye first, as the template), else face_other inside the face ellipse, else
    outside_face."""
    p = face_points(size, margin)
    iod = float(np.linalg.norm(p["right_eye"] - p["left_eye"]))
    dist = {name: float(np.hypot(x - pt[0], y - pt[1])) for name, pt in p.items()}
    nearest = min(dist, key=dist.get)
    if dist[nearest] <= FEATURE_RADIUS * iod:
        return nearest
    xi, yi = min(max(int(x), 0), size - 1), min(max(int(y), 0), size - 1)
    return "face_other" if face_ellipse_mask(size, margin)[yi, xi] else "outside_face"
