"""Training a bundle: fit detectors on train faces, calibrate on post-processed validation faces, save.

`build_bundle_from_arrays` is the core (tests call it on toy data); `build_bundle` reads a manifest's
train/val splits and is what the shipped default bundle is made with.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forensics.augment import PERTURBATIONS
from forensics.bundle.fit import fit_calibration, score_calibration_set
from forensics.bundle.model import save_bundle

DEFAULT_FACE = {"size": 128, "margin": 0.25, "aligner": "forensics.data.faces.align_face (MTCNN five points)"}


def build_bundle_from_arrays(out: str | Path, train: tuple[np.ndarray, np.ndarray],
                             val: tuple[np.ndarray, np.ndarray, Sequence[str]],
                             detectors: Mapping[str, Mapping[str, Any]],
                             perturbations: Sequence[str] = PERTURBATIONS, method: str = "platt",
                             target_fpr: float = 0.05, target_fnr: float = 0.05,
                             face: Mapping[str, Any] = DEFAULT_FACE, extra: Mapping[str, Any] | None = None,
                             fitted: Mapping[str, Any] | None = None, seed: int = 0, log=print) -> Path:
    """Train each detector in `detectors` (name -> hyperparameters) unless `fitted` already holds it, calibrate
    on `val` (images, labels, sample ids) clean and perturbed, and write the bundle to `out`."""
    import forensics.detectors as registry

    models = dict(fitted or {})
    for name, params in detectors.items():
        if name not in models:
            models[name] = registry.create(name, **dict(params)).fit(train[0], train[1], val[0], val[1])
            log(f"trained {name} on {len(train[1])} faces")
    cal = score_calibration_set(models, val[0], val[1], val[2], perturbations, seed)
    fitted_cal = fit_calibration(cal, method, target_fpr, target_fnr)
    record = {"calibration_set": {"faces": int(len(val[1])), "perturbations": ["none", *perturbations],
                                  "rows": int(cal.labels.size), "method": method,
                                  "target_fpr": target_fpr, "target_fnr": target_fnr}}
    return save_bundle(out, models, fitted_cal.calibrators, fitted_cal.bands, fitted_cal.fusion,
                       fitted_cal.decision, face, {**record, **dict(extra or {})})
