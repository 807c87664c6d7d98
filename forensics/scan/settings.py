"""Every setting of a scan, in one frozen record: what the custody block lists and what `--resume` checks."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from forensics.data.media import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class ScanSettings:
    every: int = 10  # MTCNN on every K-th video frame, tracked in between
    max_frames: int | None = None  # analyse at most the first N frames of each video
    min_face: int = 40  # px: smaller faces are scored but abstain ("face too small")
    detect_side: int = 480  # px: long side of the copy MTCNN sees (kept large enough for min_face faces)
    min_detection_score: float = 0.9  # MTCNN face probability to keep a detection
    top_frames: int = 5  # most suspicious frames listed per video
    topk: int = 5  # k of the track's top-k mean
    thumb_side: int = 480  # px, long side of report thumbnails
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images/frames are refused, not decoded
    device: str = "cpu"  # MTCNN device: cpu | cuda | auto
    evidence: bool = True  # metadata, JPEG history, C2PA, where-maps, agreement table (forensics.evidence)
    runtime: str = "auto"  # what scores the faces: torch | onnx | auto (onnx when the bundle has an export)
    all_maps: bool = False  # Grad-CAM and ELA for every face / file, not only those not clearly clean

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.runtime not in ("auto", "torch", "onnx"):
            raise ValueError(f"runtime must be auto, torch or onnx, got {self.runtime!r}")
        if self.detect_side < 32:
            raise ValueError(f"detect_side must be >= 32 px, got {self.detect_side}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
