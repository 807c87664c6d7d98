"""Video decoding for the scan: by content (FFmpeg probes the bytes; the extension is not consulted), front to
back, with each frame's index and time.

`forensics.data.media.iter_frames` refuses a video whose extension is not a video extension (right for
datasets); the scan reads the kind from the bytes and notes a mismatch instead, so it opens the stream itself.
FFmpeg is asked for explicitly: OpenCV's other backends would read a name with `%d` as an image sequence.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from forensics.data.media import DEFAULT_MAX_PIXELS, MediaError


@dataclass(frozen=True)
class VideoStream:
    """Header facts of a video stream (frame_count is the container's claim; the decoder may find fewer)."""

    width: int
    height: int
    fps: float
    frame_count: int
    codec: str

    def time_of(self, frame_idx: int) -> float:
        return frame_idx / self.fps if self.fps > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"width": self.width, "height": self.height, "fps": round(self.fps, 6),
                "frame_count": self.frame_count, "codec": self.codec}


def _fourcc(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ") if text.isprintable() else ""


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise MediaError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise MediaError(path, "cannot open video (corrupt, truncated or unsupported codec)")
    return cap


def iter_video(path: str | os.PathLike, max_frames: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[VideoStream, Iterator[tuple[int, np.ndarray]]]:
    """Open a video and return its stream facts and an iterator of `(frame_idx, rgb [H,W,3] uint8)`.

    The stream is probed (and its first frame decoded) before returning, so a broken file fails here with a
    MediaError naming it. A stream that ends before its header's frame count is not an error."""
    path = Path(path)
    cap = _open(path)
    try:
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise MediaError(path, "video has no picture stream")
        if width * height > max_pixels:
            raise MediaError(path, f"{width}x{height} frames exceed the limit of {max_pixels} pixels")
        stream = VideoStream(width, height, float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
                             max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0), _fourcc(cap.get(cv2.CAP_PROP_FOURCC)))
        ok, first = cap.read()
        if not ok or first is None:
            raise MediaError(path, "video has no decodable frame")
    except BaseException:
        cap.release()
        raise

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        try:
            bgr, idx = first, 0
            while bgr is not None and (max_frames is None or idx < max_frames):
                yield idx, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                ok, bgr = cap.read()
                bgr = bgr if ok else None
                idx += 1
        finally:
            cap.release()

    return stream, frames()
