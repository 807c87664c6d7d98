"""What an analyst reads off a calibrated detector, measured: per perturbation, the expected calibration error
of the probability and the three-way decisions' rates (reals called manipulated, fakes called clean, both sent
to "inconclusive"), on all test reals and on the reals of people the detector never saw in training.

Input is the benchmark's scores table with the calibrated columns `probability` and `verdict` (written for the
models trained on all generators).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from forensics.calibration import INCONCLUSIVE, LIKELY_MANIPULATED, NO_SIGN, expected_calibration_error


def _rate(mask: np.ndarray, among: np.ndarray) -> float:
    return float(mask[among].mean()) if among.any() else float("nan")


def decision_rates(labels: np.ndarray, probs: np.ndarray, verdicts: np.ndarray) -> dict[str, Any]:
    """ECE and the decision table of one set of faces."""
    y = np.asarray(labels).astype(np.int64)
    v = np.asarray(verdicts)
    real, fake = y == 0, y == 1
    return {
        "n_real": int(real.sum()), "n_fake": int(fake.sum()),
        "ece": expected_calibration_error(y, probs),
        "fpr": _rate(v == LIKELY_MANIPULATED, real),  # reals called "likely manipulated"
        "tpr": _rate(v == LIKELY_MANIPULATED, fake),
        "fnr": _rate(v == NO_SIGN, fake),  # fakes called "no sign of manipulation"
        "inconclusive_real": _rate(v == INCONCLUSIVE, real),
        "inconclusive_fake": _rate(v == INCONCLUSIVE, fake),
    }


def calibrated_decisions(scores: pd.DataFrame, unseen_identities: Iterable[str]) -> list[dict[str, Any]]:
    """One record per (detector, perturbation) of the calibrated rows: rates on every test face, and the FPR on
    reals whose identity never appeared among the training reals."""
    unseen = set(unseen_identities)
    rows = scores[scores["probability"].notna()]
    out = []
    for (det, pert), part in rows.groupby(["detector", "perturbation"], sort=True):
        rec = {"detector": det, "perturbation": pert,
               **decision_rates(part["label"].to_numpy(), part["probability"].to_numpy(), part["verdict"].to_numpy())}
        held = part[(part["label"] == 0) & part["identity"].isin(unseen)]
        rec["n_unseen_identity_reals"] = int(len(held))
        rec["fpr_unseen_identities"] = float((held["verdict"] == LIKELY_MANIPULATED).mean()) if len(held) else float("nan")
        out.append(rec)
    return out
