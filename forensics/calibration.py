"""Calibration: turn a detector's raw score into a probability that holds on post-processed media, and a
three-way decision that can abstain.

A threshold fitted on clean validation reals does not survive JPEG or blur: a real face that went through
them looks "processed", and a detector that learnt "processed = fake" calls it fake. So calibration is fitted
on validation scores of reals *and* fakes that went through the same post-processing family as analysts'
media (clean plus each perturbation of the sweep), and reported with its expected calibration error (ECE).

- `Calibrator`: Platt scaling (logistic regression on the score's logit) or isotonic regression (a monotone
  step function, scikit-learn's `IsotonicRegression`), both stored as plain JSON numbers.
- `DecisionBand`: calibrated P(fake) below `low` -> "no sign of manipulation", above `high` -> "likely
  manipulated", in between -> "inconclusive". The band's edges come from the validation set: `high` keeps the
  false-positive rate on (post-processed) validation reals at `target_fpr`, `low` keeps the share of
  validation fakes called clean at `target_fnr`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METHODS = ("platt", "isotonic")
LIKELY_MANIPULATED = "likely manipulated"
INCONCLUSIVE = "inconclusive"
NO_SIGN = "no sign of manipulation"
VERDICTS = (LIKELY_MANIPULATED, INCONCLUSIVE, NO_SIGN)
_EPS = 1e-6


def score_logit(scores: np.ndarray) -> np.ndarray:
    """log(s / (1 - s)) of P(fake) scores clipped away from 0 and 1 (some detectors say 1e-19).  # [N] -> [N]"""
    s = np.clip(np.asarray(scores, np.float64), _EPS, 1 - _EPS)
    return np.log(s) - np.log1p(-s)


class Calibrator:
    """Monotone map from a detector's score (P(fake) as the detector says it) to a calibrated probability."""

    def __init__(self, method: str = "platt") -> None:
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")
        self.method = method

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> "Calibrator":
        scores = np.asarray(scores, np.float64).ravel()
        labels = np.asarray(labels).astype(np.int64).ravel()
        if scores.shape != labels.shape:
            raise ValueError(f"{scores.size} scores but {labels.size} labels")
        if not ((labels == 0).any() and (labels == 1).any()):
            raise ValueError("calibration needs both reals (label 0) and fakes (label 1)")
        if self.method == "platt":
            from sklearn.linear_model import LogisticRegression

            # C large: Platt scaling is a 2-parameter fit, regularisation would only bias it toward 0.5.
            lr = LogisticRegression(C=1e4, max_iter=1000).fit(score_logit(scores)[:, None], labels)
            self.coef_ = float(lr.coef_[0, 0])
            self.intercept_ = float(lr.intercept_[0])
        else:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            iso.fit(score_logit(scores), labels.astype(np.float64))
            self.x_ = [float(v) for v in iso.X_thresholds_]
            self.y_ = [float(v) for v in iso.y_thresholds_]
        self.n_fit_ = int(labels.size)
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated P(fake).  # [N] -> [N] float64 in [0, 1]"""
        z = score_logit(scores)
        if self.method == "platt":
            if not hasattr(self, "coef_"):
                raise RuntimeError("Calibrator is not fitted")
            return 1.0 / (1.0 + np.exp(-(self.coef_ * z + self.intercept_)))
        if not hasattr(self, "x_"):
            raise RuntimeError("Calibrator is not fitted")
        return np.interp(z, self.x_, self.y_)

    def to_dict(self) -> dict[str, Any]:
        fitted = {k: v for k, v in vars(self).items() if k.endswith("_")}
        return {"method": self.method, **fitted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibrator":
        cal = cls(data["method"])
        expected = {"platt": ("coef_", "intercept_"), "isotonic": ("x_", "y_")}[cal.method]
        missing = [k for k in expected if k not in data]
        if missing:
            raise ValueError(f"calibration record lacks {missing}")
        for key, value in data.items():
            if key.endswith("_"):
                setattr(cal, key, value)
        if cal.method == "isotonic" and (len(cal.x_) != len(cal.y_) or np.any(np.diff(cal.y_) < 0)):
            raise ValueError("isotonic calibration record is not a monotone map")
        return cal


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE with equal-width bins: sum over bins of (share of samples) x |accuracy - mean confidence|, where a
    sample's "confidence" is P(fake) and its "accuracy" is its label (the reliability-diagram form for one class)."""
    y = np.asarray(labels, np.float64).ravel()
    p = np.asarray(probs, np.float64).ravel()
    if y.size == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            total += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(total)


@dataclass(frozen=True)
class DecisionBand:
    """Calibrated P(fake) <= low: no sign; > high: likely manipulated; otherwise inconclusive."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise ValueError(f"decision band needs 0 <= low <= high <= 1, got {self.low}, {self.high}")

    def verdict(self, prob: float) -> str:
        if prob > self.high:
            return LIKELY_MANIPULATED
        if prob <= self.low:
            return NO_SIGN
        return INCONCLUSIVE

    def verdicts(self, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs, np.float64)
        return np.where(p > self.high, LIKELY_MANIPULATED, np.where(p <= self.low, NO_SIGN, INCONCLUSIVE))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def fit(cls, labels: np.ndarray, probs: np.ndarray, target_fpr: float = 0.05, target_fnr: float = 0.05) -> "DecisionBand":
        """`high`: the smallest cut with at most `target_fpr` of validation reals above it; `low`: the largest cut
        with at most `target_fnr` of validation fakes at or below it. When the two classes barely overlap, low may
        exceed high: then the band collapses to one cut (midway), and nothing is inconclusive."""
        from forensics.metrics import threshold_at_fpr

        y = np.asarray(labels).astype(np.int64).ravel()
        p = np.asarray(probs, np.float64).ravel()
        high = threshold_at_fpr(p[y == 0], target_fpr)
        fakes = np.sort(p[y == 1])
        allowed = int(np.floor(target_fnr * fakes.size + 1e-9))  # fakes that may fall at or below `low`
        low = float(np.nextafter(fakes[allowed], -np.inf)) if allowed < fakes.size else high
        low = max(low, 0.0)
        if low > high:
            low = high = (low + high) / 2
        return cls(low=float(low), high=float(high))

    @classmethod
    def fit_worst_group(cls, labels: np.ndarray, probs: np.ndarray, groups: np.ndarray, target_fpr: float = 0.05,
                        target_fnr: float = 0.05, min_reals: int = 50) -> "DecisionBand":
        """Like `fit`, but `high` bounds the false-positive rate of the *worst* group (an identity, or an identity
        under one perturbation) with at least `min_reals` reals, not the pooled rate: a band fitted on pooled
        reals lets the largest person set it while a smaller one is flagged at several times the rate."""
        from forensics.metrics import threshold_at_fpr

        y = np.asarray(labels).astype(np.int64).ravel()
        p = np.asarray(probs, np.float64).ravel()
        g = np.asarray(groups).astype(str).ravel()
        pooled = cls.fit(y, p, target_fpr, target_fnr)
        highs = [threshold_at_fpr(p[(y == 0) & (g == name)], target_fpr)
                 for name in np.unique(g[y == 0]) if ((y == 0) & (g == name)).sum() >= min_reals]
        high = max([pooled.high, *highs])
        low = min(pooled.low, high)
        return cls(low=float(low), high=float(high))
