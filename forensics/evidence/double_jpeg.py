"""Double JPEG compression: was the file quantized by a first JPEG table before the one in its header?

A JPEG saved twice on the same 8x8 grid has DCT coefficients quantized by step q1, dequantized, then
quantized again by step q2. When q1 != q2 (and q2 is not a multiple of q1's pattern) the histogram of the
final quantized values shows a periodic pattern of over-full and empty bins (Popescu & Farid 2004; Lukas &
Fridrich 2003; Bianchi & Piva 2012). We test that the way Lukas & Fridrich do, on the luminance only:

1. the observed histogram: decode Y, block DCT on the file's grid, divide by the header's table, round;
2. an estimate of the never-quantized coefficients: the same DCT on a grid shifted by 4 pixels (blocking
   from the last compression does not align with it, so its coefficients are close to the original's);
3. for every candidate first step q1, simulate round(round(c / q1) * q1 / q2) on the estimate and compare its
   histogram with the observed one; q1 = "none" is the single-compression model.

Per frequency the score is the fraction of the single model's misfit that the best double model removes;
the file's score is their count-weighted mean in [0, 1]. The estimated q1 per frequency is matched to the
IJG scale to give "q1 ~ X". The threshold on the score is fitted in benchmarks/bench_double_jpeg.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.evidence.jpeg_tables import LUMA_BASE, ijg_table

# Natural-order indices of zig-zag positions 1..15: the low AC frequencies, where steps are small and blocks
# hold enough non-zero coefficients to fill a histogram.
ZIGZAG_LOW = np.array([1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5])
MAX_BIN = 24  # observed histograms cover quantized values -MAX_BIN..MAX_BIN
MAX_Q1 = 64  # candidate first steps 1..MAX_Q1
MIN_COUNT = 50  # a frequency needs this many non-zero quantized values to take part
MAX_BLOCKS = 8192  # larger images use evenly spread block rows up to this many blocks (cost stays flat)


def _dct_matrix() -> np.ndarray:
    """The 2-D orthonormal 8x8 DCT-II JPEG uses, as one matrix on row-major blocks: kron(D, D).  # [64,64]"""
    k = np.arange(8)[:, None]
    n = np.arange(8)[None, :]
    d = np.cos(np.pi * (2 * n + 1) * k / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return np.kron(d, d).astype(np.float32)


def block_dct(y: np.ndarray, offset: int = 0, frequencies: np.ndarray | None = None,
              max_blocks: int | None = None) -> np.ndarray:
    """DCT of the whole 8x8 blocks of a luma plane starting at (offset, offset), only the `frequencies`
    (natural-order indices; all 64 when None); with `max_blocks`, of evenly spread block rows holding at most
    that many blocks.  # [H,W] -> [N,F]"""
    y = y[offset:, offset:]
    rows, cols = y.shape[0] // 8, y.shape[1] // 8
    strips = y[:rows * 8, :cols * 8].reshape(rows, 8, cols * 8)  # [R,8,W]
    if max_blocks is not None and rows * cols > max_blocks:
        keep = max(1, max_blocks // max(cols, 1))
        strips = strips[np.linspace(0, rows - 1, keep).round().astype(int)]
    blocks = strips.reshape(-1, 8, cols, 8).transpose(0, 2, 1, 3).reshape(-1, 64).astype(np.float32)
    basis = _dct_matrix() if frequencies is None else _dct_matrix()[frequencies]  # [F,64]
    # The DC offset of -128 only moves coefficient 0, and one GEMM beats N tiny 8x8 products.
    coef = blocks @ basis.T  # [N,F]
    if frequencies is None:
        coef[:, 0] -= 1024.0
    elif 0 in frequencies:
        coef[:, list(frequencies).index(0)] -= 1024.0
    return coef


@dataclass(frozen=True)
class DoubleJpegResult:
    """score in [0,1]; q1_steps: per used frequency the best first step (0: single fits best); q1_quality:
    the IJG quality whose luma table best matches those steps (None when no frequency prefers a double
    model); frequencies: how many took part."""

    score: float
    q1_quality: int | None
    q1_steps: dict[int, int]
    frequencies: int


_NBINS = 2 * MAX_BIN + 1
_CANDIDATES = np.arange(1, MAX_Q1 + 1, dtype=np.float64)  # [C]


def _hist(values: np.ndarray) -> np.ndarray:
    """Counts of integer values in -MAX_BIN..MAX_BIN, the zero bin left out (mostly flat blocks).
    # [N] -> [2*MAX_BIN]"""
    keep = (np.abs(values) <= MAX_BIN) & (values != 0)
    return np.delete(np.bincount(values[keep] + MAX_BIN, minlength=_NBINS), MAX_BIN).astype(np.float64)


def _model_hists(mapped: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Histograms (zero bin left out) of several models at once: row r sends grid value g with weight
    counts[g] to bin mapped[r, g].  # [R,G], [G] -> [R,2*MAX_BIN]"""
    rows = mapped.shape[0]
    keep = np.abs(mapped) <= MAX_BIN  # [R,G]
    index = (np.arange(rows)[:, None] * _NBINS + mapped + MAX_BIN)[keep]
    w = np.broadcast_to(counts, mapped.shape)[keep]
    h = np.bincount(index, weights=w, minlength=rows * _NBINS).reshape(rows, _NBINS)
    return np.delete(h, MAX_BIN, axis=1)


def _misfits(models: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Chi-square (triangular) distance between each model histogram and the observed one, as
    distributions: it weighs sparse tail bins, where the double-quantization gaps show, more than L1 does.
    # [R,B], [B] -> [R]"""
    p = models / np.maximum(models.sum(axis=1, keepdims=True), 1e-9)
    o = observed / max(observed.sum(), 1e-9)
    return ((p - o) ** 2 / (p + o + 1e-12)).sum(axis=1)


def _frequency_fit(observed: np.ndarray, calibrated: np.ndarray, q2: int) -> tuple[float, int, float]:
    """(improvement in [0,1], best q1 step or 0, weight) for one frequency.

    observed: the file's quantized values [N] (int); calibrated: shifted-grid coefficients [M] (float)."""
    h_obs = _hist(observed)
    if h_obs.sum() < MIN_COUNT:
        return 0.0, 0, 0.0
    # The calibrated coefficients as counts over integers: each model then maps grid values, not samples.
    lim = (MAX_BIN + 1) * q2
    v = np.rint(calibrated).astype(np.int64)
    v = v[np.abs(v) <= lim]
    counts = np.bincount(v + lim, minlength=2 * lim + 1).astype(np.float64)  # [G]
    grid = np.arange(-lim, lim + 1, dtype=np.float64)  # [G]
    single = np.rint(grid / q2)[None]  # [1,G]
    double = np.rint(np.rint(grid[None] / _CANDIDATES[:, None]) * _CANDIDATES[:, None] / q2)  # [C,G]
    errs = _misfits(_model_hists(np.concatenate([single, double]).astype(np.int64), counts), h_obs)  # [1+C]
    errs[q2] = np.inf  # q1 == q2 is the single model again
    best = int(np.argmin(errs[1:])) + 1
    if errs[best] >= errs[0] or errs[0] <= 0:
        return 0.0, 0, float(h_obs.sum())
    return float((errs[0] - errs[best]) / errs[0]), best, float(h_obs.sum())


def _q1_quality(steps: dict[int, int]) -> int | None:
    """The IJG quality whose luma steps at the used frequencies are closest to the estimated first steps."""
    used = {f: s for f, s in steps.items() if s > 0}
    if not used:
        return None
    idx = np.array(list(used))
    est = np.array(list(used.values()))
    errs = [np.abs(ijg_table(LUMA_BASE, q)[idx] - est).sum() for q in range(1, 101)]
    return int(np.argmin(errs)) + 1


def double_jpeg(y: np.ndarray, luma_table: np.ndarray) -> DoubleJpegResult:
    """The double-compression statistic of a decoded luma plane `y` [H,W] uint8 and its header table [64]."""
    aligned = block_dct(y, 0, ZIGZAG_LOW, MAX_BLOCKS)  # [N,F]
    shifted = block_dct(y, 4, ZIGZAG_LOW, MAX_BLOCKS)  # [M,F]
    gains, weights, steps = [], [], {}
    for j, f in enumerate(ZIGZAG_LOW):
        q2 = int(luma_table[f])
        if q2 < 2:  # a step of 1 keeps every value: no trace of an earlier quantization survives
            continue
        observed = np.rint(aligned[:, j] / q2).astype(np.int64)
        gain, q1, weight = _frequency_fit(observed, shifted[:, j], q2)
        if weight > 0:
            gains.append(gain)
            weights.append(weight)
            steps[int(f)] = q1
    if not weights:
        return DoubleJpegResult(0.0, None, {}, 0)
    score = float(np.average(gains, weights=weights))
    return DoubleJpegResult(min(max(score, 0.0), 1.0), _q1_quality(steps), steps, len(weights))
