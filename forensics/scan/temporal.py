"""The scan's temporal step: flicker features on each face track, the bundle's video model, the track's video score.

Per-frame face scores miss what only shows over time (a per-frame face swap flickers). While the frames of a
chunk are in memory, every face goes to a `forensics.video.segments.TrackSegmenter`; each completed segment
(the clip length the model was trained on) gets the temporal detector's P(fake) and the video P(fake): frames
and flicker fused, or the flicker alone where that won (`forensics.video.model.VideoModel.video_score`); a
segment whose face is under the model's `min_face_side` gets neither. A track's temporal record lists its
segments; its video score is their mean, and decides the track's verdict with the video band when the model
measured that it wins (`decides`). A bundle without a video model, a scan whose keyframe spacing differs from
the one the model was trained with, or a track whose face is too small gets `available: false` and the reason.

`feed_chunk` is also what trains the model (`forensics.video.release`): features are measured one way.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from forensics.video.segments import Segment, TrackSegmenter

NO_TEMPORAL_MODEL = "no temporal model in bundle"
FLICKER_MARKS = 3  # frames marked on the timeline per suspicious segment


def has_temporal_model(bundle: Any) -> bool:
    return getattr(bundle, "video_model", None) is not None


def unavailable_reason(bundle: Any, every: int) -> str | None:
    """Why this scan cannot use the bundle's video model, or None when it can."""
    if not has_temporal_model(bundle):
        return NO_TEMPORAL_MODEL
    if bundle.video_model.every != every:
        return (f"the bundle's temporal model was trained with detection every {bundle.video_model.every} frames; "
                f"this scan detects every {every}")
    return None


def new_segmenter(bundle: Any, fps: float) -> TrackSegmenter:
    return bundle.video_model.segmenter(fps)


def feed_chunk(segmenter: TrackSegmenter, chunk: Sequence[Any], probabilities: Sequence[float]) -> list[Segment]:
    """Every face of a chunk of `forensics.scan.faces.AnalysedFrame`s, in order, with its fused probability
    (`probabilities` in the same face order: frame by frame, face by face) -> the segments completed."""
    done: list[Segment] = []
    k = 0
    for af in chunk:
        for ff in af.faces:
            done += segmenter.add(ff.track, af.index, af.frame, ff.face.box, ff.face.landmarks, ff.keyframe,
                                  float(probabilities[k]))
            k += 1
        done += segmenter.finish_missing({ff.track for ff in af.faces})
    return done


def small_face_reason(bundle: Any, segments: Sequence[Segment]) -> str | None:
    """Why a track whose segments all have a face too small for the video model gets no temporal score."""
    model = bundle.video_model
    if not segments or any(model.measurable(s.face_side) for s in segments):
        return None
    side = float(np.median([s.face_side for s in segments]))
    return (f"face too small for the temporal model: {side:.0f} px, under the {model.min_face_side:.0f} px its "
            "flicker features are measured at")


def score_segments(bundle: Any, segments: Sequence[Segment]) -> list[dict[str, Any]]:
    """Each measurable segment's record (`VideoModel.measurable`): frames, the frame score mean, temporal and
    video P(fake), verdict, features."""
    model = bundle.video_model
    segments = [s for s in segments if model.measurable(s.face_side)]
    if not segments:
        return []
    temporal, _, video = model.score_segments([s.features for s in segments],
                                              np.array([s.frames_mean for s in segments]))
    return [{"first_frame": int(s.frame_idx[0]), "last_frame": int(s.frame_idx[-1]), "frames": int(s.frame_idx.size),
             "frames_probability": round(s.frames_mean, 6), "temporal_probability": round(float(t), 6),
             "probability": round(float(f), 6), "verdict": model.band.verdict(float(f)),
             "features": {k: (None if not np.isfinite(v) else round(float(v), 5)) for k, v in sorted(s.features.items())},
             "flicker_frames": _flicker_frames(s)}
            for s, t, f in zip(segments, temporal, video)]


def _flicker_frames(segment: Segment) -> list[int]:
    """The frames where the face's warping error most exceeds the background's: where the flicker is."""
    f = np.where(np.isfinite(segment.flicker), segment.flicker, -np.inf)
    order = np.argsort(-f, kind="stable")[:FLICKER_MARKS]
    return sorted(int(segment.frame_idx[i]) for i in order if np.isfinite(f[i]))


def track_temporal(bundle: Any, reason: str | None, segments: list[dict[str, Any]]) -> dict[str, Any]:
    """A track's temporal record: its segments and their means (None when unavailable or no segment was long
    enough: the track is then judged on its frames alone)."""
    if reason is None and not segments:
        reason = "track too short for a temporal segment"
    if reason is not None:
        return {"available": False, "probability": None, "video_probability": None, "reason": reason,
                "segments": []}
    model = bundle.video_model
    video = float(np.mean([s["probability"] for s in segments]))
    why = (model.record.get("choice") or {}).get("why", "")
    return {"available": True, "probability": round(float(np.mean([s["temporal_probability"] for s in segments])), 6),
            "video_probability": round(video, 6), "video_score": model.video_score, "verdict": model.band.verdict(video),
            "band": [round(model.band.low, 6), round(model.band.high, 6)], "decides": model.decides,
            "decides_why": why, "segment_seconds": model.segment_seconds, "reason": None, "segments": segments}
