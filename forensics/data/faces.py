"""Faces: MTCNN detection with landmarks, similarity-aligned square crops, paste-back, and a cheap video tracker.

MTCNN comes from facenet-pytorch, whose P/R/O-Net weights ship inside its wheel: nothing is downloaded.
An aligned crop keeps the 2x3 matrix that made it, so a (modified) crop can be warped back into its frame.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

# Five-point template (eyes, nose tip, mouth corners) of the widely used 112x112 ArcFace alignment,
# normalised to [0, 1]. It centres the face; `margin` below zooms out to keep context around it.
_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
TEMPLATE = _TEMPLATE_112 / 112.0
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # [4] x1, y1, x2, y2 in frame pixels
    score: float
    landmarks: np.ndarray  # [5, 2] x, y in frame pixels, order LANDMARK_NAMES

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass(frozen=True)
class AlignedFace:
    crop: np.ndarray  # [S, S, 3] uint8 RGB
    matrix: np.ndarray  # [2, 3] frame -> crop
    face: Face


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping src points onto dst (Umeyama 1991).

    Returns a [2,3] matrix. A similarity (not a full affine) keeps the face's proportions intact.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


def template_points(size: int, margin: float) -> np.ndarray:
    """Where the five landmarks land in a `size` crop; margin 0.25 adds 25% context around the template."""
    return (0.5 + (TEMPLATE - 0.5) / (1.0 + margin)) * size


def align_face(image: np.ndarray, face: Face, size: int = 128, margin: float = 0.25) -> AlignedFace:
    """Warp the face to a canonical upright square crop. Borders outside the frame are reflected."""
    matrix = similarity_transform(face.landmarks, template_points(size, margin))
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return AlignedFace(crop=crop, matrix=matrix, face=face)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def paste_back(frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Warp `crop` back into `frame` with the inverse of `matrix`; `mask` ([S,S] float 0..1) blends it.

    Pixels where the warped mask is 0 keep the frame's exact values.
    """
    h, w = frame.shape[:2]
    inverse = invert_affine(matrix)
    warped = cv2.warpAffine(crop, inverse, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if mask is None:
        mask = np.ones(crop.shape[:2], np.float32)
    alpha = cv2.warpAffine(mask.astype(np.float32), inverse, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    alpha = np.clip(alpha, 0.0, 1.0)[:, :, None]
    blended = frame.astype(np.float32) * (1.0 - alpha) + warped.astype(np.float32) * alpha
    out = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    untouched = alpha[:, :, 0] <= 0.0
    out[untouched] = frame[untouched]
    return out


class FaceDetector:
    """Batched MTCNN. Construct once and reuse: the three small networks load from facenet-pytorch's wheel."""

    def __init__(self, min_score: float = 0.9, min_face_size: int = 20, device: str = "cpu", batch_size: int = 16) -> None:
        self.min_score = min_score
        self.min_face_size = min_face_size
        self.device = device
        self.batch_size = batch_size
        self._mtcnn = None

    def _model(self):
        if self._mtcnn is None:
            import torch
            from facenet_pytorch import MTCNN

            device = "cuda" if self.device == "auto" and torch.cuda.is_available() else ("cpu" if self.device == "auto" else self.device)
            self._mtcnn = MTCNN(keep_all=True, min_face_size=self.min_face_size, device=device)
        return self._mtcnn

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces per image (RGB uint8 [H,W,3]), highest score first; same-sized images run as one batch."""
        results: list[list[Face]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            if min(image.shape[:2]) < self.min_face_size:
                continue  # no face of min_face_size fits (and MTCNN's image pyramid would be empty: it raises)
            by_shape.setdefault(image.shape, []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                batch = np.stack([images[i] for i in chunk])
                boxes, probs, points = self._model().detect(batch, landmarks=True)
                for i, b, p, pts in zip(chunk, boxes, probs, points):
                    results[i] = self._faces(b, p, pts)
        return results

    def _faces(self, boxes, probs, points) -> list[Face]:
        if boxes is None:
            return []
        faces = [
            Face(box=np.asarray(b, np.float64), score=float(p), landmarks=np.asarray(pt, np.float64))
            for b, p, pt in zip(boxes, probs, points)
            if p is not None and p >= self.min_score
        ]
        return sorted(faces, key=lambda f: -f.score)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _interpolate(a: Face, b: Face, t: float) -> Face:
    return replace(
        a,
        box=(1 - t) * a.box + t * b.box,
        landmarks=(1 - t) * a.landmarks + t * b.landmarks,
        score=min(a.score, b.score),
    )


def interpolate_tracks(keyframes: dict[int, list[Face]], frame_indices: Sequence[int], min_iou: float = 0.3) -> dict[int, list[Face]]:
    """Faces for every frame from detections on keyframes only.

    Between two consecutive keyframes, a face matched across them (greedy, by box IoU) is linearly
    interpolated; an unmatched face exists only on its keyframe. After the last keyframe, its faces hold.
    This is the cheap tracker: detection every k frames, smooth motion in between.
    """
    keys = sorted(keyframes)
    out: dict[int, list[Face]] = {}
    for idx in frame_indices:
        if idx in keyframes:
            out[idx] = keyframes[idx]
            continue
        pos = np.searchsorted(keys, idx)
        if pos == 0:
            out[idx] = []
            continue
        k0 = keys[pos - 1]
        if pos == len(keys):
            out[idx] = keyframes[k0]
            continue
        k1 = keys[pos]
        t = (idx - k0) / (k1 - k0)
        faces, used = [], set()
        for a in keyframes[k0]:
            best, best_iou = None, min_iou
            for j, b in enumerate(keyframes[k1]):
                iou = box_iou(a.box, b.box)
                if j not in used and iou >= best_iou:
                    best, best_iou = j, iou
            if best is not None:
                used.add(best)
                faces.append(_interpolate(a, keyframes[k1][best], t))
        out[idx] = faces
    return out


def track_video(
    path: str | os.PathLike,
    detector: FaceDetector,
    every: int = 5,
    step: int = 1,
    max_frames: int | None = None,
) -> dict[int, list[Face]]:
    """Faces per sampled frame of a video: MTCNN on every `every`-th sampled frame, interpolated between.

    Frames are decoded once; keyframes are batched through the detector.
    """
    from forensics.data.media import iter_frames

    if every < 1:
        raise ValueError("every must be >= 1")
    indices: list[int] = []
    key_idx: list[int] = []
    key_frames: list[np.ndarray] = []
    keyframes: dict[int, list[Face]] = {}

    def flush() -> None:
        for i, faces in zip(key_idx, detector.detect(key_frames)):
            keyframes[i] = faces
        key_idx.clear()
        key_frames.clear()

    last = None
    for n, (idx, frame) in enumerate(iter_frames(Path(path), step=step, max_frames=max_frames)):
        indices.append(idx)
        last = (idx, frame)
        if n % every == 0:
            key_idx.append(idx)
            key_frames.append(frame)
            if len(key_frames) >= detector.batch_size:
                flush()
    if last is not None and last[0] not in keyframes and last[0] not in key_idx:
        key_idx.append(last[0])  # the last frame is a keyframe too, so the tail is interpolated, not held
        key_frames.append(last[1])
    flush()
    return interpolate_tracks(keyframes, indices)
