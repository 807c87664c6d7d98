"""Calibration, decision bands and the fusion choice, all fitted on out-of-fold (leave-identity-out) scores.

Inputs are "wide" score tables: one row per (face, perturbation) with a column of raw scores per detector, plus
the face's label, identity and fold. The decision bands bound the *worst* identity's false-positive rate (each
identity under each perturbation is its own group), not the pooled one.

The fusion is only used where it wins: `choose_scorer` compares the stacked fusion with every single detector
on the worst identity's FPR at one common TPR, each scored leave-one-fold-out (the fusion fitted without the
fold it scores), and the winner is what the bundle's fused verdict uses.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forensics.bundle.model import FittedCalibration, Fusion
from forensics.calibration import Calibrator, DecisionBand


@dataclass(frozen=True)
class BandRule:
    method: str = "platt"
    target_fpr: float = 0.05  # of the worst identity (under its worst perturbation)
    target_fnr: float = 0.05
    min_reals: int = 50  # identities (x perturbation) with fewer reals do not set the band
    compare_tpr: float = 0.5  # the common TPR at which fusion and single detectors are compared


def band_groups(wide: pd.DataFrame) -> np.ndarray:
    """The group each row's FPR is bounded in: identity under perturbation."""
    return (wide["identity"].astype(str) + "|" + wide["perturbation"].astype(str)).to_numpy()


def worst_identity_fpr(labels: np.ndarray, probs: np.ndarray, groups: np.ndarray, threshold: float,
                       min_reals: int) -> tuple[float, str]:
    """The largest FPR over groups with >= min_reals reals at `threshold` (P > threshold is flagged)."""
    worst, name = 0.0, ""
    reals = labels == 0
    for g in np.unique(groups[reals]):
        sel = reals & (groups == g)
        if sel.sum() >= min_reals:
            fpr = float((probs[sel] > threshold).mean())
            if fpr > worst or not name:
                worst, name = max(worst, fpr), g
    return worst, name


def threshold_for_tpr(labels: np.ndarray, probs: np.ndarray, tpr: float) -> float:
    """The cut with `tpr` of the fakes above it."""
    fakes = np.sort(probs[labels == 1])
    return float(np.quantile(fakes, 1.0 - tpr)) if fakes.size else 1.0


def calibrate(wide: pd.DataFrame, names: Sequence[str], rule: BandRule) -> tuple[dict[str, Calibrator], dict[str, np.ndarray]]:
    labels = wide["label"].to_numpy(np.int64)
    calibrators = {n: Calibrator(rule.method).fit(wide[n].to_numpy(), labels) for n in names}
    return calibrators, {n: calibrators[n].predict(wide[n].to_numpy()) for n in names}


def fused_out_of_fold(calibrated: dict[str, np.ndarray], labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """The stacked fusion's P(fake) for each row, fitted on the other folds' rows only."""
    out = np.empty(len(labels))
    for f in np.unique(folds):
        inside = folds == f
        fusion = Fusion.fit({n: p[~inside] for n, p in calibrated.items()}, labels[~inside])
        out[inside] = fusion.predict({n: p[inside] for n, p in calibrated.items()})
    return out


def single(name: str, names: Sequence[str]) -> Fusion:
    """A 'fusion' that passes one detector's calibrated probability through unchanged (logit, coefficient 1)."""
    return Fusion(tuple(sorted(names)), tuple(1.0 if n == name else 0.0 for n in sorted(names)), 0.0)


def choose_scorer(wide: pd.DataFrame, names: Sequence[str], rule: BandRule = BandRule()) -> tuple[FittedCalibration, dict[str, Any]]:
    """Fit everything between raw scores and verdicts on out-of-fold scores, and pick fusion or one detector."""
    labels = wide["label"].to_numpy(np.int64)
    groups = band_groups(wide)
    folds = wide["fold"].to_numpy()
    calibrators, calibrated = calibrate(wide, names, rule)
    bands = {n: DecisionBand.fit_worst_group(labels, p, groups, rule.target_fpr, rule.target_fnr, rule.min_reals)
             for n, p in calibrated.items()}
    candidates = {n: calibrated[n] for n in names}
    if len(names) > 1 and len(np.unique(folds)) > 1:  # a fusion can only be scored out of fold with 2+ folds
        candidates["fused"] = fused_out_of_fold(calibrated, labels, folds)
    compared = {}
    for cand, probs in candidates.items():
        cut = threshold_for_tpr(labels, probs, rule.compare_tpr)
        fpr, where = worst_identity_fpr(labels, probs, groups, cut, rule.min_reals)
        compared[cand] = {"worst_identity_fpr": round(fpr, 4), "worst_group": where}
    singles = [n for n in names]
    best_single = min(singles, key=lambda n: (compared[n]["worst_identity_fpr"], n))
    use_fusion = "fused" in compared and compared["fused"]["worst_identity_fpr"] < compared[best_single]["worst_identity_fpr"]
    if use_fusion:
        fusion = Fusion.fit(calibrated, labels)
        decision = DecisionBand.fit_worst_group(labels, candidates["fused"], groups, rule.target_fpr,
                                                rule.target_fnr, rule.min_reals)
    else:
        fusion, decision = single(best_single, names), bands[best_single]
    record = {"compared_at_tpr": rule.compare_tpr, "candidates": compared, "best_single": best_single,
              "scorer": "fused" if use_fusion else best_single,
              "why": (f"the fusion's worst-identity FPR at TPR {rule.compare_tpr} "
                      f"({compared.get('fused', {}).get('worst_identity_fpr')}) "
                      f"{'beats' if use_fusion else 'does not beat'} {best_single}'s "
                      f"({compared[best_single]['worst_identity_fpr']}), each scored leave-one-fold-out")}
    return FittedCalibration(calibrators, bands, fusion, decision), record


def verdict_probabilities(fitted: FittedCalibration, wide: pd.DataFrame) -> np.ndarray:
    """The bundle's final P(fake) for each row of a wide score table (what the scan's fused verdict reads)."""
    calibrated = {n: fitted.calibrators[n].predict(wide[n].to_numpy()) for n in fitted.calibrators}
    return fitted.fusion.predict(calibrated)
