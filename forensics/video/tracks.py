"""Face tracks in decoded frames: MTCNN on every k-th frame, linear interpolation between, linked by box IoU.

A track keeps which of its entries are real detections: landmark jitter is measured on those only (the
interpolated ones are smooth by construction). Input is frames the caller already decoded, so the analyst's
scan can reuse its own frames; `forensics.data.faces.track_video` is the file-level counterpart.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from forensics.data.faces import Face, FaceDetector, box_iou, interpolate_tracks


@dataclass(frozen=True)
class FaceTrack:
    """One face followed through consecutive frames. Entry i belongs to frame `frame_idx[i]`."""

    frame_idx: np.ndarray  # [T] int64, increasing
    boxes: np.ndarray  # [T,4] x1, y1, x2, y2
    landmarks: np.ndarray  # [T,5,2]
    detected: np.ndarray  # [T] bool: an MTCNN detection (False: interpolated between two)

    def __len__(self) -> int:
        return int(self.frame_idx.size)

    @property
    def size(self) -> float:
        """Median box side in pixels."""
        return float(np.median(np.maximum(self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1])))

    def to_dict(self) -> dict[str, list]:
        return {"frame_idx": self.frame_idx.tolist(), "boxes": np.round(self.boxes, 2).tolist(),
                "landmarks": np.round(self.landmarks, 2).tolist(), "detected": self.detected.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list]) -> "FaceTrack":
        return cls(np.asarray(d["frame_idx"], np.int64), np.asarray(d["boxes"], np.float64).reshape(-1, 4),
                   np.asarray(d["landmarks"], np.float64).reshape(-1, 5, 2), np.asarray(d["detected"], bool))


def detect_scaled(detector: FaceDetector, frames: Sequence[np.ndarray], max_side: int | None = None) -> list[list[Face]]:
    """MTCNN on copies shrunk so the longer side is at most `max_side` (its image pyramid, not the faces, is what
    costs: a 640x360 frame takes ~3x the time of a 320x180 one here), boxes and landmarks scaled back."""
    if not frames:
        return []
    h, w = frames[0].shape[:2]
    scale = 1.0 if max_side is None or max(h, w) <= max_side else max_side / max(h, w)
    if scale == 1.0:
        return detector.detect(list(frames))
    small = [cv2.resize(f, (round(f.shape[1] * scale), round(f.shape[0] * scale)), interpolation=cv2.INTER_AREA)
             for f in frames]
    return [[replace(f, box=f.box / scale, landmarks=f.landmarks / scale) for f in faces]
            for faces in detector.detect(small)]


def detect_faces(frames: Sequence[np.ndarray], frame_idx: Sequence[int], detector: FaceDetector,
                 every: int = 2, max_side: int | None = None) -> tuple[dict[int, list[Face]], set[int]]:
    """Faces on every `every`-th frame (and the last), interpolated between. -> ({frame_idx: faces}, keyframes)"""
    if every < 1:
        raise ValueError("every must be >= 1")
    if len(frames) != len(frame_idx):
        raise ValueError(f"{len(frames)} frames but {len(frame_idx)} frame indices")
    if not frames:
        return {}, set()
    picks = sorted(set(range(0, len(frames), every)) | {len(frames) - 1})
    found = detect_scaled(detector, [frames[i] for i in picks], max_side)
    keyframes = {int(frame_idx[i]): faces for i, faces in zip(picks, found)}
    return interpolate_tracks(keyframes, [int(i) for i in frame_idx]), set(keyframes)


def link_tracks(faces: dict[int, list[Face]], keyframes: set[int], min_iou: float = 0.3,
                min_length: int = 2) -> list[FaceTrack]:
    """Link faces of consecutive frames into tracks (greedy, largest overlap first); a track ends at a gap or
    when nothing overlaps. Tracks shorter than `min_length` are dropped. Longest first."""
    open_tracks: list[dict] = []
    done: list[dict] = []
    prev_idx = None
    for idx in sorted(faces):
        if prev_idx is not None and idx != prev_idx + 1:  # a gap in the frames: every track ends
            done.extend(open_tracks)
            open_tracks = []
        pairs = sorted(((box_iou(t["boxes"][-1], f.box), ti, fi) for ti, t in enumerate(open_tracks)
                        for fi, f in enumerate(faces[idx])), reverse=True)
        used_t, used_f, cont = set(), set(), []
        assign: dict[int, int] = {}  # face -> open track
        for iou, ti, fi in pairs:
            if iou < min_iou or ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            assign[fi] = ti
        done.extend(t for ti, t in enumerate(open_tracks) if ti not in used_t)
        for fi, face in enumerate(faces[idx]):
            t = open_tracks[assign[fi]] if fi in assign else {"idx": [], "boxes": [], "landmarks": [], "detected": []}
            t["idx"].append(idx)
            t["boxes"].append(face.box)
            t["landmarks"].append(face.landmarks)
            t["detected"].append(idx in keyframes)
            cont.append(t)
        open_tracks = cont
        prev_idx = idx
    done.extend(open_tracks)
    tracks = [FaceTrack(np.asarray(t["idx"], np.int64), np.asarray(t["boxes"], np.float64).reshape(-1, 4),
                        np.asarray(t["landmarks"], np.float64).reshape(-1, 5, 2), np.asarray(t["detected"], bool))
              for t in done if len(t["idx"]) >= min_length]
    return sorted(tracks, key=lambda t: (-len(t), -t.size))


def main_track(tracks: Sequence[FaceTrack]) -> FaceTrack | None:
    """The clip's subject: the longest track, the larger face on a tie."""
    return tracks[0] if tracks else None


def track_frames(frames: Sequence[np.ndarray], frame_idx: Sequence[int], detector: FaceDetector, every: int = 2,
                 min_length: int = 2, max_side: int | None = None) -> list[FaceTrack]:
    """Detect and link: decoded frames (RGB [H,W,3] with their frame indices) -> face tracks, longest first."""
    faces, keys = detect_faces(frames, frame_idx, detector, every, max_side)
    return link_tracks(faces, keys, min_length=min_length)
