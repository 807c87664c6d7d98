"""Clips: the unit a video is scored in. A long video is cut into short consecutive clips (2 s by default) so
that a verdict points at a time range, a video of any length costs a bounded amount of work (`max_clips`,
`max_seconds`), and a training set gets many samples per source video without mixing videos across splits.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from forensics.data.media import iter_frames, probe_video


@dataclass(frozen=True)
class Clip:
    """Frames [start, stop) of a video."""

    index: int
    start: int
    stop: int
    fps: float

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def start_s(self) -> float:
        return self.start / self.fps if self.fps > 0 else 0.0

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {"index": self.index, "start": self.start, "stop": self.stop, "fps": round(self.fps, 6)}


def clip_ranges(n_frames: int, fps: float, clip_seconds: float = 2.0, max_seconds: float | None = None,
                max_clips: int | None = None, min_fraction: float = 0.5) -> list[Clip]:
    """Consecutive non-overlapping clips of `clip_seconds` over the first `max_seconds` of a video.

    A last clip shorter than `min_fraction` of a full one is dropped (too short to measure flicker on). With
    `max_clips`, that many clips are kept, evenly spread over the video (better coverage of a long video than
    its first seconds); their `index` stays the position in the full cut, so a clip's id never changes with
    the cap."""
    if clip_seconds <= 0:
        raise ValueError("clip_seconds must be > 0")
    fps = fps if fps and fps > 0 else 25.0  # containers without a rate: assume PAL, recorded in each clip
    length = max(1, int(round(clip_seconds * fps)))
    usable = n_frames if max_seconds is None else min(n_frames, int(round(max_seconds * fps)))
    clips = []
    for i, start in enumerate(range(0, usable, length)):
        stop = min(start + length, usable)
        if stop - start >= max(2, int(np.ceil(min_fraction * length))):
            clips.append(Clip(i, start, stop, float(fps)))
    if max_clips is not None and len(clips) > max_clips:
        picks = np.unique(np.round(np.linspace(0, len(clips) - 1, max_clips)).astype(int))
        clips = [clips[i] for i in picks]
    return clips


def video_clips(path: str | os.PathLike, clip_seconds: float = 2.0, max_seconds: float | None = None,
                max_clips: int | None = None) -> list[Clip]:
    """`clip_ranges` for a video file (frame count and fps from its header)."""
    info = probe_video(path)
    return clip_ranges(info.frame_count, info.fps, clip_seconds, max_seconds, max_clips)


def iter_clips(path: str | os.PathLike, clips: Sequence[Clip]) -> Iterator[tuple[Clip, list[np.ndarray]]]:
    """Decode a video once, front to back, and yield each clip with its RGB frames ([H,W,3] uint8 each).

    A clip the stream ends inside (headers overstate frame counts) is yielded with the frames it has."""
    if not clips:
        return
    order = sorted(clips, key=lambda c: c.start)
    last = max(c.stop for c in order)
    k, frames = 0, []
    for idx, frame in iter_frames(path, max_frames=last):
        while k < len(order) and idx >= order[k].stop:
            yield order[k], frames
            k, frames = k + 1, []
        if k == len(order):
            break
        if idx >= order[k].start:
            frames.append(frame)
    while k < len(order):
        if frames:
            yield order[k], frames
        k, frames = k + 1, []
