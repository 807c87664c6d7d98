"""A JPEG's quantization tables read against the IJG (libjpeg) standard scale.

libjpeg and everything built on it (Pillow, OpenCV, ImageMagick, browsers' canvas export, most web services)
writes the ITU-T T.81 Annex K example tables scaled by one factor set by the quality q: 5000/q below 50,
200 - 2q from 50, entries rounded and clamped to 1..255 (baseline). A file whose every table equals that scale
at one q was most likely last written by such a library; tables that match no q are a camera's or an editor's
own (Photoshop, phone ISPs), which is worth telling the analyst but is not itself a sign of manipulation.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), natural (row-major) order.
LUMA_BASE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64)
CHROMA_BASE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99], np.int64)


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg writes for `quality` with baseline clamping.  # [64] -> [64]"""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((base * scale + 50) // 100, 1, 255)


@lru_cache(maxsize=2)
def ijg_tables(luma: bool) -> np.ndarray:
    """Every quality's table, built once per process (not at import).  # [100,64]"""
    base = LUMA_BASE if luma else CHROMA_BASE
    return np.stack([ijg_table(base, q) for q in range(1, 101)])


def table_quality(table: np.ndarray, table_id: int) -> dict[str, Any]:
    """The IJG quality whose scaled table is closest to `table` (id 0: luminance base, others: chrominance).

    Ties go to the lowest quality (the conservative reading). `exact`: every entry equals that scale."""
    err = np.abs(ijg_tables(table_id == 0) - np.asarray(table, np.int64).ravel()).sum(axis=1)  # [100]
    best = int(np.argmin(err))
    return {"id": int(table_id), "quality": best + 1, "exact": bool(err[best] == 0),
            "mean_abs_error": round(float(err[best]) / 64, 4)}


def read_tables(quantization: dict[int, Any] | None) -> dict[int, np.ndarray]:
    """Pillow's `Image.quantization` (id -> 64 values, natural order) as int arrays; malformed tables dropped."""
    out = {}
    for tid, values in (quantization or {}).items():
        arr = np.asarray(values, np.int64).ravel()
        if arr.size == 64:
            out[int(tid)] = arr
    return out


def standard_match(per_table: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether all tables are one libjpeg scale: {"standard": bool, "quality": q or None, "kind": words}."""
    if not per_table:
        return {"standard": False, "quality": None, "kind": "no quantization tables"}
    qualities = {t["quality"] for t in per_table}
    if all(t["exact"] for t in per_table) and len(qualities) == 1:
        return {"standard": True, "quality": per_table[0]["quality"], "kind": "standard libjpeg tables"}
    return {"standard": False, "quality": None, "kind": "custom tables: camera or editor"}
