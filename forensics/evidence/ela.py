"""Error level analysis: re-save the image as JPEG at a fixed quality and show how much each pixel changes.

Regions that were compressed as often and at the same quality as the rest change alike; a pasted or
retouched region that was saved fewer times (or from a different source) often changes more or less than its
surroundings. The map depends on the encoder (libjpeg vs libjpeg-turbo vs mozjpeg round differently), so the
section records the encoder versions next to it. ELA is a picture for an analyst, not a detector: it takes no
stance of its own here.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

ELA_QUALITY = 90  # the re-save quality, recorded in the section
ELA_GAIN = 20  # display amplification of the absolute difference (Forensically's default error scale)
MAX_SIDE = 512  # long side of the ela.png asset


@dataclass(frozen=True)
class ElaResult:
    """diff: per-pixel max-over-channels absolute difference at full resolution [H,W] uint8; picture: the
    amplified map downscaled to <= MAX_SIDE [h,w] uint8 (grayscale)."""

    diff: np.ndarray
    picture: np.ndarray


def resave_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """`rgb` [H,W,3] uint8 encoded and decoded once by Pillow's JPEG codec (4:2:0, the library's default)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def error_levels(rgb: np.ndarray, quality: int = ELA_QUALITY, gain: int = ELA_GAIN) -> ElaResult:
    """The ELA of `rgb` [H,W,3] uint8 at full resolution, and its display picture."""
    again = resave_jpeg(rgb, quality)
    b, g, r = cv2.split(cv2.absdiff(rgb, again))
    diff = cv2.max(cv2.max(b, g), r)  # [H,W]: cv2, as numpy's max over a 3-wide axis is ~20x slower
    h, w = diff.shape
    scale = min(1.0, MAX_SIDE / max(h, w))
    small = diff
    if scale < 1.0:
        small = cv2.resize(diff, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    shown = cv2.convertScaleAbs(small, alpha=float(gain))  # saturating uint8 multiply
    return ElaResult(diff=diff, picture=shown)


def percentile_u8(values: np.ndarray, q: float) -> int:
    """The q-th percentile (lower value) of uint8 values from their 256-bin histogram: no sort of 1M pixels."""
    cdf = np.cumsum(cv2.calcHist([np.ascontiguousarray(values)], [0], None, [256], [0, 256]).ravel())
    return int(np.searchsorted(cdf, q / 100.0 * (cdf[-1] - 1), side="right"))


def encode_gray_png(gray: np.ndarray) -> bytes:
    """Lossless single-channel PNG at zlib level 1: an ELA map is noise that level 6 shrinks by only ~20%
    at 3x the time. Fixed settings, so the same map always gives the same bytes."""
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"expected uint8 [H,W], got {gray.dtype} {gray.shape}")
    ok, buf = cv2.imencode(".png", gray, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def box_ratio(diff: np.ndarray, boxes: np.ndarray) -> float | None:
    """Mean error level inside the boxes (x1, y1, x2, y2) over the mean outside them; None when either side
    is empty. Near 1: the faces were compressed like the rest of the image."""
    inside = np.zeros(diff.shape, bool)
    h, w = diff.shape
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        c1, r1 = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
        c2, r2 = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
        if c2 > c1 and r2 > r1:
            inside[r1:r2, c1:c2] = True
    if not inside.any() or inside.all():
        return None
    outside_mean = float(diff[~inside].mean())
    if outside_mean <= 0:
        return None
    return float(diff[inside].mean()) / outside_mean
