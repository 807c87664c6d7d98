"""Media IO: every kind of bad input gets a MediaError naming the file and the reason; odd pixel formats become RGB uint8."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from forensics.data.media import (
    MediaError,
    encode_png,
    iter_frames,
    probe_video,
    read_image,
    write_image,
    write_video,
)


def _save(path: Path, array: np.ndarray, **kwargs) -> Path:
    Image.fromarray(array).save(path, **kwargs)
    return path


@pytest.fixture
def rgb(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext,fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP"), (".tiff", "TIFF")])
def test_reads_each_format_as_rgb_uint8(tmp_path: Path, rgb: np.ndarray, ext: str, fmt: str) -> None:
    path = _save(tmp_path / f"x{ext}", rgb, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    if fmt != "JPEG":
        np.testing.assert_array_equal(out, rgb)


def test_gray_rgba_and_16bit_become_rgb(tmp_path: Path, rgb: np.ndarray) -> None:
    gray = _save(tmp_path / "g.png", rgb[:, :, 0])
    assert np.array_equal(read_image(gray), np.repeat(rgb[:, :, :1], 3, axis=2))

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.array_equal(read_image(_save(tmp_path / "a.png", rgba)), rgb)

    deep = (rgb[:, :, 0].astype(np.uint16) * 257)  # 16-bit gray with the same visible values
    path16 = tmp_path / "d.png"
    cv2.imwrite(str(path16), deep)
    out = read_image(path16)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out[:, :, 0], rgb[:, :, 0])


def test_transparent_pixels_composite_to_black(tmp_path: Path, rgb: np.ndarray) -> None:
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])
    assert read_image(_save(tmp_path / "t.png", rgba)).max() == 0


def _expect_error(path: Path, fragment: str, **kwargs) -> None:
    with pytest.raises(MediaError) as info:
        read_image(path, **kwargs)
    assert str(path) in str(info.value)
    assert fragment in info.value.reason


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    _expect_error(path, "empty")


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.png", "does not exist")


def test_truncated_image(tmp_path: Path, rgb: np.ndarray) -> None:
    full = _save(tmp_path / "full.jpg", np.tile(rgb, (8, 8, 1)), format="JPEG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _expect_error(cut, "truncated")


def test_corrupt_bytes(tmp_path: Path) -> None:
    path = tmp_path / "junk.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    _expect_error(path, "corrupt")


def test_wrong_extension(tmp_path: Path, rgb: np.ndarray) -> None:
    path = _save(tmp_path / "really_a_png.jpg", rgb, format="PNG")
    _expect_error(path, "extension says jpeg but the content is png")


def test_not_an_image_extension(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    _expect_error(path, "not an image extension")


def test_pixel_bound_is_checked_before_decoding(tmp_path: Path, rgb: np.ndarray) -> None:
    _expect_error(_save(tmp_path / "big.png", rgb), "exceeds the limit", max_pixels=100)


def test_inputs_are_not_modified(tmp_path: Path, rgb: np.ndarray) -> None:
    path = _save(tmp_path / "x.png", rgb)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    read_image(path)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_png_writer_is_lossless_deterministic_and_atomic(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "sub" / "x.png"
    write_image(path, rgb)
    assert np.array_equal(read_image(path), rgb)
    assert encode_png(rgb) == path.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no temp files left behind
    with pytest.raises(ValueError, match="PNG only"):
        write_image(tmp_path / "x.jpg", rgb)


def _frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    return [np.dstack([(xx * 4 + i * 8) % 256, (yy * 5) % 256, np.full((h, w), 128)]).astype(np.uint8) for i in range(n)]


def test_video_round_trip_frame_count_and_size(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    assert write_video(path, _frames(12), fps=10) == 12
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height) == (12, 64, 48)
    assert info.fps == pytest.approx(10)
    frames = list(iter_frames(path, step=3))
    assert [i for i, _ in frames] == [0, 3, 6, 9]
    assert frames[0][1].shape == (48, 64, 3) and frames[0][1].dtype == np.uint8


def test_corrupt_and_zero_byte_videos(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(MediaError, match="empty"):
        probe_video(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(MediaError) as info:
        list(iter_frames(junk))
    assert str(junk) in str(info.value)


def test_truncated_video_reports_or_yields_a_prefix(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, _frames(30), fps=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    # A cut-off mp4 loses its index (moov atom at the end): it must fail with a clear error, never hang.
    try:
        got = list(iter_frames(cut))
    except MediaError as exc:
        assert str(cut) in str(exc)
    else:
        assert len(got) < 30


def test_atomic_writes_get_ordinary_permissions(tmp_path: Path, rgb: np.ndarray) -> None:
    old = os.umask(0o022)
    try:
        write_image(tmp_path / "x.png", rgb)
    finally:
        os.umask(old)
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o644
