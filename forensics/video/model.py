"""The video model a bundle carries: the temporal detector, its fusion with the frame scores, the band.

A track is scored segment by segment (`forensics.video.segments`): the temporal detector turns a segment's
flicker features into P(fake); the fusion (stacked logistic regression, `forensics.video.fusion.FusionModel`)
combines it with the mean of the bundle's per-frame fused probabilities over the segment. A segment's *video
score* is one of the two, `video_score` says which: the fused score, or the temporal score alone where leave
one source video out it did better (the frame score's level shifts from one video to the next, and a
fusion fitted on a few videos can pay more for that than it gains). A track's video score is the mean over its
segments, judged by its own decision band (fitted on leave-one-video-out scores so that it bounds the worst
source video's false-positive rate).

The video score decides a track's verdict only where it wins: `decides` is True when, leave one source video
out, its band called more fake clips likely manipulated than the frame mean's did (see
`forensics.video.release.choose_video_score`, which also picks `video_score` that way). Otherwise the scan still
measures and shows the flicker and video scores, but the track is judged on its frames.

The flicker features are measured on a window rescaled so the face is `face_px` wide; a face smaller than
`min_face_side` source pixels would be upscaled into it, and its texture-normalised features and landmark
jitter are then out of their calibration (the 176x144 carphone video, face 58 px: its real clips scored 0.99
fake). Such segments get no temporal score (`measurable`), and the model never trains on them.

The features depend on how faces are found (landmark jitter is measured between detections), so the model
records the scan's keyframe spacing (`every`) and segment length it was trained with; a scan with other
settings reports the temporal score as unavailable rather than scoring out of its calibration.

Saved as a folder: video_model.json (settings, band, figures), detector/ (TemporalDetector), fusion/.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.calibration import DecisionBand
from forensics.data.media import write_bytes_atomic

VIDEO_MODEL_FORMAT = "forensics-video-model/1"
FRAMES_INPUT, TEMPORAL_INPUT = "frames:mean", "temporal"
FUSED = "fused"
VIDEO_SCORES = (FUSED, TEMPORAL_INPUT)  # what a model's video score can be


def face_is_measurable(face_side: float, min_face_side: float) -> bool:
    """The face-size guard, one rule for training and scan: at least `min_face_side` source pixels. An unknown
    (NaN) size passes only where there is no guard (min_face_side 0)."""
    return bool(min_face_side <= 0 or face_side >= min_face_side)


@dataclass
class VideoModel:
    temporal: Any  # forensics.detectors.temporal.TemporalDetector
    fusion: Any  # forensics.video.fusion.FusionModel over (FRAMES_INPUT, TEMPORAL_INPUT)
    band: DecisionBand  # on the video score
    every: int  # the scan's keyframe spacing the features were measured with
    segment_seconds: float
    face_px: int = 64
    decides: bool = True  # the video score decides the track's verdict (False: shown, the frames decide)
    record: dict[str, Any] = field(default_factory=dict)  # how it was trained, why it decides or not, its figures
    video_score: str = FUSED  # which of VIDEO_SCORES the band judges and the verdict uses
    min_face_side: float = 0.0  # segments whose face is smaller (source pixels) get no temporal score

    def __post_init__(self) -> None:
        if self.video_score not in VIDEO_SCORES:
            raise ValueError(f"video_score must be one of {VIDEO_SCORES}, got {self.video_score!r}")

    def segmenter(self, fps: float) -> Any:
        """A `TrackSegmenter` cutting tracks as this model's training clips were cut."""
        from forensics.video.segments import TrackSegmenter, segment_length

        return TrackSegmenter(segment_length(self.segment_seconds, fps), self.face_px)

    def measurable(self, face_side: float) -> bool:
        """Is a segment whose face is `face_side` source pixels wide within what the model measures?"""
        return face_is_measurable(face_side, self.min_face_side)

    def score_segments(self, features: list[dict[str, float]],
                       frames_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per segment: the temporal P(fake), the fused P(fake) and the video score (whichever of the two
        `video_score` names). -> ([S], [S], [S])"""
        import pandas as pd

        temporal = self.temporal.predict_proba(features)
        inputs = pd.DataFrame({FRAMES_INPUT: np.asarray(frames_mean, np.float64), TEMPORAL_INPUT: temporal})
        fused = self.fusion.predict_proba(inputs)
        return temporal, fused, (fused if self.video_score == FUSED else temporal)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        self.temporal.save(directory / "detector")
        self.fusion.save(directory / "fusion")
        config = {"format": VIDEO_MODEL_FORMAT, "every": self.every, "segment_seconds": self.segment_seconds,
                  "face_px": self.face_px, "band": self.band.to_dict(), "decides": self.decides,
                  "video_score": self.video_score, "min_face_side": self.min_face_side, "record": self.record}
        write_bytes_atomic(directory / "video_model.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "VideoModel":
        """A saved video model; a broken record or model file raises CheckpointError naming it."""
        import forensics.detectors as registry
        from forensics.modelfiles import CheckpointError, check_finite_numbers, read_json_object
        from forensics.video.fusion import FusionModel

        directory = Path(directory)
        path = directory / "video_model.json"
        config = read_json_object(path, ("format", "every", "segment_seconds", "face_px", "band", "decides"),
                                  "video model")
        if not isinstance(config["decides"], bool):
            raise CheckpointError(f"{path}: decides must be true or false, got {config['decides']!r}")
        video_score = config.get("video_score", FUSED)  # models saved before the choice existed: the fusion
        if video_score not in VIDEO_SCORES:
            raise CheckpointError(f"{path}: video_score must be one of {list(VIDEO_SCORES)}, got {video_score!r}")
        min_face_side = config.get("min_face_side", 0.0)  # models saved before the guard: no minimum
        if not isinstance(min_face_side, (int, float)) or isinstance(min_face_side, bool) or not 0 <= min_face_side <= 4096:
            raise CheckpointError(f"{path}: min_face_side must be a number of pixels, got {min_face_side!r}")
        if config["format"] != VIDEO_MODEL_FORMAT:
            raise CheckpointError(f"{path}: format {config['format']!r}, expected {VIDEO_MODEL_FORMAT!r}")
        check_finite_numbers(path, config["band"], "band")
        try:
            band = DecisionBand(**config["band"])
            every, seconds, face_px = int(config["every"]), float(config["segment_seconds"]), int(config["face_px"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        if every < 1 or not 0.1 <= seconds <= 60 or not 16 <= face_px <= 256:
            raise CheckpointError(f"{path}: every {every}, segment_seconds {seconds} or face_px {face_px} out of range")
        temporal = registry.load(directory / "detector")
        if temporal.name != "temporal":
            raise CheckpointError(f"{directory / 'detector'}: a {temporal.name!r} detector, expected 'temporal'")
        fusion = FusionModel.load(directory / "fusion")
        if tuple(fusion.inputs) != (FRAMES_INPUT, TEMPORAL_INPUT):
            raise CheckpointError(f"{directory / 'fusion'}: inputs {list(fusion.inputs)}, expected "
                                  f"{[FRAMES_INPUT, TEMPORAL_INPUT]}")
        return cls(temporal, fusion, band, every, seconds, face_px, config["decides"], dict(config.get("record") or {}),
                   video_score, float(min_face_side))

