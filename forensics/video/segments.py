"""Flicker features on a stream of frames: each face track cut into fixed-length segments as the frames go by.

The scan never holds a whole video: its frames live for one chunk. So the temporal features are computed on
segments (the clip length the temporal model was trained on, e.g. 2 s): for each open track, the segmenter
keeps the window around the face (fixed at the segment's first frame, `grow` x the face box, rescaled so the
face is `face_px` wide: ~190x190 px whatever the video) and the track's boxes, landmarks and per-frame
probabilities; a segment that is full, or whose track is gone, becomes a `Segment` with its features.

Training (`forensics.video.bundle_model`) runs the same tracker and this segmenter on each clip, so the model
meets features measured exactly as the scan measures them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forensics.video.features import region_frame, window_around, windowed_track_features
from forensics.video.tracks import FaceTrack

MIN_SEGMENT_FRAMES = 12  # shorter leftovers are not scored: too few detections for landmark jitter


def segment_length(seconds: float, fps: float) -> int:
    """Frames in a segment of `seconds` (25 fps when the container gives none)."""
    return max(3, int(round(seconds * (fps if fps > 0 else 25.0))))


@dataclass
class _Open:
    window: tuple[int, int, int, int]
    scale: float
    region: list[np.ndarray] = field(default_factory=list)
    frame_idx: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    landmarks: list[np.ndarray] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    probability: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Segment:
    """A stretch of one face track with its flicker features."""

    track: int
    frame_idx: np.ndarray  # [T]
    probability: np.ndarray  # [T] the bundle's per-frame fused probability
    features: dict[str, float]
    flicker: np.ndarray  # [T] per-frame face-vs-background warping error (log ratio; NaN on the first frame)
    face_side: float = float("nan")  # the face box's longer side in the video's pixels at the segment's start

    @property
    def frames_mean(self) -> float:
        return float(np.mean(self.probability))


class TrackSegmenter:
    """Feed every face of every frame in order (`add`), then `finish_missing` after each frame and `finish_all`
    at the end; each returns the segments completed."""

    def __init__(self, segment_frames: int, face_px: int = 64, grow: float = 3.0,
                 min_frames: int = MIN_SEGMENT_FRAMES) -> None:
        if segment_frames < 3:
            raise ValueError("a segment needs at least 3 frames")
        self.segment_frames, self.face_px, self.grow = segment_frames, face_px, grow
        self.min_frames = min(min_frames, segment_frames)
        self._open: dict[int, _Open] = {}

    def add(self, track: int, frame_idx: int, frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray,
            detected: bool, probability: float) -> list[Segment]:
        seg = self._open.get(track)
        if seg is None:
            try:
                window, scale = window_around(np.asarray(box, np.float64), frame.shape[:2], self.grow, self.face_px)
            except ValueError:  # a face at the very edge of the frame: no window to measure in
                return []
            seg = self._open[track] = _Open(window, scale)
        seg.region.append(region_frame(frame, seg.window, seg.scale))
        seg.frame_idx.append(int(frame_idx))
        seg.boxes.append(np.asarray(box, np.float64))
        seg.landmarks.append(np.asarray(landmarks, np.float64))
        seg.detected.append(bool(detected))
        seg.probability.append(float(probability))
        if len(seg.frame_idx) >= self.segment_frames:
            return self._close(track)
        return []

    def finish_missing(self, present: set[int]) -> list[Segment]:
        """Close the segments of tracks absent from the last frame (their track has ended)."""
        return [s for t in sorted(set(self._open) - present) for s in self._close(t)]

    def finish_all(self) -> list[Segment]:
        return [s for t in sorted(self._open) for s in self._close(t)]

    def _close(self, track: int) -> list[Segment]:
        seg = self._open.pop(track)
        if len(seg.frame_idx) < self.min_frames:
            return []
        face_track = FaceTrack(np.asarray(seg.frame_idx, np.int64), np.stack(seg.boxes), np.stack(seg.landmarks),
                               np.asarray(seg.detected, bool))
        probability = np.asarray(seg.probability, np.float64)
        features, flicker = windowed_track_features(seg.region, seg.window, seg.scale, face_track, probability)
        return [Segment(track, face_track.frame_idx, probability, features, flicker, self.face_px / seg.scale)]
