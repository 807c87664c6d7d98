"""Fitting a bundle's calibration, fusion and decision bands from already-trained detectors.

The calibration set is the validation split scored clean *and* after each post-processing of the sweep
(JPEG, blur, resize, noise): the probability an analyst reads must hold for the media analysts get, not only
for pristine crops. Every perturbed copy is seeded by its sample id, so a refit gives the same numbers.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from forensics.augment import CLEAN, perturb_batch, stable_seed
from forensics.bundle.model import FittedCalibration, Fusion
from forensics.calibration import Calibrator, DecisionBand


@dataclass
class CalibrationSet:
    """Raw scores of every detector on the validation faces, clean and perturbed, stacked."""

    raw: dict[str, np.ndarray]  # detector -> [M]
    labels: np.ndarray  # [M]
    perturbation: np.ndarray  # [M] the perturbation name of each row ("none" = clean)
    sample: np.ndarray  # [M] index of the validation face each row was made from


def score_calibration_set(detectors: dict[str, Any], images: np.ndarray, labels: np.ndarray,
                          sample_ids: Sequence[str], perturbations: Sequence[str], seed: int = 0) -> CalibrationSet:
    """Score `images [N,H,W,3]` clean and under each perturbation with every detector."""
    raw: dict[str, list[np.ndarray]] = {n: [] for n in detectors}
    names = []
    for pert in (CLEAN, *perturbations):
        batch = images
        if pert != CLEAN:
            batch, _ = perturb_batch(images, pert, [stable_seed(f"{s}:{pert}", seed) for s in sample_ids])
        for name, det in detectors.items():
            raw[name].append(det.predict_proba(batch))
        names.extend([pert] * len(images))
    return CalibrationSet(raw={n: np.concatenate(v) for n, v in raw.items()},
                          labels=np.tile(np.asarray(labels).astype(np.int64), 1 + len(perturbations)),
                          perturbation=np.asarray(names),
                          sample=np.tile(np.arange(len(images)), 1 + len(perturbations)))


def fit_calibration(cal: CalibrationSet, method: str = "platt", target_fpr: float = 0.05,
                    target_fnr: float = 0.05) -> FittedCalibration:
    """Per-detector calibrators and bands, the stacked fusion, and the fused decision band.

    The fusion is fitted on half of the validation rows and its decision band on the other half (split by
    the validation face, every perturbed copy with its face), so the band is not set on the very scores the
    fusion was fitted to."""
    calibrators = {n: Calibrator(method).fit(s, cal.labels) for n, s in cal.raw.items()}
    calibrated = {n: calibrators[n].predict(s) for n, s in cal.raw.items()}
    bands = {n: DecisionBand.fit(cal.labels, p, target_fpr, target_fnr) for n, p in calibrated.items()}
    half = cal.sample % 2 == 0
    fusion = Fusion.fit({n: p[half] for n, p in calibrated.items()}, cal.labels[half])
    fused_rest = fusion.predict({n: p[~half] for n, p in calibrated.items()})
    decision = DecisionBand.fit(cal.labels[~half], fused_rest, target_fpr, target_fnr)
    return FittedCalibration(calibrators, bands, fusion, decision)
