"""Per-track temporal features that need no source video: what a detector can measure on a video it has never
seen. A frame-by-frame face swap redoes alignment, decoding, colour transfer and blending on every frame, so
its face region changes in ways the scene's motion does not explain (Li & Lyu; the flicker measures of
`forensics.temporal`, reused here on the video itself instead of a known source):

- frame-difference energy of the face relative to the background, and relative to the face's own texture;
- warping error under Farneback flow estimated on the video itself, face relative to background (motion the
  flow explains cancels; flicker does not), its level per unit of texture and its spread over time, and
  where on the face it is: the ring where blend seams lie vs the background, the inner face vs that ring;
- temporal variation of the face's high-frequency energy, alone and relative to the background's (blur that
  comes and goes with the per-frame decoder, not with the camera);
- landmark and box jitter of the detector's own detections (second differences, in eye distances), also
  relative to head motion and with translation removed (shape jitter);
- optionally the spread of per-frame image-detector scores over the track.

Everything is computed in a fixed region around the track, rescaled so the face is `face_px` wide: the
figures do not depend on the video's resolution, and the cost per frame is bounded.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from forensics.data.faces import Face, FaceDetector, align_face
from forensics.temporal import (
    background_mask,
    backward_flows,
    difference_energy,
    ellipse_mask,
    high_frequency_energy,
    texture_energy,
    warping_error,
)
from forensics.video.clips import Clip, iter_clips, video_clips
from forensics.video.tracks import FaceTrack, track_frames

# Features that need only the frames and the track (the temporal detector's default input).
TRACK_FEATURES: tuple[str, ...] = (
    "face_bg_energy", "change_per_texture", "warp_face_bg", "warp_per_texture", "warp_std", "warp_ring_bg",
    "warp_inner_ring",
    "hf_variation", "hf_ratio_std", "landmark_jitter", "landmark_jitter_rel", "shape_jitter", "box_jitter",
)
# Features of per-frame image-detector scores over the track (NaN when no scores are given).
SCORE_FEATURES: tuple[str, ...] = ("score_std", "score_diff")
ALL_FEATURES: tuple[str, ...] = TRACK_FEATURES + SCORE_FEATURES

ScoreFn = Callable[[np.ndarray], np.ndarray]  # aligned crops [N,S,S,3] uint8 -> P(fake) [N]
# How faces are found for the features (the benchmark's settings, so a saved temporal detector meets the same
# measurement): MTCNN on every 4th frame, shrunk to a 360 px longer side; most of the CPU time is MTCNN.
DETECT_EVERY, DETECT_MAX_SIDE = 4, 360


def _log_ratio(a: float, b: float, eps: float) -> float:
    return float(np.log((a + eps) / (b + eps)))


def window_around(box: np.ndarray, shape: tuple[int, int], grow: float = 3.0,
                  face_px: int = 64) -> tuple[tuple[int, int, int, int], float]:
    """A window `grow` x the face box (x1, y1, x2, y2) wide around its centre, clipped to a frame of `shape`,
    and the scale that makes the face `face_px` wide. -> ((x0, y0, x1, y1), scale)"""
    h, w = shape
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(box[2] - box[0], box[3] - box[1], 4.0)
    half = side * grow / 2
    x0, y0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
    x1, y1 = int(min(w, np.ceil(cx + half))), int(min(h, np.ceil(cy + half)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise ValueError(f"face track window {x0, y0, x1, y1} is outside the {w}x{h} frame")
    return (x0, y0, x1, y1), face_px / side


def track_region(track: FaceTrack, shape: tuple[int, int], grow: float = 3.0,
                 face_px: int = 64) -> tuple[tuple[int, int, int, int], float]:
    """A fixed window around the whole track: `window_around` its median box."""
    return window_around(np.median(track.boxes, axis=0), shape, grow, face_px)


def region_frame(frame: np.ndarray, window: tuple[int, int, int, int], scale: float) -> np.ndarray:
    """The window of one frame, rescaled by `scale`. [H,W,3] -> [h,w,3]"""
    x0, y0, x1, y1 = window
    size = (max(8, int(round((x1 - x0) * scale))), max(8, int(round((y1 - y0) * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), size, interpolation=interp)


def _jitter(points: np.ndarray, norm: np.ndarray) -> tuple[float, float, float]:
    """Mean second-difference and first-difference magnitudes of point sets [T,P,2], in units of `norm` [T];
    and the second difference after removing each set's centroid (shape change, not head motion)."""
    if len(points) < 3:
        return float("nan"), float("nan"), float("nan")
    unit = float(np.mean(norm)) + 1e-6
    accel = np.linalg.norm(points[2:] - 2 * points[1:-1] + points[:-2], axis=-1).mean() / unit
    motion = np.linalg.norm(points[1:] - points[:-1], axis=-1).mean() / unit
    centred = points - points.mean(axis=1, keepdims=True)
    shape = np.linalg.norm(centred[2:] - 2 * centred[1:-1] + centred[:-2], axis=-1).mean() / unit
    return float(accel), float(motion), float(shape)


def _even_detections(track: FaceTrack) -> np.ndarray:
    """Indices of the track's real detections at the regular keyframe spacing (the extra last keyframe that
    `detect_faces` adds breaks the spacing and would read as a jump)."""
    det = np.flatnonzero(track.detected)
    if len(det) < 3:
        return det
    gaps = np.diff(track.frame_idx[det])
    step = int(np.median(gaps))
    keep = [det[0]]
    for i, g in zip(det[1:], gaps):
        if g != step:
            break
        keep.append(i)
    return np.asarray(keep)


def landmark_features(track: FaceTrack) -> dict[str, float]:
    """Jitter of the detector's landmarks and boxes over the track's detections (eye distances / box sides)."""
    det = _even_detections(track)
    marks, boxes = track.landmarks[det], track.boxes[det]  # [K,5,2], [K,4]
    eye = np.linalg.norm(marks[:, 1] - marks[:, 0], axis=-1)
    accel, motion, shape = _jitter(marks, eye)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    box_accel, _, _ = _jitter(boxes.reshape(-1, 2, 2), side)
    return {"landmark_jitter": float(np.log(accel + 1e-3)),
            "landmark_jitter_rel": float(np.log((accel + 1e-3) / (motion + 1e-2))),
            "shape_jitter": float(np.log(shape + 1e-3)), "box_jitter": float(np.log(box_accel + 1e-3))}


def score_features(scores: np.ndarray | None) -> dict[str, float]:
    """Spread of per-frame P(fake) over a track, on the logit scale (a swap's score flickers too)."""
    if scores is None or len(scores) < 2:
        return {k: float("nan") for k in SCORE_FEATURES}
    p = np.clip(np.asarray(scores, np.float64), 1e-4, 1 - 1e-4)
    logit = np.log(p / (1 - p))
    return {"score_std": float(np.std(logit)), "score_diff": float(np.mean(np.abs(np.diff(logit))))}


def region_features(region: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """The flicker features of a face in region frames (a fixed window around it, rescaled so the face is about
    64 px wide); boxes [T,4] in region pixels. -> ({name: value}, per-frame flicker [T]: the face's warping
    error over the background's, log ratio, NaN on the first frame)"""
    shape = region[0].shape[:2]
    face = [ellipse_mask(shape, b) for b in boxes]
    inner = [ellipse_mask(shape, b, 0.6) for b in boxes]  # eyes, nose, mouth: well inside any blend mask
    ring = [ellipse_mask(shape, b, 1.1) & ~ellipse_mask(shape, b, 0.75) for b in boxes]  # where blend seams lie
    bg = [background_mask(shape, b) for b in boxes]  # outside the box grown 1.6x: no hair, neck or seam
    flows = backward_flows(region)
    fe, be = difference_energy(region, face), difference_energy(region, bg)
    tex = texture_energy(region, face)
    wf, wb = warping_error(region, flows, face), warping_error(region, flows, bg)
    wi, wr = warping_error(region, flows, inner), warping_error(region, flows, ring)
    hf, hb = high_frequency_energy(region, face), high_frequency_energy(region, bg)
    out = {
        "face_bg_energy": _log_ratio(np.nanmean(fe), np.nanmean(be), 1.0),
        "change_per_texture": _log_ratio(np.nanmean(fe), np.nanmean(tex), 1.0),
        "warp_face_bg": _log_ratio(np.nanmean(wf), np.nanmean(wb), 0.5),
        "warp_per_texture": float(np.log((np.nanmean(wf) + 0.5) / (np.sqrt(np.nanmean(tex)) + 1.0))),
        "warp_std": float(np.nanstd(np.log(wf + 0.5))),
        "warp_ring_bg": _log_ratio(np.nanmean(wr), np.nanmean(wb), 0.5),
        "warp_inner_ring": _log_ratio(np.nanmean(wi), np.nanmean(wr), 0.5),
        "hf_variation": float(np.nanstd(hf) / (np.nanmean(hf) + 1.0)),
        "hf_ratio_std": float(np.nanstd(np.log((hf + 1.0) / (hb + 1.0)))),
    }
    per_frame = np.concatenate([[np.nan], np.log((wf + 0.5) / (wb + 0.5))])
    return out, per_frame


def track_features(frames: Sequence[np.ndarray], track: FaceTrack, scores: np.ndarray | None = None,
                   face_px: int = 64) -> dict[str, float]:
    """Temporal features of one face track. frames[i] is the RGB frame [H,W,3] of track entry i (the frame
    `track.frame_idx[i]`); scores (optional) [T] per-frame P(fake) of the track's face. -> {name: value}"""
    if len(frames) != len(track):
        raise ValueError(f"{len(frames)} frames for a track of {len(track)}")
    if len(track) < 3:
        raise ValueError("temporal features need a track of at least 3 frames")
    window, scale = track_region(track, frames[0].shape[:2], face_px=face_px)
    return windowed_track_features([region_frame(f, window, scale) for f in frames], window, scale, track, scores)[0]


def windowed_track_features(region: Sequence[np.ndarray], window: tuple[int, int, int, int], scale: float,
                            track: FaceTrack, scores: np.ndarray | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Every feature of a track whose frames were cut to `window` and rescaled by `scale` (`region_frame`); the
    track's boxes are in full-frame pixels. -> ({name: value}, per-frame flicker [T], as `region_features`)"""
    offset = np.array([window[0], window[1], window[0], window[1]], np.float64)
    out, flicker = region_features(region, (track.boxes - offset) * scale)
    out.update(landmark_features(track))
    out.update(score_features(scores))
    return out, flicker


def aligned_crops(frames: Sequence[np.ndarray], track: FaceTrack, size: int = 128, margin: float = 0.25) -> np.ndarray:
    """The track's face in each frame, aligned like the corpus crops (five-point similarity). [T,S,S,3] uint8"""
    return np.stack([align_face(f, Face(box=b, score=1.0, landmarks=lm), size=size, margin=margin).crop
                     for f, b, lm in zip(frames, track.boxes, track.landmarks)])


def clip_track_records(frames: Sequence[np.ndarray], frame_idx: Sequence[int], detector: FaceDetector,
                       every: int = DETECT_EVERY, scorer: ScoreFn | None = None, min_track: int = 5,
                       max_tracks: int = 4, max_side: int | None = DETECT_MAX_SIDE, face_px: int = 64) -> list[dict]:
    """Decoded frames of one clip -> one record per face track: features, the per-frame scores (when a
    `scorer` is given) and the track. Tracks shorter than `min_track` frames are left out. MTCNN runs on
    every `every`-th frame, shrunk to `max_side` (see `tracks.detect_scaled`)."""
    tracks = track_frames(frames, frame_idx, detector, every=every, min_length=min_track, max_side=max_side)
    pos = {int(i): k for k, i in enumerate(frame_idx)}
    records = []
    for t, track in enumerate(tracks[:max_tracks]):
        tf = [frames[pos[int(i)]] for i in track.frame_idx]
        scores = scorer(aligned_crops(tf, track)) if scorer is not None else None
        records.append({"track": t, "frames": len(track), "features": track_features(tf, track, scores, face_px),
                        "scores": None if scores is None else np.asarray(scores, np.float64),
                        "face_track": track})
    return records


def video_track_records(path: str | os.PathLike, detector: FaceDetector | None = None, clip_seconds: float = 2.0,
                        max_seconds: float | None = None, max_clips: int | None = None, every: int = DETECT_EVERY,
                        scorer: ScoreFn | None = None, clips: Sequence[Clip] | None = None,
                        max_side: int | None = DETECT_MAX_SIDE) -> list[dict]:
    """A video file -> per clip, per face track records (see `clip_track_records`), each with its `clip`.
    A clip without a usable face track gives one record with `features` None and the reason."""
    detector = detector or FaceDetector(min_score=0.9, min_face_size=32)
    clips = list(clips) if clips is not None else video_clips(path, clip_seconds, max_seconds, max_clips)
    out = []
    for clip, frames in iter_clips(path, clips):
        idx = list(range(clip.start, clip.start + len(frames)))
        recs = clip_track_records(frames, idx, detector, every=every, scorer=scorer, max_side=max_side)
        if not recs:
            out.append({"clip": clip, "track": -1, "frames": len(frames), "features": None,
                        "reason": "no face track of 5+ frames"})
        out.extend({"clip": clip, **r} for r in recs)
    return out
