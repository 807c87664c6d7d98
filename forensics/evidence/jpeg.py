"""The "jpeg" evidence section: what a JPEG's own bytes say about how often and by what it was saved.

`jpeg_history_section(path, rgb, face_boxes=None) -> Section` (name "jpeg"). Fields (stable keys):

    applicable          false for anything that is not a JPEG (then no other key, and no signal)
    error               "<path>: reason" when the file could not be read (signal: no information)
    tables              [{id, quality, exact, mean_abs_error}] per quantization table, quality on the IJG scale
    quality             the luminance table's estimated IJG quality (what forensics.scan.quality reported)
    standard_tables     true when every table equals the libjpeg scale at one quality
    table_kind          "standard libjpeg tables" | "custom tables: camera or editor" | "no quantization tables"
    subsampling         "4:4:4" | "4:2:2" | "4:2:0" | "4:1:1" | "grayscale" | "unknown"
    progressive         bool
    size                [width, height]
    double_compression  {score, threshold, detected, fit_score, q1_estimate, q2, frequencies, blocks, reliable}
                        score in [0,1]: the probability of a double save from forensics.evidence.double_jpeg's
                        fitted model (threshold: the model's, 5% false alarms); fit_score in [0,1]: the
                        histogram-fit statistic alone (one of the model's inputs); q1_estimate only when detected;
                        detected = reliable and score >= threshold;
                        reliable = enough 8x8 blocks and a luma step above 1 (see MIN_BLOCKS)
    ela                 {image: "ela.png", quality, gain, mean, p99, face_ratio}: error levels at full resolution,
                        or {skipped: why} when the caller asked for no map (the scan: a clearly clean image)
                        (mean/p99 of the max-over-channels absolute difference, 0..255); face_ratio: mean inside
                        the face boxes over the mean outside (null without boxes)
    encoder             {pillow, libjpeg_turbo, libjpeg}: the codec versions the ELA re-save used

Assets: "ela.png" (grayscale PNG, <= 512 px long side). Signal: double compression detected -> suggests
manipulation (saved at least twice; editing or re-sharing, not proof of a face manipulation); a reliable test below the
threshold -> no sign; too small, quality 100, or unreadable -> no information; not a JPEG -> none.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from forensics.evidence.double_jpeg import double_jpeg, double_jpeg_threshold
from forensics.evidence.ela import ELA_GAIN, ELA_QUALITY, box_ratio, encode_gray_png, error_levels, percentile_u8
from forensics.evidence.jpeg_tables import read_tables, standard_match, table_quality
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Section, Signal

# Below this many 8x8 luma blocks (128x128 px) the histograms get too thin; the benchmark's smallest group,
# 128 px face crops, still gave AUC 0.89 on its test part (10% false alarms at the threshold).
MIN_BLOCKS = 256
_SUBSAMPLING = {-1: "unknown", 0: "4:4:4", 1: "4:2:2", 2: "4:2:0", 3: "4:1:1"}


def sig(x: float, digits: int = 6) -> float:
    """`x` rounded to `digits` significant digits (compact, stable JSON)."""
    return float(f"{float(x):.{digits}g}")


def encoder_versions() -> dict[str, str | None]:
    """The JPEG codec versions behind Pillow: ELA maps are comparable only between equal versions."""
    import PIL
    from PIL import features

    return {"pillow": PIL.__version__, "libjpeg_turbo": features.version_feature("libjpeg_turbo"),
            "libjpeg": features.version_codec("jpg")}


JpegRead = tuple[dict[str, Any], dict[int, np.ndarray], "np.ndarray | None"]


def read_jpeg_luma(source: str | os.PathLike | BinaryIO) -> JpegRead:
    """Header facts, quantization tables, and the decoded luma plane [H,W] uint8 (None for CMYK/odd
    layouts) of a JPEG file or file object. Decodes Y only: libjpeg skips the chroma, and the values are the
    codec's own, not a rounded RGB->Y."""
    with Image.open(source, formats=["JPEG"]) as im:
        tables = read_tables(getattr(im, "quantization", None))
        sampling = JpegImagePlugin.get_sampling(im) if im.mode != "L" else None
        facts = {"subsampling": "grayscale" if im.mode == "L" else _SUBSAMPLING.get(sampling, "unknown"),
                 "progressive": bool(im.info.get("progressive") or im.info.get("progression")),
                 "size": [int(im.size[0]), int(im.size[1])]}
        im.draft("L", None)
        luma = np.asarray(im) if im.mode == "L" else None  # [H,W]
        if luma is None:
            im.load()
    return facts, tables, luma


def _tables_fields(tables: dict[int, np.ndarray]) -> dict[str, Any]:
    per_table = [table_quality(t, tid) for tid, t in sorted(tables.items())]
    match = standard_match(per_table)
    luma_q = next((t["quality"] for t in per_table if t["id"] == 0), None)
    return {"tables": per_table, "quality": luma_q, "standard_tables": match["standard"],
            "table_kind": match["kind"]}


def double_fields(luma: np.ndarray | None, tables: dict[int, np.ndarray]) -> dict[str, Any]:
    blocks = 0 if luma is None else (luma.shape[0] // 8) * (luma.shape[1] // 8)
    threshold = double_jpeg_threshold()
    out: dict[str, Any] = {"score": None, "threshold": threshold, "detected": False, "fit_score": None,
                           "q1_estimate": None, "q2": None, "frequencies": 0, "blocks": int(blocks),
                           "reliable": False}
    if luma is None or 0 not in tables:
        return out
    result = double_jpeg(luma, tables[0])
    q2 = table_quality(tables[0], 0)["quality"]
    reliable = blocks >= MIN_BLOCKS and result.frequencies > 0
    detected = bool(reliable and result.score >= threshold)
    out.update({"score": sig(result.score), "fit_score": sig(result.fit_score),
                "q1_estimate": result.q1_quality if detected else None, "q2": q2, "frequencies": result.frequencies, "reliable": reliable, "detected": detected})
    return out


def _signal(double: dict[str, Any]) -> Signal:
    if double["detected"]:
        q1 = double["q1_estimate"]
        return Signal(SUGGESTS_MANIPULATION,
                      f"saved at least twice (q1 ~ {q1 if q1 is not None else '?'}, then q2 = {double['q2']}): "
                      "consistent with editing or re-sharing, not proof of a face manipulation")
    if double["reliable"]:
        return Signal(NO_SIGN, f"no trace of an earlier JPEG compression (score {double['score']} < "
                               f"{double['threshold']}); a save at the same quality would not show")
    if double["blocks"] < MIN_BLOCKS:
        return Signal(NO_INFORMATION, f"too small for the double-compression test ({double['blocks']} 8x8 "
                                      f"blocks < {MIN_BLOCKS})")
    return Signal(NO_INFORMATION, "the double-compression test does not apply (quality 100 or no luma table)")


def _ela_fields(rgb: np.ndarray, face_boxes: np.ndarray | None) -> tuple[dict[str, Any], bytes]:
    ela = error_levels(rgb)
    ratio = box_ratio(ela.diff, face_boxes) if face_boxes is not None and len(face_boxes) else None
    fields = {"image": "ela.png", "quality": ELA_QUALITY, "gain": ELA_GAIN, "mean": sig(ela.diff.mean()),
              "p99": percentile_u8(ela.diff, 99), "face_ratio": None if ratio is None else sig(ratio)}
    return fields, encode_gray_png(ela.picture)


def jpeg_history_section(path: str | os.PathLike, rgb: np.ndarray | None,
                         face_boxes: np.ndarray | None = None, skip_ela: Callable[[], str | None] | None = None
                         ) -> Section:
    """The JPEG history of `path`; `rgb` [H,W,3] uint8 is its decoded image (decoded here when None), and
    `face_boxes` [F,4] (x1, y1, x2, y2) optional. `skip_ela()`, asked after everything else is done, gives a reason
    to leave the error-level map out (then fields["ela"] is {"skipped": reason} and there is no picture) or None.
    Never raises for a bad file: `fields["error"]` instead."""
    path = Path(path)
    try:
        with Image.open(path) as probe:
            fmt = probe.format
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        return Section("jpeg", {"applicable": False, "error": f"{path}: not readable as an image ({exc})"})
    if fmt != "JPEG":
        return Section("jpeg", {"applicable": False})
    fields: dict[str, Any] = {"applicable": True, "encoder": encoder_versions()}
    try:
        facts, tables, luma = read_jpeg_luma(path)
        fields.update(_tables_fields(tables))
        fields.update(facts)
        double = double_fields(luma, tables)
        fields["double_compression"] = double
        reason = skip_ela() if skip_ela is not None else None
        if reason:
            fields["ela"] = {"skipped": str(reason)}
            return Section("jpeg", fields, {}, _signal(double))
        if rgb is None:
            with Image.open(path, formats=["JPEG"]) as im:
                rgb = np.asarray(im.convert("RGB"))
        ela_fields, ela_png = _ela_fields(rgb, face_boxes)
        fields["ela"] = ela_fields
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        fields["error"] = f"{path}: corrupt or truncated JPEG ({exc})"
        return Section("jpeg", fields, {}, Signal(NO_INFORMATION, "the JPEG could not be decoded"))
    return Section("jpeg", fields, {"ela.png": ela_png}, _signal(double))
