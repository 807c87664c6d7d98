"""Model bundles: saved detectors + calibration + fusion + decision band, the one model `forensics scan` loads.

`model` reads, writes and scores a bundle; `fit` fits its calibration from validation scores; `build` trains a
bundle from a manifest (the command that makes the shipped default)."""
from forensics.bundle.model import (
    BUNDLE_FILE,
    FORMAT,
    BundleError,
    FaceScores,
    FittedCalibration,
    Fusion,
    ModelBundle,
    bundle_sha256,
    load_bundle,
    save_bundle,
)

__all__ = ["BUNDLE_FILE", "FORMAT", "BundleError", "FaceScores", "FittedCalibration", "Fusion", "ModelBundle", "bundle_sha256",
           "load_bundle", "save_bundle"]
