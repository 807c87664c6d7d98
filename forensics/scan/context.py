"""What every file's analysis needs (loaded once per process) and what it gives back."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forensics.scan.faces import FaceFinder
from forensics.scan.settings import ScanSettings
from forensics.scan.timing import StageTimer
from forensics.scan.verdict import AbstainRules


@dataclass
class ScanContext:
    bundle: Any  # forensics.bundle.ModelBundle
    finder: FaceFinder
    settings: ScanSettings
    rules: AbstainRules
    timer: StageTimer = field(default_factory=StageTimer)
    evidence: Any = None  # forensics.scan.evidence.EvidenceKit, None when the scan runs without evidence

    @property
    def band(self) -> tuple[float, float]:
        return (self.bundle.decision.low, self.bundle.decision.high)

    @property
    def detector_names(self) -> list[str]:
        return [e["name"] for e in self.bundle.meta["detectors"]]

    def score(self, crops: np.ndarray):
        """The bundle's scores of aligned crops.  # [N,S,S,3] uint8 -> FaceScores"""
        with self.timer.stage("score"):
            return self.bundle.score(crops)


@dataclass
class Analysis:
    """A file's analysed content: its scan.json fields (without identity and integrity) and its pictures."""

    fields: dict[str, Any]  # media, faces, video, verdict, probability, reasons
    assets: dict[str, bytes]  # file name inside the file's asset folder -> bytes


def make_context(bundle: Any, settings: ScanSettings, timer: StageTimer | None = None) -> ScanContext:
    from forensics.data.faces import FaceDetector
    from forensics.runtime import select_runtime
    from forensics.scan.verdict import calibrated_jpeg_floor

    select_runtime(bundle, settings.runtime)  # BundleError (a ValueError) when onnx was asked for and cannot run

    detector = FaceDetector(min_score=settings.min_detection_score, device=settings.device)
    rules = AbstainRules(min_face=settings.min_face, heavy_jpeg_quality=calibrated_jpeg_floor(bundle.meta))
    finder = FaceFinder(detector, settings.detect_side, settings.min_face)
    kit = None
    if settings.evidence:
        from forensics.scan.evidence import EvidenceKit

        kit = EvidenceKit.load(bundle)
    return ScanContext(bundle, finder, settings, rules, timer or StageTimer(), kit)
