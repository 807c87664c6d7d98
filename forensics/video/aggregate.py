"""Frame scores -> one score per track or video. `forensics.metrics.aggregate_videos` does mean/max/top-k on a
scores table; these work on one array, add the DFDC-style confident mean, and feed the fusion model.

The confident mean follows the strategy of the DFDC winning entry (Seferbekov 2020) as described in its
write-up: when enough frames are confidently fake, average only those (a manipulation shown in part of a
video must not be diluted by the clean part); when nearly all frames are confidently real, average those;
otherwise the plain mean.
"""
from __future__ import annotations

import numpy as np

AGGREGATIONS: tuple[str, ...] = ("mean", "max", "topk", "confident")


def topk_mean(scores: np.ndarray, k: int = 3) -> float:
    """Mean of the k highest scores (all of them when there are fewer)."""
    s = np.sort(np.asarray(scores, np.float64))
    return float(s[-k:].mean())


def confident_mean(scores: np.ndarray, high: float = 0.8, low: float = 0.2, fake_share: float = 0.4,
                   min_fake: int = 5, real_share: float = 0.9) -> float:
    """DFDC-style: mean of the confidently-fake frames when they are >= `fake_share` of the frames and at least
    `min_fake` of them; else the mean of the confidently-real frames when they are >= `real_share`; else the
    mean. (The entry used 11 frames of 32 per video; `min_fake` scales that to 2 s clips.)"""
    s = np.asarray(scores, np.float64)
    fake, real = s[s > high], s[s < low]
    if fake.size >= max(min_fake, fake_share * s.size):
        return float(fake.mean())
    if real.size >= real_share * s.size:
        return float(real.mean())
    return float(s.mean())


def aggregate(scores: np.ndarray, how: str = "mean", k: int = 3) -> float:
    """One of AGGREGATIONS over a 1-D array of per-frame P(fake); NaN for an empty array."""
    s = np.asarray(scores, np.float64).ravel()
    s = s[np.isfinite(s)]
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {AGGREGATIONS}")
    if s.size == 0:
        return float("nan")
    if how == "mean":
        return float(s.mean())
    if how == "max":
        return float(s.max())
    if how == "topk":
        return topk_mean(s, k)
    return confident_mean(s)


def aggregate_all(scores: np.ndarray, k: int = 3) -> dict[str, float]:
    """Every aggregation of one score array. -> {how: value}"""
    return {how: aggregate(scores, how, k) for how in AGGREGATIONS}
