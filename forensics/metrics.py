"""Detection metrics: ranking (AUC, AP, EER, TPR at low FPR), decisions at a calibrated threshold, log-loss,
seeded stratified bootstrap confidence intervals, per-generator / per-perturbation grouping and video-level
aggregation.

Convention everywhere: `labels` are 0 (real) / 1 (fake), `scores` are P(fake) or any score where higher means
"more fake". A sample is called fake when `score > threshold` (strict), so a threshold fitted with
`threshold_at_fpr` on real scores lets at most `target_fpr` of those reals through.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

MetricFn = Callable[[np.ndarray, np.ndarray], float]

_EPS = 1e-7


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.any()) and not bool(y.all())


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), one point per distinct score, starting at (0, 0); a sample is positive when
    score >= threshold (the ROC convention; identical to scikit-learn's unpruned curve)."""
    y, s = _check(labels, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]  # last index of each tied run
    tps = np.cumsum(y_sorted)[last_of_run]
    fps = (last_of_run + 1) - tps
    n_pos, n_neg = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    thr = np.r_[np.inf, s_sorted[last_of_run]]
    return fpr, tpr, thr


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    return float(_auc_rows(y[None, :], s[None, :])[0])


def _rankdata_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) along axis 1, ties averaged; vectorised over rows.  # [B,N] -> [B,N]"""
    from scipy.stats import rankdata

    return rankdata(x, axis=1, method="average")


def _auc_rows(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """AUC of each row of (labels [B,N], scores [B,N]) at once (used by the bootstrap)."""
    ranks = _rankdata_rows(s)
    n_pos = y.sum(axis=1).astype(np.float64)
    n_neg = y.shape[1] - n_pos
    rank_sum = (ranks * y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise AP (sum over thresholds of precision x recall increment), as scikit-learn defines it."""
    y, s = _check(labels, scores)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]
    tps = np.cumsum(y_sorted)[last_of_run].astype(np.float64)
    precision = tps / (last_of_run + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate: where the false-positive rate equals the false-negative rate, linearly interpolated
    between the two ROC points that bracket the crossing."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1.0 - tpr
    diff = fpr - fnr  # increases from -1 to +1 along the curve
    i = int(np.searchsorted(diff, 0.0, side="left"))
    if i == 0:
        return float(fpr[0])
    d0, d1 = diff[i - 1], diff[i]
    t = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float) -> float:
    """Highest TPR reachable by a threshold whose FPR does not exceed `max_fpr` (no interpolation)."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= max_fpr + 1e-12
    return float(tpr[ok].max())


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities clipped to [1e-7, 1 - 1e-7]."""
    y, p = _check(labels, probs)
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def threshold_at_fpr(real_scores: np.ndarray, target_fpr: float = 0.05) -> float:
    """Smallest threshold t such that the fraction of `real_scores` with score > t is at most `target_fpr`.

    Fitted on validation reals only, so it needs no fakes and transfers to unseen generators."""
    r = np.sort(np.asarray(real_scores, dtype=np.float64).ravel())
    if r.size == 0:
        raise ValueError("threshold_at_fpr needs at least one real score")
    if not 0.0 <= target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
    allowed = int(np.floor(target_fpr * r.size + 1e-9))  # reals that may lie above the threshold
    return float(r[r.size - 1 - allowed])


def accuracy_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, real accuracy (specificity) and fake accuracy (recall) when calling `score > threshold` fake."""
    y, s = _check(labels, scores)
    pred = (s > threshold).astype(np.int64)
    real, fake = y == 0, y == 1
    return {
        "accuracy": float(np.mean(pred == y)) if y.size else float("nan"),
        "real_accuracy": float(np.mean(pred[real] == 0)) if real.any() else float("nan"),
        "fake_accuracy": float(np.mean(pred[fake] == 1)) if fake.any() else float("nan"),
    }


# Metrics that get bootstrap CIs: name -> function of (labels, scores).
RANK_METRICS: dict[str, MetricFn] = {
    "auc": roc_auc,
    "ap": average_precision,
    "eer": eer,
    "tpr@fpr1%": lambda y, s: tpr_at_fpr(y, s, 0.01),
    "tpr@fpr5%": lambda y, s: tpr_at_fpr(y, s, 0.05),
}


def _stratified_indices(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Resample reals and fakes separately (keeps both classes in every replicate).  # [B,N]"""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    parts = [rng.choice(idx, size=(n_boot, idx.size), replace=True) for idx in (neg, pos) if idx.size]
    return np.concatenate(parts, axis=1)


def bootstrap_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    metric: str | MetricFn = "auc",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of a metric with class-stratified resampling; seeded, so reruns agree.

    AUC is computed for all replicates at once (rank formula); other metrics loop over replicates."""
    y, s = _check(labels, scores)
    if not _both_classes(y) or n_boot <= 0:
        return (float("nan"), float("nan"))
    idx = _stratified_indices(y, n_boot, seed)
    if metric == "auc":
        values = _auc_rows(y[idx], s[idx])
    else:
        fn = RANK_METRICS[metric] if isinstance(metric, str) else metric
        values = np.array([fn(y[row], s[row]) for row in idx])
    alpha = (1.0 - level) / 2
    lo, hi = np.nanquantile(values, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def compute_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci_metrics: Sequence[str] = ("auc", "ap", "eer"),
) -> dict[str, Any]:
    """All scalar metrics for one (labels, scores) set as a JSON-able dict.

    `threshold` is the detector's calibrated decision threshold; without it the threshold-based entries are
    computed at 0.5 and reported under `*_at_0.5` only. CIs are `[lo, hi]` lists under `<name>_ci`."""
    y, s = _check(labels, scores)
    out: dict[str, Any] = {"n": int(y.size), "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
    for name, fn in RANK_METRICS.items():
        out[name] = fn(y, s)
    for name in ci_metrics:
        out[f"{name}_ci"] = list(bootstrap_ci(y, s, name, n_boot=n_boot, seed=seed))
    in_unit = bool(s.size) and s.min() >= 0.0 and s.max() <= 1.0
    out["log_loss"] = log_loss(y, s) if in_unit else float("nan")
    out.update({f"{k}_at_0.5": v for k, v in accuracy_at(y, s, 0.5).items()})
    if threshold is not None:
        out["threshold"] = float(threshold)
        out.update(accuracy_at(y, s, threshold))
        out["fpr_at_threshold"] = float(np.mean(s[y == 0] > threshold)) if (y == 0).any() else float("nan")
    return out


def metrics_by_generator(
    df: pd.DataFrame,
    score_col: str = "score",
    threshold: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Metrics per fake generator, each on all reals plus that generator's fakes (reals are shared, so a
    generator's AUC measures how well its fakes separate from the real distribution); key "all" pools every
    generator. `df` needs columns label, generator and `score_col`."""
    out = {"all": compute_metrics(df["label"].to_numpy(), df[score_col].to_numpy(), threshold, n_boot, seed)}
    reals = df[df["label"] == 0]
    for gen in sorted(df.loc[df["label"] == 1, "generator"].astype(str).unique()):
        part = pd.concat([reals, df[(df["label"] == 1) & (df["generator"].astype(str) == gen)]])
        out[gen] = compute_metrics(part["label"].to_numpy(), part[score_col].to_numpy(), threshold, n_boot, seed)
    return out


def metrics_by(
    df: pd.DataFrame,
    by: Sequence[str],
    score_col: str = "score",
    n_boot: int = 1000,
    seed: int = 0,
    per_generator: bool = True,
) -> list[dict[str, Any]]:
    """One record per group of `by` (e.g. detector, train_generators, perturbation): the group's keys, then
    `metrics` (per generator when `per_generator`, else pooled). Uses the group's `threshold` column if any."""
    records = []
    for keys, part in df.groupby(list(by), sort=True, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        thr = float(part["threshold"].iloc[0]) if "threshold" in part and part["threshold"].notna().any() else None
        if per_generator:
            m = metrics_by_generator(part, score_col, thr, n_boot, seed)
        else:
            m = compute_metrics(part["label"].to_numpy(), part[score_col].to_numpy(), thr, n_boot, seed)
        records.append({**dict(zip(by, keys)), "metrics": m})
    return records


def aggregate_videos(
    df: pd.DataFrame, how: str = "mean", k: int = 3, score_col: str = "score"
) -> pd.DataFrame:
    """Frame scores -> one row per `video_id` (rows without a video_id are left out).

    how: "mean", "max" or "topk" (mean of the k highest frame scores: robust to a few bad frames yet sensitive
    to short manipulated segments). A video is fake if any of its frames is (label = max)."""
    if how not in ("mean", "max", "topk"):
        raise ValueError(f"unknown aggregation {how!r}: use mean, max or topk")
    vids = df[df["video_id"].notna() & (df["video_id"].astype(str) != "")]
    extra = [c for c in ("detector", "train_generators", "perturbation") if c in vids.columns]
    keys = extra + ["video_id"]
    if how == "mean":
        score = vids.groupby(keys)[score_col].mean()
    elif how == "max":
        score = vids.groupby(keys)[score_col].max()
    else:
        score = vids.groupby(keys)[score_col].apply(lambda x: float(np.sort(x.to_numpy())[-k:].mean()))
    agg = vids.groupby(keys).agg(label=("label", "max"), generator=("generator", "first"), n_frames=("label", "size"))
    agg[score_col] = score
    return agg.reset_index()
