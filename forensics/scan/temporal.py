"""The per-track temporal step: one call per face track, wired to the bundle's temporal model when it has one.

Per-frame face scores miss what only shows over time (a per-frame face swap flickers). The video work
(`forensics.video`: track features such as landmark jitter and face-vs-background flicker, and the `temporal`
detector over them) supplies the model; a bundle that carries it will list a "temporal" entry in its
bundle.json. Until then every track gets `available: false` with the reason, and the report says so.

A track is handed over with what the video features need and the scan already has: frame indices, boxes,
landmarks, which entries were detected (not interpolated), and the per-frame fused probabilities; the
frames themselves are not kept (a long video would not fit in memory), so a temporal model that needs
pixels must read its clip's frames while the chunk is in memory (`forensics.scan.faces.AnalysedFrame`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NO_TEMPORAL_MODEL = "no temporal model in bundle"


@dataclass(frozen=True)
class TrackForTemporal:
    """A face track as the temporal step sees it (field names as in `forensics.video.tracks.FaceTrack`)."""

    frame_idx: np.ndarray  # [T] int64
    boxes: np.ndarray  # [T,4]
    landmarks: np.ndarray  # [T,5,2]
    detected: np.ndarray  # [T] bool
    scores: np.ndarray  # [T] fused per-frame probability
    fps: float


def has_temporal_model(bundle: Any) -> bool:
    return "temporal" in bundle.meta


def temporal_score(bundle: Any, track: TrackForTemporal) -> dict[str, Any]:
    """{available, probability, score, reason} for one track. Today's bundles carry no temporal model."""
    if not has_temporal_model(bundle):
        return {"available": False, "probability": None, "score": None, "reason": NO_TEMPORAL_MODEL}
    # A bundle that declares a temporal model this scan version cannot run is reported, never ignored.
    return {"available": False, "probability": None, "score": None,
            "reason": "the bundle's temporal model is not supported by this version of the scan"}
