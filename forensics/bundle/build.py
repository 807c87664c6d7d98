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
    return save_bundle(out, models, fitted_cal, face, {**record, **dict(extra or {})})


def bundle_from_benchmark(bench_dir: str | Path, out: str | Path, detectors: Sequence[str] | None = None,
                          face: Mapping[str, Any] = DEFAULT_FACE) -> Path:
    """A bundle from a finished `forensics detect bench` run: its all-generator models, the calibration it fitted
    on post-processed validation faces, and a model card written from its metrics."""
    import json

    import forensics.detectors as registry
    from forensics.bundle.card import write_model_card
    from forensics.bundle.model import FittedCalibration

    bench_dir, out = Path(bench_dir), Path(out)
    cal = json.loads((bench_dir / "calibration.json").read_text())
    metrics = json.loads((bench_dir / "metrics.json").read_text())
    names = sorted(detectors or cal["detectors"])
    missing = sorted(set(names) - set(cal["detectors"]))
    if missing:
        raise ValueError(f"{bench_dir}: no calibrated all-generator model for {missing}")
    calibration = FittedCalibration.from_dict(cal)
    if set(calibration.fusion.detectors) != set(names):
        raise ValueError(f"{bench_dir}: its fusion combines {sorted(calibration.fusion.detectors)}, not {names}; "
                         "run the benchmark with exactly the bundle's detectors")
    models = {n: registry.load(bench_dir / "models" / f"{n}__all") for n in names}
    extra = {"calibration_set": cal["fitted_on"] | {"method": cal["method"]},
             "training": {"manifest": metrics["provenance"]["manifest"],
                          "manifest_sha256": metrics["provenance"]["manifest_sha256"],
                          "generators": metrics["generators"], "counts": metrics["counts"],
                          "config_sha256": metrics["provenance"]["config_sha256"],
                          "git_commit": metrics["provenance"].get("git_commit")},
             "model_card": "MODEL_CARD.md"}
    save_bundle(out, models, calibration, face, extra)
    write_model_card(out / "MODEL_CARD.md", metrics)
    return out
