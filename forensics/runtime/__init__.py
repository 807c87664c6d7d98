"""Which runtime scores a bundle's faces: torch / numpy (the detectors themselves) or ONNX Runtime (the files
`forensics detect export BUNDLE --onnx` wrote into the bundle).

`select_runtime(bundle, "auto" | "torch" | "onnx") -> "torch" | "onnx"` sets `bundle.predictors` (detector name
-> an object with the detector's `predict_proba` / `predict_with_embedding`, running its ONNX file) and
`bundle.mask_runner` (the mask head's ONNX file as `crops -> masks`); `ModelBundle.score` and `MaskHead.predict`
use them where set and the detectors otherwise, so the outputs keep their structure and the calibration,
fusion, OOD distance and attribution are the same code on both runtimes. "auto" picks onnx when the bundle has
an export and onnxruntime imports, and torch otherwise (also, with a warning, when the export is stale).
Grad-CAM needs gradients and stays on torch.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

RUNTIMES = ("auto", "torch", "onnx")
_BATCH = 256


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxDetector:
    """A detector whose scores come from its ONNX file; validation and resizing stay the detector's own
    (`_prepare`), so both runtimes see the same pixels."""

    def __init__(self, detector: Any, session: Any) -> None:
        self.detector = detector
        self.session = session
        self.name = detector.name

    def _outputs(self, images: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(self.detector._prepare(images))  # [N,H,W,3] uint8 at the fitted size
        parts = [self.session.run(None, {"crops": x[i:i + _BATCH]}) for i in range(0, len(x), _BATCH)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """P(fake) [N] float64, as the detector's own `predict_proba`."""
        from scipy.special import expit

        out = self._outputs(images)
        if hasattr(self.detector, "predict_with_embedding"):  # the CNN gives logits
            return expit(out[0].astype(np.float64))
        return out[0].astype(np.float64)

    def predict_with_embedding(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.special import expit

        logits, emb = self._outputs(images)
        return expit(logits.astype(np.float64)), emb.astype(np.float32)


class OnnxMask:
    """The mask head's ONNX file: uint8 crops at the head's side [N,S,S,3] -> [N,S,S] float32."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(crops)
        if len(x) == 0:
            return np.zeros((0,) + x.shape[1:3], np.float32)
        return np.concatenate([self.session.run(None, {"crops": x[i:i + _BATCH]})[0]
                               for i in range(0, len(x), _BATCH)]).astype(np.float32)


def select_runtime(bundle: Any, requested: str = "auto") -> str:
    """Point `bundle` at the requested runtime and return the one in use (module docstring). "onnx" without an
    export, without onnxruntime, or with a stale or refused export raises BundleError naming why."""
    from forensics.bundle.model import BundleError
    from forensics.runtime.export import MASK_FOLDER
    from forensics.runtime.session import StaleExport, load_exported, make_session, read_record

    if requested not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {requested!r}")
    bundle.predictors, bundle.mask_runner, bundle.runtime = {}, None, "torch"
    if requested == "torch":
        return "torch"
    has_export = read_record(bundle.root) is not None
    if requested == "auto" and not (has_export and onnxruntime_available()):
        return "torch"
    if not onnxruntime_available():
        raise BundleError("--runtime onnx needs the onnxruntime package (pip install onnxruntime)")
    if not has_export:
        raise BundleError(f"{bundle.root}: no ONNX export; run `forensics detect export {bundle.root} --onnx`")
    try:
        exported = load_exported(bundle.root)
    except StaleExport as exc:
        if requested == "onnx":
            raise
        print(f"forensics: {exc}; scoring with torch", file=sys.stderr)
        return "torch"
    bundle.predictors = {name: OnnxDetector(det, make_session(exported[name].data))
                         for name, det in bundle.detectors.items() if name in exported}
    if MASK_FOLDER in exported:
        bundle.mask_runner = OnnxMask(make_session(exported[MASK_FOLDER].data))
    bundle.runtime = "onnx"
    return "onnx"


__all__ = ["RUNTIMES", "OnnxDetector", "OnnxMask", "onnxruntime_available", "select_runtime"]
