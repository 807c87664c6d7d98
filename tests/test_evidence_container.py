"""The container section on videos muxed here with PyAV (known codec, frame rate, GOP, tags) and on truncations."""
from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from forensics.evidence.container import video_container_section
from forensics.evidence.section import NO_INFORMATION, SUGGESTS_MANIPULATION

STARTER_CLIP = Path(__file__).resolve().parents[1] / "forensics" / "assets" / "starter" / "WolfgangLanger_Pexels.mp4"


def mux(path: Path, codec: str = "libx264", fps: int = 25, n_frames: int = 50, gop: int = 10,
        comment: str | None = None, faststart: bool = False) -> Path:
    """A synthetic clip (moving gradients, so no scene-cut keyframes) with a fixed GOP."""
    y, x = np.mgrid[0:64, 0:96]
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as out:
        if comment:
            out.metadata["comment"] = comment
        stream = out.add_stream(codec, rate=fps, options={"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(n_frames):
            rgb = np.stack([(x * 2 + i * 3) % 256, (y * 3 + i) % 256, (x + y + i * 5) % 256], -1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):  # [64,96,3]
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("codec,expected", [("libx264", "h264"), ("mpeg4", "mpeg4")])
def test_known_codec_rate_and_keyframes_read_back(tmp_path: Path, codec: str, expected: str) -> None:
    section = video_container_section(mux(tmp_path / "clip.mp4", codec=codec, fps=25, n_frames=50, gop=10))
    f = section.fields
    assert "error" not in f and "demux_error" not in f
    (v,) = f["video_streams"]
    assert v["codec"] == expected and (v["width"], v["height"]) == (96, 64) and v["pix_fmt"] == "yuv420p"
    assert v["avg_frame_rate"] == 25.0 and v["frames"] == 50 and v["packets"] == 50
    assert v["keyframes"]["count"] == 5 and v["keyframes"]["times_s"] == [0.0, 0.4, 0.8, 1.2, 1.6]
    assert v["keyframes"]["mean_gop_frames"] == 10.0 and v["keyframes"]["gop_regular"] is True
    assert f["duration_s"] == pytest.approx(2.0, abs=0.05) and f["audio_streams"] == []
    assert "FFmpeg" in f["transcoders"] and section.signal is None  # FFmpeg alone is no stance
    json.dumps(f)


def test_editor_encoder_tag_suggests_editing(tmp_path: Path) -> None:
    section = video_container_section(mux(tmp_path / "edit.mp4", comment="Exported with Adobe Premiere Pro 2023"))
    assert section.fields["editors"] == ["Adobe Premiere"]
    assert section.signal.stance == SUGGESTS_MANIPULATION
    assert "not necessarily a face manipulation" in section.signal.reason


def test_truncated_without_index_gives_an_error_field(tmp_path: Path) -> None:
    data = mux(tmp_path / "full.mp4").read_bytes()  # moov (the index) is written last
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    section = video_container_section(cut)
    assert str(cut) in section.fields["error"] and section.signal.stance == NO_INFORMATION


def test_truncated_with_index_first_reports_the_missing_packets(tmp_path: Path) -> None:
    data = mux(tmp_path / "full.mp4", faststart=True).read_bytes()  # moov first: the header survives the cut
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    f = video_container_section(cut).fields
    assert "error" not in f and "truncated" in f["demux_error"]
    assert 0 < f["video_streams"][0]["packets"] < 50


def test_not_a_video_gives_an_error_field(tmp_path: Path) -> None:
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "noise.mp4" in video_container_section(bad).fields["error"]
    assert "missing.mp4" in video_container_section(tmp_path / "missing.mp4").fields["error"]


def test_starter_clip_facts() -> None:
    f = video_container_section(STARTER_CLIP).fields
    v = f["video_streams"][0]
    assert v["codec"] == "h264" and v["frames"] == 472 and v["packets"] == 472 and len(f["audio_streams"]) == 1
    assert v["keyframes"]["count"] == 7 and v["keyframes"]["mean_gop_s"] == pytest.approx(3.003)
    assert f["creation_time"].startswith("2019-10-11")
