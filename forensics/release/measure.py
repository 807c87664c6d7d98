"""The release recipe's figures: leave-one-identity-out decisions, test AUC per generator, ECE, seed spread.

- `loio_decisions`: for each fold identity, the *whole* fitting chain (calibration, fusion choice, band) is
  refitted without that identity's fold and applied to its out-of-fold scores: the FPR it gets is what a person
  the bundle never saw would get, with no threshold set on them.
- `test_figures`: the final models on the held-out test split (people absent from train+val, plus an unseen
  classical Poisson face swap), with the shipped calibration.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forensics.augment import CLEAN
from forensics.calibration import INCONCLUSIVE, LIKELY_MANIPULATED, NO_SIGN, expected_calibration_error
from forensics.metrics import bootstrap_ci, roc_auc
from forensics.release.calibrate import BandRule, choose_scorer, verdict_probabilities


def decision_rates(wide: pd.DataFrame, probs: np.ndarray, fitted) -> dict[str, Any]:
    """FPR per (identity, perturbation) and TPR per (generator, perturbation) at the fitted band."""
    verdicts = fitted.decision.verdicts(probs)
    frame = wide.assign(flagged=verdicts == LIKELY_MANIPULATED, clear=verdicts == NO_SIGN,
                        unsure=verdicts == INCONCLUSIVE)
    reals, fakes = frame[frame["label"] == 0], frame[frame["label"] == 1]
    fpr = (reals.groupby(["identity", "perturbation"]).agg(fpr=("flagged", "mean"), n=("flagged", "size"),
                                                           inconclusive=("unsure", "mean")).reset_index())
    tpr = (fakes.groupby(["generator", "perturbation"]).agg(tpr=("flagged", "mean"), n=("flagged", "size"),
                                                            missed=("clear", "mean")).reset_index())
    return {"fpr": fpr.round(4).to_dict("records"), "tpr": tpr.round(4).to_dict("records")}


def loio_decisions(oof: pd.DataFrame, names: Sequence[str], rule: BandRule, fold_identity: dict[int, str]) -> dict[str, Any]:
    """Per fold identity: refit without its fold, decide its out-of-fold rows."""
    out = {}
    for fold, identity in sorted(fold_identity.items()):
        inside = (oof["fold"] == fold).to_numpy()
        fitted, record = choose_scorer(oof[~inside], names, rule)
        part = oof[inside]
        rates = decision_rates(part, verdict_probabilities(fitted, part), fitted)
        out[identity] = {"fold": int(fold), "scorer": record["scorer"], **rates}
    return out


def auc_with_ci(labels: np.ndarray, scores: np.ndarray, seed: int = 0) -> dict[str, float]:
    lo, hi = bootstrap_ci(labels, scores, "auc", n_boot=500, seed=seed)
    return {"auc": round(roc_auc(labels, scores), 4), "lo": round(lo, 4), "hi": round(hi, 4),
            "reals": int((labels == 0).sum()), "fakes": int((labels == 1).sum())}


def auc_by_generator(wide: pd.DataFrame, probs: np.ndarray) -> dict[str, dict[str, float]]:
    """AUC of each generator's fakes against all reals of the same perturbation, clean rows only."""
    clean = (wide["perturbation"] == CLEAN).to_numpy()
    y = wide["label"].to_numpy()
    out = {"all": auc_with_ci(y[clean], probs[clean])}
    for gen in sorted(wide.loc[wide["label"] == 1, "generator"].unique()):
        sel = clean & ((y == 0) | (wide["generator"] == gen).to_numpy())
        out[gen] = auc_with_ci(y[sel], probs[sel])
    return out


def ece_by_perturbation(wide: pd.DataFrame, probs: np.ndarray) -> dict[str, float]:
    y = wide["label"].to_numpy()
    out = {}
    for pert in sorted(wide["perturbation"].unique()):
        sel = (wide["perturbation"] == pert).to_numpy()
        out[pert] = round(expected_calibration_error(y[sel], probs[sel]), 4)
    out["all"] = round(expected_calibration_error(y, probs), 4)
    return out


def seed_spread(test: pd.DataFrame, seeds: Sequence[int], exclude: Sequence[str] = ()) -> dict[str, Any]:
    """CNN test AUC (clean, every fake but `exclude`) per seed, their spread, and the seed-ensemble's
    (mean logit)."""
    from forensics.calibration import score_logit

    clean = test[(test["perturbation"] == CLEAN) & ~test["generator"].isin(exclude)]
    y = clean["label"].to_numpy()
    per_seed = {int(s): round(roc_auc(y, clean[f"cnn_seed{s}"].to_numpy()), 4) for s in seeds}
    ensemble = np.mean([score_logit(clean[f"cnn_seed{s}"].to_numpy()) for s in seeds], axis=0)
    return {"auc_per_seed": per_seed, "spread": round(max(per_seed.values()) - min(per_seed.values()), 4),
            "ensemble_auc": round(roc_auc(y, ensemble), 4)}


def test_figures(test: pd.DataFrame, fitted, names: Sequence[str]) -> dict[str, Any]:
    """The shipped calibration on the final models' test scores: decisions, AUC per generator (shipped scorer
    and each detector), ECE."""
    probs = verdict_probabilities(fitted, test)
    per_detector = {n: auc_by_generator(test, fitted.calibrators[n].predict(test[n].to_numpy())) for n in names}
    return {"decisions": decision_rates(test, probs, fitted), "auc": auc_by_generator(test, probs),
            "auc_per_detector": per_detector, "ece": ece_by_perturbation(test, probs)}
