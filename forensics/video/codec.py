"""H.264 re-encoding for robustness evaluation: what a video goes through when it is uploaded and shared.

OpenCV's wheel here cannot write H.264 (its FFmpeg has no libx264 encoder), so this uses PyAV (`av` on PyPI),
whose wheels bundle FFmpeg with libx264. It is imported only when called; without it, the error says what to
install. Frames never touch the disk: encoded into memory, decoded back.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction

import numpy as np


def _av():
    try:
        import av
    except ImportError as exc:  # an optional dependency: only the robustness sweep needs it
        raise ImportError("H.264 re-encoding needs PyAV: pip install av==18.1.0 (its wheels bundle libx264)") from exc
    return av


def h264_roundtrip(frames: Sequence[np.ndarray], fps: float, crf: int, preset: str = "medium") -> list[np.ndarray]:
    """Encode RGB frames [H,W,3] uint8 with libx264 at constant rate factor `crf` (23: the x264 default;
    35: heavy), yuv420p, and decode them back. Odd sizes lose their last row/column (4:2:0 needs even sizes).
    -> list of [H',W',3] uint8"""
    av = _av()
    if not frames:
        raise ValueError("no frames to encode")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in [0, 51], got {crf}")
    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        stream.codec_context.thread_count = 1  # the caller decides the parallelism
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r") as src:
        return [frame.to_ndarray(format="rgb24") for frame in src.decode(video=0)]


def perturb_video(frames: Sequence[np.ndarray], fps: float, name: str) -> list[np.ndarray]:
    """A named video perturbation: "none" or "crf<N>" (H.264 at that CRF)."""
    if name == "none":
        return list(frames)
    if name.startswith("crf") and name[3:].isdigit():
        return h264_roundtrip(frames, fps, int(name[3:]))
    raise ValueError(f"unknown video perturbation {name!r}: use none or crf<N> (e.g. crf23, crf35)")
