"""A video's container and stream facts, read with PyAV by demuxing packets only (no frame is decoded).

Why these facts: the encoder and handler tags name the software that wrote the file last (a phone, an editor, a
generator's pipeline, FFmpeg), creation_time dates it, and keyframe positions show the encoder's rhythm: a camera
writes a fixed GOP, a re-encode or an edit leaves a different one or irregular keyframes at cut points.

Section "container", fields (stable keys):
    format, format_long       container format (PyAV/FFmpeg names, e.g. "mov,mp4,m4a,3gp,3g2,mj2")
    size_bytes, duration_s, bit_rate
    creation_time             container creation_time tag, else the first stream's, or null
    encoders                  every encoder/handler/writing-application tag, container and streams, deduplicated
    editors, generators       names matched in `encoders` (the tables of forensics.evidence.metadata)
    transcoders               FFmpeg (Lavf/Lavc), HandBrake, x264/x265 when named: processing, not editing
    metadata                  container tags (key -> value, values cut to 200 characters, at most 40 keys)
    video_streams             per stream: index, codec, codec_long, profile, pix_fmt, width, height,
                              avg_frame_rate, real_frame_rate (FFmpeg's r_frame_rate guess), time_base,
                              frames (from the header, 0 when unknown), duration_s, bit_rate, metadata,
                              packets (demuxed), keyframes {"count", "times_s" (first MAX_KEYFRAME_TIMES),
                              "mean_gop_frames", "mean_gop_s", "gop_regular" (all GOPs within one frame of each
                              other)}, packets_truncated (stopped at MAX_PACKETS)
    audio_streams             per stream: index, codec, sample_rate, channels, layout, bit_rate, metadata
    demux_error               a read error met while demuxing, or fewer packets than the header's frame count (a
                              truncated file whose index is intact), with the facts read until then
    error                     only when the file cannot be opened at all: "<path>: reason"

Signal: an encoder tag naming a known editor or generator -> SUGGESTS_MANIPULATION (editing is not necessarily a
face manipulation; the reason says so). Otherwise None: container facts take no stance (FFmpeg names nearly every
file on the web). Unreadable file -> NO_INFORMATION.
"""
from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from forensics.evidence.metadata import editor_names, generator_names, round6
from forensics.evidence.section import NO_INFORMATION, SUGGESTS_MANIPULATION, Section, Signal

MAX_KEYFRAME_TIMES = 200
MAX_PACKETS = 200_000  # ~2 h at 30 fps; beyond that keyframe facts cover the start only (said in the fields)
MAX_TAGS = 40
MAX_TAG_CHARS = 200
# Tags that name the writing software. Not "title"/"description": free text there ("Sora's birthday") is no tag.
ENCODER_KEYS = ("encoder", "handler_name", "writing_application", "com.apple.quicktime.software", "software",
                "com.android.version", "vendor_id", "comment")
# Generic values that name no software (FFmpeg's default handler names, an all-zero QuickTime vendor id).
UNINFORMATIVE_TAGS = frozenset({"VideoHandler", "SoundHandler", "DataHandler", "[0][0][0][0]", "und"})
TRANSCODER_PATTERNS = {"FFmpeg": r"\blav[fc]\d|ffmpeg", "HandBrake": r"handbrake", "x264": r"\bx264\b",
                       "x265": r"\bx265\b", "GStreamer": r"gstreamer", "L-SMASH": r"l-smash"}
_TRANSCODER_RE = {name: re.compile(pat, re.IGNORECASE) for name, pat in TRANSCODER_PATTERNS.items()}


def _tags(metadata: dict[str, str]) -> dict[str, str]:
    return {str(k): str(v)[:MAX_TAG_CHARS] for k, v in list(metadata.items())[:MAX_TAGS]}


def _rate(value: Fraction | None) -> float | None:
    return round6(float(value)) if value else None


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    return round6(float(value * time_base)) if value is not None and time_base else None


def _keyframe_facts(times: list[float], packets: int, positions: list[int]) -> dict[str, Any]:
    """Count, first times, mean GOP (in frames: packets between keyframes; in seconds) and its regularity."""
    gops = [b - a for a, b in zip(positions, positions[1:])]
    gap_s = [b - a for a, b in zip(times, times[1:])]
    return {"count": len(positions),
            "times_s": [round6(t) for t in times[:MAX_KEYFRAME_TIMES]],
            "mean_gop_frames": round6(sum(gops) / len(gops) if gops else packets) if positions else None,
            "mean_gop_s": round6(sum(gap_s) / len(gap_s)) if gap_s else None,
            "gop_regular": (max(gops) - min(gops) <= 1) if len(gops) >= 2 else None}


def _demux_video(container: av.container.InputContainer, streams: list[Any]) -> tuple[dict[int, dict], str | None]:
    """Packets and keyframes per video stream, from packet headers only; a read error ends the walk, kept.

    Keyframe pts stay integers here (Fraction arithmetic per packet would dominate the cost)."""
    seen = {s.index: {"packets": 0, "pts": [], "positions": []} for s in streams}
    error = None
    total = 0
    try:
        for packet in container.demux(streams):
            if packet.size == 0:  # the flush packet at the end carries nothing
                continue
            state = seen[packet.stream_index]
            if packet.is_keyframe:
                state["positions"].append(state["packets"])
                if packet.pts is not None:
                    state["pts"].append(packet.pts)
            state["packets"] += 1
            total += 1
            if total >= MAX_PACKETS:
                break
    except (av.FFmpegError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    for state in seen.values():
        state["truncated"] = total >= MAX_PACKETS
    return seen, error


def _video_stream_fields(stream: Any, demuxed: dict[str, Any]) -> dict[str, Any]:
    cc = stream.codec_context
    start = stream.start_time or 0
    tb = float(stream.time_base) if stream.time_base else 0.0
    times = sorted((pts - start) * tb for pts in demuxed["pts"]) if tb else []
    return {"index": stream.index, "codec": cc.name, "codec_long": cc.codec.long_name, "profile": cc.profile,
            "pix_fmt": cc.pix_fmt, "width": cc.width, "height": cc.height,
            "avg_frame_rate": _rate(stream.average_rate), "real_frame_rate": _rate(stream.base_rate),
            "time_base": str(stream.time_base) if stream.time_base else None, "frames": int(stream.frames),
            "duration_s": _seconds(stream.duration, stream.time_base), "bit_rate": cc.bit_rate or None,
            "metadata": _tags(stream.metadata), "packets": demuxed["packets"],
            "keyframes": _keyframe_facts(times, demuxed["packets"], demuxed["positions"]),
            "packets_truncated": demuxed["truncated"]}


def _audio_stream_fields(stream: Any) -> dict[str, Any]:
    cc = stream.codec_context
    return {"index": stream.index, "codec": cc.name, "sample_rate": cc.sample_rate, "channels": cc.channels,
            "layout": cc.layout.name if cc.layout else None, "bit_rate": cc.bit_rate or None,
            "metadata": _tags(stream.metadata)}


def read_container(path: str | os.PathLike) -> dict[str, Any]:
    """Fields of the container section (see the module docstring); raises when the file cannot be opened."""
    path = Path(path)
    size = path.stat().st_size
    with av.open(str(path), mode="r", metadata_errors="replace") as container:
        video = list(container.streams.video)
        audio = list(container.streams.audio)
        all_tags = [dict(container.metadata)] + [dict(s.metadata) for s in container.streams]
        demuxed, demux_error = _demux_video(container, video) if video else ({}, None)
        fields: dict[str, Any] = {
            "format": container.format.name, "format_long": container.format.long_name, "size_bytes": size,
            "duration_s": round6(container.duration / av.time_base) if container.duration else None,
            "bit_rate": container.bit_rate or None,
            "creation_time": next((t["creation_time"] for t in all_tags if t.get("creation_time")), None),
            "metadata": _tags(container.metadata),
            "video_streams": [_video_stream_fields(s, demuxed[s.index]) for s in video],
            "audio_streams": [_audio_stream_fields(s) for s in audio],
        }
    encoders: list[str] = []
    for tags in all_tags:
        for key in ENCODER_KEYS:
            value = str(tags.get(key, "")).strip()[:MAX_TAG_CHARS]
            if value and value not in encoders and value not in UNINFORMATIVE_TAGS:
                encoders.append(value)
    fields["encoders"] = encoders
    fields["editors"] = editor_names(encoders)
    fields["generators"] = generator_names(encoders)
    fields["transcoders"] = [n for n, rx in _TRANSCODER_RE.items() if any(rx.search(e) for e in encoders)]
    short = [v for v in fields["video_streams"]
             if v["frames"] and not v["packets_truncated"] and v["packets"] < v["frames"]]
    if short and not demux_error:
        v = short[0]
        demux_error = (f"stream {v['index']}: the header declares {v['frames']} frames but only {v['packets']} "
                       "packets could be read (truncated file)")
    if demux_error:
        fields["demux_error"] = f"{path}: {demux_error}"
    return fields


def container_signal(fields: dict[str, Any]) -> Signal | None:
    """SUGGESTS_MANIPULATION when an encoder tag names a generator or an editor; otherwise no stance."""
    reasons = []
    if fields["generators"]:
        reasons.append(f"an encoder tag names a generator: {', '.join(fields['generators'])}")
    if fields["editors"]:
        reasons.append(f"edited with {', '.join(fields['editors'])} (an encoder tag names editing software: "
                       "the video was re-encoded by an editor, not necessarily a face manipulation)")
    return Signal(SUGGESTS_MANIPULATION, "; ".join(reasons)) if reasons else None


def video_container_section(path: str | os.PathLike) -> Section:
    """The "container" section of a video: format, tags, streams, keyframes. Never raises."""
    try:
        fields = read_container(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes an error field, never a crash
        return Section("container", {"error": f"{path}: {type(exc).__name__}: {exc}"}, {},
                       Signal(NO_INFORMATION, "the container could not be read"))
    return Section("container", fields, {}, container_signal(fields))
