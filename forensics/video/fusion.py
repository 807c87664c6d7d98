"""Named-feature logistic regression (the temporal detector's head) and the stacked video-level fusion model.

Both standardise named inputs, impute missing values (a clip too short for jitter, no image scores) with the
training mean, and keep the fitted head as plain arrays scored in numpy: a saved model reloads to identical
scores and nothing is pickled.

Fusion (stacking, Wolpert 1992): the base scores of a clip (frame-score aggregations of the image detectors,
the temporal detector's score) are fitted to the label by a logistic regression on *validation* clips, which
none of the base models saw in training, so the weights reflect how each base score generalises.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensics.data.media import write_bytes_atomic

FUSION_FORMAT = "forensics-fusion/1"


def feature_matrix(table: Any, names: Sequence[str]) -> np.ndarray:
    """Named features -> [N,F] float64 in `names` order. table: DataFrame, list of {name: value} dicts, a
    single dict, or an array already in that order. Missing names are an error naming them."""
    if isinstance(table, np.ndarray):
        x = np.atleast_2d(table.astype(np.float64))
        if x.shape[1] != len(names):
            raise ValueError(f"got {x.shape[1]} feature columns, expected {len(names)}: {list(names)}")
        return x
    if isinstance(table, Mapping):
        table = [table]
    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ValueError(f"features missing from the input: {missing}")
    return df[list(names)].to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class LinearHead:
    """Standardise (NaN -> training mean), then logistic regression. Arrays only."""

    mean: np.ndarray  # [F]
    scale: np.ndarray  # [F]
    coef: np.ndarray  # [F]
    intercept: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, C: float = 1.0, seed: int = 0) -> "LinearHead":
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(x, np.float64)
        y = np.asarray(y).astype(np.int64).ravel()
        if not ((y == 0).any() and (y == 1).any()):
            raise ValueError("fitting needs both reals (0) and fakes (1)")
        finite = np.isfinite(x)
        counts = finite.sum(axis=0)
        mean = np.where(finite, x, 0.0).sum(axis=0) / np.maximum(counts, 1)  # a feature missing everywhere: 0
        z = np.where(np.isfinite(x), x, mean)
        scale = z.std(axis=0)
        scale[scale < 1e-12] = 1.0
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=seed)
        clf.fit((z - mean) / scale, y)
        return cls(mean, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0]))

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Logit of P(fake). [N,F] -> [N]"""
        x = np.asarray(x, np.float64)
        z = (np.where(np.isfinite(x), x, self.mean) - self.mean) / self.scale
        return z @ self.coef + self.intercept

    def proba(self, x: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        return expit(self.decision(x))

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {f"{prefix}mean": self.mean, f"{prefix}scale": self.scale, f"{prefix}coef": self.coef,
                f"{prefix}intercept": np.array([self.intercept])}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> "LinearHead":
        return cls(np.asarray(arrays[f"{prefix}mean"], np.float64), np.asarray(arrays[f"{prefix}scale"], np.float64),
                   np.asarray(arrays[f"{prefix}coef"], np.float64), float(arrays[f"{prefix}intercept"][0]))


class FusionModel:
    """Stacked logistic regression over named base scores, fitted on validation clips.

    inputs: base score names (e.g. "spectral:mean", "spectral:confident", "temporal"); probabilities are
    passed through a logit first so the linear head sees unbounded, comparable inputs."""

    def __init__(self, inputs: Sequence[str], C: float = 1.0, target_fpr: float = 0.05, seed: int = 0) -> None:
        self.inputs = tuple(inputs)
        self.C = C
        self.target_fpr = target_fpr
        self.seed = seed

    @staticmethod
    def _logit(x: np.ndarray) -> np.ndarray:
        p = np.clip(x, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def fit(self, table: Any, labels: np.ndarray) -> "FusionModel":
        from forensics.metrics import threshold_at_fpr

        x = self._logit(feature_matrix(table, self.inputs))
        y = np.asarray(labels).astype(np.int64).ravel()
        self.head_ = LinearHead.fit(x, y, self.C, self.seed)
        self.threshold_ = threshold_at_fpr(self.head_.proba(x[y == 0]), self.target_fpr)
        self.n_fit_ = int(y.size)
        return self

    def predict_proba(self, table: Any) -> np.ndarray:
        """P(fake) per row. [N]"""
        if not hasattr(self, "head_"):
            raise RuntimeError("FusionModel is not fitted: call fit() or load() first")
        return self.head_.proba(self._logit(feature_matrix(table, self.inputs)))

    def weights(self) -> dict[str, float]:
        """Standardised coefficient per input (how much each base score counts)."""
        return {n: round(float(c), 4) for n, c in zip(self.inputs, self.head_.coef)}

    def save(self, directory: str | Path) -> Path:
        from safetensors.numpy import save as st_save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"format": FUSION_FORMAT, "inputs": list(self.inputs), "C": self.C, "target_fpr": self.target_fpr,
                  "seed": self.seed, "threshold": self.threshold_, "n_fit": self.n_fit_}
        write_bytes_atomic(directory / "weights.safetensors", st_save(self.head_.arrays(), metadata={"format": FUSION_FORMAT}))
        write_bytes_atomic(directory / "config.json", (json.dumps(config, indent=2) + "\n").encode())
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "FusionModel":
        """Rebuild a saved fusion model; a corrupt or pickled file, or a head whose length is not the number of
        inputs, raises CheckpointError naming the file before any array is used."""
        from forensics.modelfiles import (CheckpointError, MissingModelFile, check_finite_numbers, check_shapes,
                                          read_json_object, read_safetensors)

        directory = Path(directory)
        cfg_path, weights = directory / "config.json", directory / "weights.safetensors"
        config = read_json_object(cfg_path, ("format", "inputs", "C", "target_fpr", "seed", "threshold", "n_fit"),
                                  "fusion model config")
        if config.get("format") != FUSION_FORMAT:
            raise CheckpointError(f"{directory}: not a fusion model (format {config.get('format')!r})")
        inputs = config["inputs"]
        if not (isinstance(inputs, list) and inputs and all(isinstance(i, str) for i in inputs)):
            raise CheckpointError(f"{cfg_path}: inputs must be a non-empty list of names, got {inputs!r:.200}")
        threshold = config["threshold"]
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
            raise CheckpointError(f"{cfg_path}: threshold must be a number, got {threshold!r}")
        check_finite_numbers(cfg_path, threshold, "threshold")
        if not weights.exists():
            raise MissingModelFile(f"{weights}: missing")
        arrays, _ = read_safetensors(weights, "numpy")
        n = len(inputs)
        check_shapes(weights, {"mean": (n,), "scale": (n,), "coef": (n,), "intercept": (1,)}, arrays,
                     f"a fusion head on {n} inputs")
        if not (arrays["scale"] > 0).all():
            raise CheckpointError(f"{weights}: tensor 'scale' has entries <= 0 (a standardiser divides by it)")
        model = cls(inputs, config["C"], config["target_fpr"], config["seed"])
        model.head_ = LinearHead.from_arrays(arrays)
        model.threshold_, model.n_fit_ = float(threshold), int(config["n_fit"])
        return model
