"""How much a face or file can be trusted to carry a detector's evidence: face size, sharpness, and the JPEG
quality estimated from the file's own quantization tables.

JPEG quality: the IJG (libjpeg) encoder scales the example tables of ITU-T T.81 Annex K by a factor set by
the quality q (5000/q below 50, 200 - 2q from 50; `forensics.evidence.jpeg_tables`). Pillow exposes a JPEG's tables (`Image.quantization`, in
natural order); the estimate is the q whose scaled tables are closest, and `exact` says whether they match
entry for entry (a libjpeg-family encoder) or only approximately (a camera's or editor's own tables).
"""
from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
from PIL import Image

from forensics.evidence.jpeg_tables import ijg_tables

def estimate_jpeg_quality(tables: dict[int, Any]) -> dict[str, Any] | None:
    """{quality, exact, mean_abs_error, tables} from a JPEG's quantization tables (id -> 64 values), or None."""
    if not tables or 0 not in tables:
        return None
    luma = np.asarray(tables[0], np.int64).ravel()
    if luma.size != 64:
        return None
    err = np.abs(ijg_tables(luma=True) - luma).sum(axis=1)  # [100]
    n = 64
    if 1 in tables and np.asarray(tables[1]).size == 64:
        err = err + np.abs(ijg_tables(luma=False) - np.asarray(tables[1], np.int64).ravel()).sum(axis=1)
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
