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

Per frequency the gain is the fraction of the single model's misfit that the best double model removes;
their count-weighted mean in [0, 1] is the fit score. Letting each frequency pick its own q1 also fits noise,
so the same misfits are read a second way: one IJG first table for all frequencies at once (joint gains),
which is what lifts the hard case, a first save at the higher quality. A small logistic regression
(double_jpeg_model.json, plain JSON, fitted and measured on disjoint people and videos by
benchmarks/bench_double_jpeg.py, which also picked its inputs by cross-validation on the fit part) turns
these into `score`, the probability of a double save, with its threshold. The estimated q1 is the best
joint IJG quality ("q1 ~ X").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from forensics.evidence.jpeg_tables import LUMA_BASE, ijg_table

# Natural-order indices of zig-zag positions 1..15: the low AC frequencies, where steps are small and blocks
# hold enough non-zero coefficients to fill a histogram.
ZIGZAG_LOW = np.array([1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5])
MAX_BIN = 24  # observed histograms cover quantized values -MAX_BIN..MAX_BIN
MAX_Q1 = 64  # candidate first steps 1..MAX_Q1
MIN_COUNT = 50  # a frequency needs this many non-zero quantized values to take part
MAX_BLOCKS = 8192  # larger images use evenly spread block rows up to this many blocks (cost stays flat)
# Zig-zag positions 1..20 (natural order): the modes whose first-digit statistics feed the model (Li, Shi &
# Huang 2008 use the first 20 AC modes).
FD_MODES = np.array([1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40])
MODEL_PATH = Path(__file__).with_name("double_jpeg_model.json")
# The fit score's threshold at 5% false alarms (reports/evidence/double_jpeg.md before the model shipped).
FIT_SCORE_THRESHOLD = 0.231


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
    """score in [0,1]: the fitted model's probability of a double save (fit_score when no model ships);
    fit_score in [0,1]: the histogram-fit statistic alone; q1_steps: per used frequency the best first step
    (0: single fits best); q1_quality: the IJG quality whose table, as one first table for all frequencies,
    fits best (else the one closest to the per-frequency steps; None when no frequency prefers a double model); frequencies: how many took part; features: the model's inputs
    (feature_names(), nan where a frequency did not take part).  # features [D]"""

    score: float
    fit_score: float
    q1_quality: int | None
    q1_steps: dict[int, int]
    frequencies: int
    features: np.ndarray


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


@dataclass(frozen=True)
class FrequencyFit:
    """One frequency's histogram test: gain in [0,1] (the share of the single model's misfit the best double
    model removes), q1 (best first step, 0 when single fits best), weight (non-zero values counted), and the two
    misfits themselves (nan when the frequency did not take part)."""

    gain: float
    q1: int
    weight: float
    single_misfit: float
    double_misfit: float
    misfits: np.ndarray | None = None  # [1+MAX_Q1]: the single model's, then first step 1..MAX_Q1's (q2's: single)


_SKIPPED = FrequencyFit(0.0, 0, 0.0, float("nan"), float("nan"))


def _frequency_fit(observed: np.ndarray, calibrated: np.ndarray, q2: int) -> FrequencyFit:
    """The single- and double-compression models of one frequency against its observed histogram.

    observed: the file's quantized values [N] (int); calibrated: shifted-grid coefficients [M] (float)."""
    h_obs = _hist(observed)
    if h_obs.sum() < MIN_COUNT:
        return _SKIPPED
    # The calibrated coefficients as counts over integers: each model then maps grid values, not samples.
    lim = (MAX_BIN + 1) * q2
    v = np.rint(calibrated).astype(np.int64)
    v = v[np.abs(v) <= lim]
    counts = np.bincount(v + lim, minlength=2 * lim + 1).astype(np.float64)  # [G]
    grid = np.arange(-lim, lim + 1, dtype=np.float64)  # [G]
    single = np.rint(grid / q2)[None]  # [1,G]
    double = np.rint(np.rint(grid[None] / _CANDIDATES[:, None]) * _CANDIDATES[:, None] / q2)  # [C,G]
    errs = _misfits(_model_hists(np.concatenate([single, double]).astype(np.int64), counts), h_obs)  # [1+C]
    all_errs = errs.copy()
    if q2 <= MAX_Q1:
        all_errs[q2] = errs[0]
    errs[q2] = np.inf  # q1 == q2 is the single model again
    best = int(np.argmin(errs[1:])) + 1
    weight = float(h_obs.sum())
    if errs[best] >= errs[0] or errs[0] <= 0:
        return FrequencyFit(0.0, 0, weight, float(errs[0]), float(min(errs[best], errs[0])), all_errs)
    return FrequencyFit(float((errs[0] - errs[best]) / errs[0]), best, weight, float(errs[0]), float(errs[best]),
                        all_errs)


def joint_ijg_fit(fits: list[FrequencyFit], frequencies: np.ndarray, luma_table: np.ndarray
                  ) -> tuple[float, float, int | None]:
    """The double model with one first table for all frequencies, taken from the IJG scale: (weighted gain,
    mean gain, best first quality or None). A single save lets each frequency pick some q1 that happens to fit
    its noise a little better; a real first table fits every frequency at once, which is what tells the hard
    case (first save at the higher quality, small first steps) from chance."""
    used = [(int(f), fit) for f, fit in zip(frequencies, fits) if fit.weight > 0 and fit.misfits is not None]
    if not used:
        return 0.0, 0.0, None
    idx = np.array([f for f, _ in used])
    errs = np.stack([fit.misfits for _, fit in used])  # [U,1+C]
    w = np.array([fit.weight for _, fit in used])  # [U]
    tables = np.minimum(ijg_tables()[:, idx], MAX_Q1)  # [100,U], a step beyond MAX_Q1 read as MAX_Q1
    per_q = errs[np.arange(len(used))[None], tables]  # [100,U]
    differs = (ijg_tables()[:, idx] != luma_table[idx][None]).any(axis=1)  # [100]: a table other than q2's
    if not differs.any() or errs[:, 0].sum() <= 0:
        return 0.0, 0.0, None
    single = errs[:, 0]  # [U]
    weighted = np.where(differs, 1.0 - (per_q @ w) / max(single @ w, 1e-12), -np.inf)  # [100]
    relative = np.where(differs, np.mean(1.0 - per_q / np.maximum(single, 1e-12)[None], axis=1), -np.inf)
    best = int(np.argmax(weighted))
    return float(max(weighted[best], 0.0)), float(max(relative.max(), 0.0)), best + 1


@lru_cache(maxsize=1)
def ijg_tables() -> np.ndarray:
    """The IJG luma table of every quality 1..100, built once per process.  # [100,64]"""
    return np.stack([ijg_table(LUMA_BASE, q) for q in range(1, 101)])


def _q1_quality(steps: dict[int, int]) -> int | None:
    """The IJG quality whose luma steps at the used frequencies are closest to the estimated first steps."""
    used = {f: s for f, s in steps.items() if s > 0}
    if not used:
        return None
    idx = np.array(list(used))
    est = np.array(list(used.values()))
    errs = [np.abs(ijg_table(LUMA_BASE, q)[idx] - est).sum() for q in range(1, 101)]
    return int(np.argmin(errs)) + 1


def first_digit_probabilities(values: np.ndarray) -> np.ndarray:
    """Share of each leading digit 1..9 among the non-zero quantized values of one frequency (Fu, Shi & Su
    2007: single compression follows a generalized Benford law, a second one bends it); nan when fewer than
    MIN_COUNT values.  # [N] -> [9]"""
    a = np.abs(values[values != 0])
    if a.size < MIN_COUNT:
        return np.full(9, np.nan)
    while (big := a >= 10).any():
        a = np.where(big, a // 10, a)
    return np.bincount(a, minlength=10)[1:10] / a.size


def feature_names() -> list[str]:
    """Names of the entries of `DoubleJpegResult.features`, in order (the model JSON stores them)."""
    names = ["fit_score", "log_mean_step", "joint_gain", "joint_mean_gain"]
    for f in ZIGZAG_LOW:
        names += [f"gain_{f}", f"log_single_misfit_{f}", f"log_double_misfit_{f}"]
    names += [f"first_digit_{f}_{d}" for f in FD_MODES for d in range(1, 10)]
    return names


def double_jpeg(y: np.ndarray, luma_table: np.ndarray) -> DoubleJpegResult:
    """The double-compression statistics of a decoded luma plane `y` [H,W] uint8 and its header table [64]."""
    modes = np.union1d(ZIGZAG_LOW, FD_MODES)
    aligned = block_dct(y, 0, modes, MAX_BLOCKS)  # [N,F]
    shifted = block_dct(y, 4, ZIGZAG_LOW, MAX_BLOCKS)  # [M,F_low]
    column = {int(f): j for j, f in enumerate(modes)}
    quantized = {int(f): np.rint(aligned[:, column[int(f)]] / max(int(luma_table[f]), 1)).astype(np.int64)
                 for f in modes}
    fits: list[FrequencyFit] = []
    for j, f in enumerate(ZIGZAG_LOW):
        q2 = int(luma_table[f])
        # A step of 1 keeps every value: no trace of an earlier quantization survives.
        fits.append(_frequency_fit(quantized[int(f)], shifted[:, j], q2) if q2 >= 2 else _SKIPPED)
    used = [(int(f), fit) for f, fit in zip(ZIGZAG_LOW, fits) if fit.weight > 0]
    steps = {f: fit.q1 for f, fit in used}
    fit_score = float(np.average([fit.gain for _, fit in used], weights=[fit.weight for _, fit in used])) \
        if used else 0.0
    fit_score = min(max(fit_score, 0.0), 1.0)
    joint_gain, joint_mean_gain, joint_q1 = joint_ijg_fit(fits, ZIGZAG_LOW, np.asarray(luma_table))
    feats = [fit_score, float(np.log(np.mean(luma_table[ZIGZAG_LOW]))), joint_gain, joint_mean_gain]
    for fit in fits:
        feats += [fit.gain if fit.weight > 0 else np.nan, np.log10(fit.single_misfit + 1e-6),
                  np.log10(fit.double_misfit + 1e-6)]
    digits = np.concatenate([first_digit_probabilities(quantized[int(f)]) for f in FD_MODES])  # [9*len(FD_MODES)]
    features = np.concatenate([np.array(feats, dtype=np.float64), digits])
    model = load_model()
    score = fit_score if model is None else model.probability(features)
    q1 = joint_q1 if joint_gain > 0 else (_q1_quality(steps) if used else None)
    return DoubleJpegResult(score, fit_score, q1, steps, len(used), features)


@dataclass(frozen=True)
class DoubleJpegModel:
    """A logistic regression on some standardized entries of the feature vector (scikit-learn's fit, stored as
    plain JSON numbers so no pickle ships): p = sigmoid(coef . z + intercept), z = (x[names] - mean) / scale,
    a nan entry (a frequency that did not take part) set to z = 0, the training mean.  # mean, scale, coef [K]"""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float

    def columns(self) -> np.ndarray:
        """Where the model's features sit in feature_names().  # [K]"""
        return np.array([_feature_index()[n] for n in self.names], dtype=np.int64)

    def probability(self, features: np.ndarray) -> float:
        """P(saved twice) of one full feature vector [D] from double_jpeg()."""
        x = np.asarray(features, np.float64)[self.columns()]  # [K]
        z = np.nan_to_num((x - self.mean) / self.scale, nan=0.0)
        return float(1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept))))

    def to_json(self) -> dict[str, object]:
        return {"feature_names": list(self.names), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "threshold": self.threshold}

    @classmethod
    def from_json(cls, data: dict, source: str = "model") -> "DoubleJpegModel":
        """Checks the feature names against this module's, so a model fitted on other features is refused."""
        names = tuple(data.get("feature_names", ()))
        unknown = [n for n in names if n not in _feature_index()]
        if not names or unknown:
            raise ValueError(f"{source}: features unknown to forensics.evidence.double_jpeg: {unknown or 'none'}")
        arrays = [np.asarray(data[k], np.float64) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(names),) for a in arrays):
            raise ValueError(f"{source}: mean/scale/coef must each hold {len(names)} numbers")
        return cls(names, *arrays, float(data["intercept"]), float(data["threshold"]))


@lru_cache(maxsize=1)
def _feature_index() -> dict[str, int]:
    return {n: i for i, n in enumerate(feature_names())}


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_PATH) -> DoubleJpegModel | None:
    """The shipped model (double_jpeg_model.json beside this module), read once; None when absent."""
    if not path.exists():
        return None
    return DoubleJpegModel.from_json(json.loads(path.read_text()), str(path))


def double_jpeg_threshold() -> float:
    """The score above which a file counts as saved twice: the shipped model's (fitted with it), or the
    histogram-fit statistic's own when no model ships."""
    model = load_model()
    return FIT_SCORE_THRESHOLD if model is None else model.threshold
