"""The temporal detector: per face track over a clip, flicker features that need no source video
(`forensics.video.features`) -> standardised logistic regression -> P(fake).

Its input is not an image batch but a feature table, one row per track: a DataFrame or list of dicts with the
feature names, or an array [N,F] in `feature_names` order. So it overrides `fit`/`predict_proba`'s input
handling and keeps the rest of the Detector contract: hyperparameters in `__init__`, `fit -> self`, fitted
state ending in `_`, `threshold_` calibrated on validation reals at `target_fpr`, save/load as safetensors + JSON.

To score a video the analyst has never seen: `forensics.video.features.video_track_records(path)` (or
`clip_track_records(frames, ...)` on frames already decoded) gives the features of every face track.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from forensics.detectors.base import Detector, NotFittedError
from forensics.video.features import SCORE_FEATURES, TRACK_FEATURES
from forensics.video.fusion import LinearHead, feature_matrix


class TemporalDetector(Detector):
    """Track features -> logistic regression. `features`: comma-separated names (default: every source-free
    track feature; add "score_std,score_diff" to use the spread of per-frame image scores)."""

    name = "temporal"

    def __init__(self, features: str = ",".join(TRACK_FEATURES), C: float = 1.0, target_fpr: float = 0.05,
                 seed: int = 0) -> None:
        self.features = features
        self.C = C
        self.target_fpr = target_fpr
        self.seed = seed

    @property
    def feature_names(self) -> list[str]:
        return [f.strip() for f in self.features.split(",") if f.strip()]

    def _matrix(self, table: Any) -> np.ndarray:
        return feature_matrix(table, self.feature_names)  # [N,F]

    def fit(self, table: Any, labels: np.ndarray, val_table: Any = None,
            val_labels: np.ndarray | None = None) -> "TemporalDetector":
        """Fit on per-track features with labels [N]; calibrate `threshold_` on validation reals (train reals
        when no validation set is given)."""
        from forensics.metrics import threshold_at_fpr

        x = self._matrix(table)
        y = np.asarray(labels).astype(np.int64).ravel()
        if y.size != x.shape[0]:
            raise ValueError(f"{x.shape[0]} feature rows but {y.size} labels")
        head = LinearHead.fit(x, y, self.C, self.seed)
        self.scaler_mean_, self.scaler_scale_, self.coef_ = head.mean, head.scale, head.coef
        self.intercept_ = np.array([head.intercept])
        self.n_features_in_ = int(x.shape[1])
        self.feature_names_ = self.feature_names
        if val_table is not None and val_labels is not None and (np.asarray(val_labels) == 0).any():
            vy = np.asarray(val_labels).astype(np.int64).ravel()
            reals, self.threshold_source_ = self.predict_proba(self._matrix(val_table)[vy == 0]), "val"
        else:
            reals, self.threshold_source_ = self.predict_proba(x[y == 0]), "train"
        self.threshold_ = threshold_at_fpr(reals, self.target_fpr)
        self.n_train_ = int(y.size)
        return self

    def _head(self) -> LinearHead:
        self._check_fitted()
        return LinearHead(self.scaler_mean_, self.scaler_scale_, self.coef_, float(self.intercept_[0]))

    def decision_function(self, table: Any) -> np.ndarray:
        """Logit of P(fake). [N]"""
        return self._head().decision(self._matrix(table))

    def predict_proba(self, table: Any) -> np.ndarray:
        """P(fake) per track. [N] float64"""
        return self._head().proba(self._matrix(table))

    def weights(self) -> dict[str, float]:
        """Standardised coefficient per feature (positive: more of it means more likely fake)."""
        self._check_fitted()
        return {n: round(float(c), 4) for n, c in zip(self.feature_names_, self.coef_)}

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("TemporalDetector is not fitted: call fit() or load() first")

    def _check_checkpoint(self, extra: dict[str, np.ndarray], source: Path) -> None:
        """Feature names known, as many as the config's `features`, and the head's arrays that long."""
        from forensics.modelfiles import CheckpointError, check_finite_numbers, check_standardised_head

        config = source.parent / "config.json"
        names = self.feature_names if isinstance(self.features, str) else None
        unknown = sorted(set(names or ()) - set(TRACK_FEATURES) - set(SCORE_FEATURES))
        if not names or unknown:
            raise CheckpointError(f"{config}: features {self.features!r} are not track features "
                                  f"(unknown: {unknown or 'none given'})")
        if self.__dict__.get("feature_names_") != names or self.__dict__.get("n_features_in_") != len(names):
            raise CheckpointError(f"{config}: fitted feature_names_/n_features_in_ disagree with features "
                                  f"{names} ({len(names)})")
        check_finite_numbers(config, self.__dict__.get("threshold_"), "fitted threshold_")
        if not isinstance(self.__dict__.get("threshold_"), (int, float)):
            raise CheckpointError(f"{config}: fitted threshold_ must be a number")
        check_standardised_head(source, vars(self), len(names), "temporal", extra)
