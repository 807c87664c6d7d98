"""Faces for the scan: MTCNN on images and on every K-th video frame, faces linked into tracks, and every face
aligned by `forensics.data.faces.align_face` at the bundle's size and margin (how its training crops were made).

Detection runs on a scaled-down copy: `detect_side` px on the long side, but never so small that a face of
`min_face` px would fall under MTCNN's smallest (20 px): every face the scan would judge is still found, and
MTCNN's cost (which grows with the pixel count) stays bounded for large frames. Boxes and landmarks are scaled
back; alignment always samples the full-resolution frame. (MTCNN's landmarks move by a few percent of the face
size between pyramid scales whatever the input size; its last stage sees every face at 48x48.)

Videos are processed as a stream of chunks (a few keyframe intervals at a time), so memory stays bounded
whatever the length: keyframes of a chunk go through MTCNN as one batch; faces on consecutive keyframes are
linked into tracks by box overlap (greedy, largest IoU first); frames between two keyframes get each linked
face interpolated by `forensics.data.faces.interpolate_tracks`; a face not found again on the next keyframe
ends its track there (the data layer's rule: it exists only on its keyframe).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from forensics.data.faces import Face, FaceDetector, align_face, box_iou, interpolate_tracks
from forensics.scan.timing import StageTimer

MAX_KEYFRAMES_PER_CHUNK = 8
MAX_CHUNK_BYTES = 128 * 1024 * 1024  # decoded frames per chunk (up to three chunks live: see prefetch)


def _rescale(face: Face, factor: float) -> Face:
    return replace(face, box=face.box * factor, landmarks=face.landmarks * factor)


@dataclass
class FaceFinder:
    """MTCNN on images scaled as the module docstring says; faces in full-image pixels."""

    detector: FaceDetector
    detect_side: int = 480
    min_face: int = 40

    def scale(self, shape: tuple[int, ...]) -> float:
        floor = self.detector.min_face_size / self.min_face  # a min_face face stays >= MTCNN's smallest
        return min(1.0, max(floor, self.detect_side / max(shape[:2])))

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        small, scales = [], []
        for img in images:
            s = self.scale(img.shape)
            scales.append(s)
            small.append(img if s == 1.0 else cv2.resize(img, (max(1, round(img.shape[1] * s)),
                                                               max(1, round(img.shape[0] * s))),
                                                         interpolation=cv2.INTER_AREA))
        found = self.detector.detect(small)
        return [[f if s == 1.0 else _rescale(f, 1.0 / s) for f in faces] for faces, s in zip(found, scales)]


def align_crops(image: np.ndarray, faces: Sequence[Face], size: int, margin: float) -> np.ndarray:
    """Aligned crops of `faces` in `image`.  # [H,W,3] -> [N,size,size,3] uint8"""
    if not faces:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([align_face(image, f, size, margin).crop for f in faces])


def match_faces(prev: Sequence[Face], cur: Sequence[Face], min_iou: float = 0.3) -> dict[int, int]:
    """Greedy one-to-one matching by box IoU, largest first: {index in cur: index in prev}."""
    pairs = sorted(((box_iou(a.box, b.box), i, j) for i, a in enumerate(prev) for j, b in enumerate(cur)),
                   key=lambda t: (-t[0], t[1], t[2]))
    used_prev: set[int] = set()
    out: dict[int, int] = {}
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i not in used_prev and j not in out:
            used_prev.add(i)
            out[j] = i
    return out


@dataclass
class FrameFace:
    """One face in one analysed frame."""

    track: int
    face: Face  # in full-frame pixels
    keyframe: bool  # detected on this frame (False: interpolated between two detections)
    crop: np.ndarray  # [S,S,3] uint8, aligned


@dataclass
class AnalysedFrame:
    index: int
    frame: np.ndarray  # [H,W,3] the decoded frame; valid while its chunk is being processed
    faces: list[FrameFace]


class VideoFaceTracker:
    """Streams frames into chunks of analysed frames: detect on keyframes, link, interpolate, align."""

    def __init__(self, finder: FaceFinder, every: int, size: int, margin: float, min_iou: float = 0.3,
                 timer: StageTimer | None = None) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.finder, self.every, self.size, self.margin, self.min_iou = finder, every, size, margin, min_iou
        self.timer = timer or StageTimer()
        self._last_key: tuple[int, list[tuple[int, Face]]] | None = None  # (frame index, [(track, face)])
        self._next_track = 0

    def _new_track(self) -> int:
        self._next_track += 1
        return self._next_track - 1

    def _link(self, faces: list[Face]) -> list[tuple[int, Face]]:
        if self._last_key is None:
            return [(self._new_track(), f) for f in faces]
        prev = self._last_key[1]
        matched = match_faces([f for _, f in prev], faces, self.min_iou)
        return [(prev[matched[j]][0] if j in matched else self._new_track(), f) for j, f in enumerate(faces)]

    def _between(self, idx: int, key_b: tuple[int, list[tuple[int, Face]]]) -> list[tuple[int, Face]]:
        """Faces of a frame between the last keyframe and `key_b`: every track present on both, interpolated."""
        assert self._last_key is not None  # frame 0 is always a keyframe
        k0, faces0 = self._last_key
        k1, faces1 = key_b
        by_track = {t: f for t, f in faces1}
        out = []
        for t, a in faces0:
            if t in by_track:  # min_iou 0: these two are already linked, interpolate unconditionally
                out.append((t, interpolate_tracks({k0: [a], k1: [by_track[t]]}, [idx], min_iou=0.0)[idx][0]))
        return out

    def _process(self, chunk: list[tuple[int, int, np.ndarray]], final: bool) -> list[AnalysedFrame]:
        """`chunk`: (position in stream, frame index, frame); it ends on a keyframe unless `final`."""
        keys = [p for p, (n, _, _) in enumerate(chunk) if n % self.every == 0]
        if final and (not keys or keys[-1] != len(chunk) - 1):
            keys.append(len(chunk) - 1)  # the last frame is a keyframe too: the tail is interpolated, not held
        with self.timer.stage("detect"):
            found = self.finder.detect([chunk[p][2] for p in keys])
        faces_at: dict[int, list[tuple[int, Face, bool]]] = {}
        with self.timer.stage("track"):
            start = 0
            for p, faces in zip(keys, found):
                linked = (chunk[p][1], self._link(faces))
                for q in range(start, p):
                    faces_at[q] = [(t, f, False) for t, f in self._between(chunk[q][1], linked)]
                faces_at[p] = [(t, f, True) for t, f in linked[1]]
                self._last_key, start = linked, p + 1
        out = []
        with self.timer.stage("align"):
            for q, (_, idx, frame) in enumerate(chunk):
                listed = faces_at.get(q, [])
                crops = align_crops(frame, [f for _, f, _ in listed], self.size, self.margin)
                out.append(AnalysedFrame(idx, frame, [FrameFace(t, f, k, c) for (t, f, k), c in zip(listed, crops)]))
        return out

    def run(self, frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[list[AnalysedFrame]]:
        """Chunks of analysed frames, in stream order."""
        chunk: list[tuple[int, int, np.ndarray]] = []
        keys_in_chunk, per_chunk, n = 0, MAX_KEYFRAMES_PER_CHUNK, 0
        while True:
            with self.timer.stage("decode"):
                item = next(frames, None)
            if item is None:
                break
            idx, frame = item
            if n == 0:  # bound memory: keyframe intervals per chunk from the frame size
                per_chunk = int(max(1, min(MAX_KEYFRAMES_PER_CHUNK, MAX_CHUNK_BYTES // (self.every * frame.nbytes))))
            chunk.append((n, idx, frame))
            if n % self.every == 0:
                keys_in_chunk += 1
                if keys_in_chunk == per_chunk:
                    yield self._process(chunk, final=False)
                    chunk, keys_in_chunk = [], 0
            n += 1
        if chunk:
            yield self._process(chunk, final=True)
