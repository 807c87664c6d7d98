"""Score a video file with a fitted temporal detector: per clip, per face track, P(fake) and a verdict."""
from __future__ import annotations

import os
from typing import Any

from forensics.data.faces import FaceDetector
from forensics.video.features import video_track_records


def score_video(path: str | os.PathLike, temporal: Any, detector: FaceDetector | None = None,
                clip_seconds: float = 2.0, max_seconds: float | None = None,
                max_clips: int | None = None) -> list[dict[str, Any]]:
    """One record per (clip, face track): clip start/length in seconds, track length, P(fake) from the
    temporal detector and "fake"/"real" at its calibrated threshold; a clip without a face track says so
    (`p_fake` None, `reason`)."""
    detector = detector or FaceDetector(min_score=0.9, min_face_size=32)  # as the benchmark's features
    out = []
    for rec in video_track_records(path, detector, clip_seconds, max_seconds, max_clips):
        clip = rec["clip"]
        row: dict[str, Any] = {"clip": clip.index, "start_s": round(clip.start_s, 3),
                               "duration_s": round(clip.duration_s, 3), "track": rec["track"], "frames": rec["frames"]}
        if rec["features"] is None:
            row.update(p_fake=None, verdict="no face", reason=rec["reason"])
        else:
            p = float(temporal.predict_proba([rec["features"]])[0])
            row.update(p_fake=p, verdict="fake" if p > temporal.threshold_ else "real")
        out.append(row)
    return out
