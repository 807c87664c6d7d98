"""How much a face or file can be trusted to carry a detector's evidence: face size, sharpness, and the JPEG
quality estimated from the file's own quantization tables.

JPEG quality: the IJG (libjpeg) encoder scales the example tables of ITU-T T.81 Annex K by a factor set by
the quality q (5000/q below 50, 200 - 2q from 50). Pillow exposes a JPEG's tables (`Image.quantization`, in
natural order); the estimate is the q whose scaled tables are closest, and `exact` says whether they match
entry for entry (a libjpeg-family encoder) or only approximately (a camera's or editor's own tables).
"""
from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
from PIL import Image

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), natural (row-major) order.
_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64)
_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99], np.int64)


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg writes for `quality` (baseline: entries clamped to 1..255).  # [64] -> [64]"""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((base * scale + 50) // 100, 1, 255)


_IJG_LUMA = np.stack([ijg_table(_LUMA, q) for q in range(1, 101)])  # [100, 64]
_IJG_CHROMA = np.stack([ijg_table(_CHROMA, q) for q in range(1, 101)])  # [100, 64]


def estimate_jpeg_quality(tables: dict[int, Any]) -> dict[str, Any] | None:
    """{quality, exact, mean_abs_error, tables} from a JPEG's quantization tables (id -> 64 values), or None."""
    if not tables or 0 not in tables:
        return None
    luma = np.asarray(tables[0], np.int64).ravel()
    if luma.size != 64:
        return None
    err = np.abs(_IJG_LUMA - luma).sum(axis=1)  # [100]
    n = 64
    if 1 in tables and np.asarray(tables[1]).size == 64:
        err = err + np.abs(_IJG_CHROMA - np.asarray(tables[1], np.int64).ravel()).sum(axis=1)
        n = 128
    best = int(np.argmin(err))  # ties: the lowest quality, the conservative reading
    return {"quality": best + 1, "exact": bool(err[best] == 0), "mean_abs_error": round(float(err[best]) / n, 4),
            "tables": len(tables)}


def jpeg_quality(path: str | os.PathLike) -> dict[str, Any] | None:
    """The JPEG quality estimate of a file (None for other formats). Reads the header only."""
    with Image.open(path) as im:
        if im.format != "JPEG":
            return None
        return estimate_jpeg_quality(getattr(im, "quantization", None) or {})


def face_pixels(box: np.ndarray) -> float:
    """A face's size in the original pixels: the longer side of its detection box."""
    return float(max(box[2] - box[0], box[3] - box[1]))


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned crop's luma (low: blurred or upsampled).  # [S,S,3] -> float"""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())
