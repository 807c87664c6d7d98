"""Noise residual of a face: does the face carry the same noise as its surroundings?

Residual = luma minus its 3x3 median-filtered copy. The median is the denoiser of Forensically's noise analysis:
it has no strength parameter to tune, keeps edges (so the residual is mostly sensor/compression noise, not
contours), is deterministic and costs well under a millisecond on a 128 px face (non-local means is ~100x slower
and its output depends on a filter strength; a wavelet estimate needs a library the venv does not have). Local
energy = the residual's standard deviation in non-overlapping 8x8 blocks, shown as a heat overlay. A face pasted
from another source, or re-synthesised by a generator, often has a different noise level from the hair and
background around it; the ratio face / border captures that.

Section "noise" fields (one section per face):
    face            the face's name (e.g. "face-1")
    asset           "<face>-noise.png": block energy over the crop (scaled to the crop's 99th percentile block)
    denoiser        "median 3x3 on luma"
    block           8 (pixels per side of an energy block)
    face_energy     median block energy inside the face ellipse (grey levels)
    border_energy   median block energy in the crop's outer band outside the ellipse
    ratio           face_energy / border_energy (null when the border has no measurable noise)
    real_range      [RATIO_LOW, RATIO_HIGH], the range the ratio keeps on real faces (see below)
    error           only on failure: "<face>: reason"

Signal: SUGGESTS_MANIPULATION only when the ratio leaves real_range; NO_INFORMATION otherwise (a ratio inside
the range says nothing either way). The range: 0.5th and 99.5th percentiles of the ratio on all 7,739 real crops
of the starter corpus, widened to round figures: `benchmarks/build_spectrum_reference.py` prints them
(p0.5 = 0.715, p99.5 = 8.729, median 3.851 at the commit that set these constants; 0.9% of those reals fall
outside). On the zoo's test faces (64 px, enlarged to 128 as the aligner would) it flags 0% of the zoo's own
reals, 30% of stargan_v2, 9.7% of stylegan2, 1.9% of blend and none of cyclegan or faceswap: a rare signal that
some generators' too-smooth faces trip, never a detector. The map is mainly for the analyst's eye.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from forensics.evidence.overlay import border_band_mask, face_ellipse_mask, overlay_png
from forensics.evidence.section import NO_INFORMATION, SUGGESTS_MANIPULATION, Section, Signal

SECTION = "noise"
BLOCK = 8
RATIO_LOW = 0.7  # p0.5 of the ratio on real starter crops: 0.715 (benchmarks/build_spectrum_reference.py)
RATIO_HIGH = 8.8  # p99.5: 8.729 (median 3.851: faces are noisier than the flat walls behind them)
_MIN_BORDER_ENERGY = 1e-3  # grey levels; below this the border is flat (a synthetic fill) and a ratio is meaningless


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def residual(crop: np.ndarray) -> np.ndarray:
    """Luma minus its 3x3 median.  # [S,S,3] uint8 -> [S,S] float32 (grey levels)"""
    luma = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)  # [S,S] uint8
    return luma.astype(np.float32) - cv2.medianBlur(luma, 3).astype(np.float32)


def block_energy(res: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Standard deviation of the residual in non-overlapping blocks (a partial last row/column is dropped).
    # [S,S] -> [S//block, S//block]"""
    h, w = (res.shape[0] // block) * block, (res.shape[1] // block) * block
    tiles = res[:h, :w].reshape(h // block, block, w // block, block)
    return tiles.std(axis=(1, 3))


def _block_masks(size: int, margin: float, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Blocks whose centre lies in the face ellipse / in the border band.  # -> two [S//block, S//block] bool"""
    centres = np.arange(size // block) * block + block // 2
    face = face_ellipse_mask(size, margin)[np.ix_(centres, centres)]
    border = border_band_mask(size, margin)[np.ix_(centres, centres)]
    return face, border


def noise_measure(crop: np.ndarray, margin: float = 0.25) -> tuple[np.ndarray, float, float]:
    """Block energy map, face energy, border energy of one aligned crop.  # [S,S,3] uint8 -> [S/8,S/8], float, float"""
    energy = block_energy(residual(crop))
    face, border = _block_masks(crop.shape[0], margin)
    return energy, float(np.median(energy[face])), float(np.median(energy[border]))


def noise_ratios(crops: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """Face / border energy ratio per crop, NaN where the border is flat.  # [N,S,S,3] uint8 -> [N] float64"""
    out = np.full(len(crops), np.nan)
    for i, crop in enumerate(crops):
        _, face, border = noise_measure(crop, margin)
        if border > _MIN_BORDER_ENERGY:
            out[i] = face / border
    return out


def noise_residual_section(crop: np.ndarray, name: str, margin: float = 0.25) -> Section:
    """The "noise" section of one aligned face. Never raises.  # crop [S,S,3] uint8"""
    try:
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1]:
            raise ValueError(f"crop must be a square RGB uint8 [S,S,3], got {crop.dtype} {crop.shape}")
        if crop.shape[0] < 4 * BLOCK:
            raise ValueError(f"crop is {crop.shape[0]} px, too small for {BLOCK} px blocks")
        energy, face, border = noise_measure(crop, margin)
        ratio = face / border if border > _MIN_BORDER_ENERGY else None
        scale = max(float(np.percentile(energy, 99)), 1e-6)
        png = overlay_png(crop, np.clip(energy / scale, 0.0, 1.0))
    except Exception as exc:  # noqa: BLE001 - evidence never stops a scan; the error is in the section
        return Section(SECTION, {"face": name, "error": f"{name}: {type(exc).__name__}: {exc}"},
                       signal=Signal(NO_INFORMATION, "the noise residual could not be computed"))
    fields: dict[str, Any] = {
        "face": name, "asset": f"{name}-noise.png", "denoiser": "median 3x3 on luma", "block": BLOCK,
        "face_energy": _round(face), "border_energy": _round(border),
        "ratio": None if ratio is None else _round(ratio), "real_range": [RATIO_LOW, RATIO_HIGH],
    }
    return Section(SECTION, fields, {fields["asset"]: png}, noise_signal(ratio))


def noise_signal(ratio: float | None) -> Signal:
    """Conservative: only a ratio far outside what real faces show is a stance."""
    if ratio is None:
        return Signal(NO_INFORMATION, "the crop's border has no measurable noise to compare the face with")
    if ratio < RATIO_LOW or ratio > RATIO_HIGH:
        side = "less" if ratio < RATIO_LOW else "more"
        return Signal(SUGGESTS_MANIPULATION,
                      f"the face has {side} noise than its surroundings (ratio {ratio:.2f}; 99% of real faces lie "
                      f"in [{RATIO_LOW}, {RATIO_HIGH}]): a pasted or re-synthesised face can do this, so can make-up, "
                      "blur or a noisy background")
    return Signal(NO_INFORMATION, f"face/border noise ratio {ratio:.2f} is within the range of real faces "
                                  f"[{RATIO_LOW}, {RATIO_HIGH}]")
