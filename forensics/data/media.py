"""Reading and writing images and videos, with clear errors for bad input.

Every reader returns RGB uint8 (`[H,W,3]`) whatever the file holds (gray, RGBA, 16-bit), bounds the pixel
count before decoding the pixels, and raises `MediaError` naming the file and the reason. Inputs are only
ever opened for reading. Writers are atomic (temp file + rename) so a killed job never leaves half a file.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})
DEFAULT_MAX_PIXELS = 64_000_000  # ~8000x8000: larger inputs are refused, not decoded into RAM

# Magic numbers per format: a file whose bytes contradict its extension is refused with that reason.
_IMAGE_SIGNATURES = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "webp": (b"RIFF",),
    "bmp": (b"BM",),
    "tiff": (b"II*\x00", b"MM\x00*"),
}
_EXT_FORMAT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff"}


class MediaError(ValueError):
    """A media file that cannot be used; `str()` names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def media_kind(path: str | os.PathLike) -> str:
    """'image' or 'video' by extension; MediaError for anything else."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    raise MediaError(path, f"unsupported extension {ext!r} (images: {sorted(IMAGE_EXTS)}, videos: {sorted(VIDEO_EXTS)})")


def printable(text: str | os.PathLike) -> str:
    """Text safe to print or store as UTF-8: a file name's undecodable bytes (Linux names are bytes; Python
    keeps the bad ones as surrogates) become backslash escapes such as `\\xff`, so the name stays recognisable."""
    return os.fsencode(os.fspath(text)).decode("utf-8", "backslashreplace")


def _check_readable_file(path: Path) -> None:
    """Refuse, with the reason, anything that is not a non-empty regular file this process may read. A FIFO or
    device is refused before it is opened (opening a FIFO for reading would block forever)."""
    try:
        if not path.exists():
            raise MediaError(path, "broken symbolic link (its target does not exist, or it loops)"
                             if path.is_symlink() else "file does not exist")
        if not path.is_file():
            raise MediaError(path, "is a folder, not a file" if path.is_dir() else "not a regular file")
        if path.stat().st_size == 0:
            raise MediaError(path, "file is empty (0 bytes)")
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise MediaError(path, f"cannot read ({exc.strerror or exc})") from None


def _sniff_image_format(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    for fmt, sigs in _IMAGE_SIGNATURES.items():
        if any(head.startswith(s) for s in sigs):
            if fmt == "webp" and head[8:12] != b"WEBP":
                continue
            return fmt
    return None


def _to_rgb_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """Gray/RGBA/16-bit/float -> RGB uint8. Alpha is composited onto black (what a viewer shows is kept)."""
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.uint32) * 255 + 32767) // 65535
    elif arr.dtype in (np.int32, np.int16):  # PIL "I" / "I;16" modes
        arr = np.clip(arr, 0, 65535).astype(np.uint32) * 255 // 65535
    elif np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 4:
        rgb = arr[:, :, :3].astype(np.uint16) * arr[:, :, 3:4].astype(np.uint16) // 255
        return rgb.astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 2:  # gray + alpha
        gray = arr[:, :, 0].astype(np.uint16) * arr[:, :, 1].astype(np.uint16) // 255
        return np.repeat(gray.astype(np.uint8)[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    raise MediaError(path, f"unsupported pixel layout {arr.shape}")


def _check_image_file(path: Path) -> None:
    """Exists, non-empty, an image extension, and content whose signature matches that extension."""
    _check_readable_file(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTS:
        raise MediaError(path, f"not an image extension ({ext!r})")
    actual = _sniff_image_format(path)
    if actual is None:
        raise MediaError(path, "not a recognised image (unknown file signature)")
    if actual != _EXT_FORMAT[ext]:
        raise MediaError(path, f"extension says {_EXT_FORMAT[ext]} but the content is {actual}")


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to RGB uint8 `[H,W,3]`."""
    path = Path(path)
    _check_image_file(path)
    return _decode_image(path, max_pixels, formats=None)


def _decode_image(path: Path, max_pixels: int, formats: tuple[str, ...] | None) -> np.ndarray:
    """Pillow decode with the pixel bound checked on the header first; every failure is a MediaError naming
    the file. `formats` limits what Pillow may try (None: whatever it recognises)."""
    try:
        with Image.open(path, formats=formats) as im:
            w, h = im.size  # header only: no pixels decoded yet
            if w * h > max_pixels:
                raise MediaError(path, f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}")
            if im.mode in ("P", "PA", "LA", "CMYK", "YCbCr", "1"):
                im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
            im.load()
            arr = np.asarray(im)
    except MediaError:
        raise
    except UnidentifiedImageError as exc:
        if formats is None:  # the signature was already checked: unreadable bytes behind it
            raise MediaError(path, f"corrupt or truncated image ({exc})") from None
        raise MediaError(path, f"not a recognised image (formats tried: {', '.join(formats)})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(path, f"corrupt or truncated image ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise MediaError(path, f"image too large ({exc})") from None
    return _to_rgb_uint8(arr, path)


def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes so readers see either the old file or the whole new one."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_png(rgb: np.ndarray) -> bytes:
    """Lossless PNG bytes; the same pixels always give the same bytes (no timestamps, fixed compression)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected RGB uint8 [H,W,3], got {rgb.dtype} {rgb.shape}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write RGB uint8 as lossless PNG, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: datasets store lossless PNG only (the format must never be the signal)")
    write_bytes_atomic(path, encode_png(rgb))


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def _open_video(path: Path) -> cv2.VideoCapture:
    _check_readable_file(path)
    if path.suffix.lower() not in VIDEO_EXTS:
        raise MediaError(path, f"not a video extension ({path.suffix!r})")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MediaError(path, "cannot open video (corrupt, truncated or unsupported codec)")
    return cap


def probe_video(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoInfo:
    """Frame count, fps and size; the first frame is decoded to prove the stream is readable."""
    path = Path(path)
    cap = _open_video(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if width * height > max_pixels:
            raise MediaError(path, f"{width}x{height} frames exceed the limit of {max_pixels} pixels")
        ok, _ = cap.read()
        if not ok:
            raise MediaError(path, "video has no decodable frame")
    finally:
        cap.release()
    return VideoInfo(path=path, frame_count=max(count, 1), fps=fps, width=width, height=height)


def iter_frames(
    path: str | os.PathLike,
    step: int = 1,
    max_frames: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield `(frame_idx, rgb [H,W,3] uint8)` for every `step`-th frame, decoding sequentially.

    Sequential `grab()` is used rather than seeking: seeking in long-GOP codecs (H.264/HEVC) is slow and on
    some files lands on the wrong frame. A stream that ends before its header's frame count is not an
    error (the header is often approximate); a stream with no frame at all is.
    """
    if step < 1:
        raise ValueError("step must be >= 1")
    path = Path(path)
    info = probe_video(path, max_pixels=max_pixels)
    cap = _open_video(path)
    yielded = 0
    try:
        idx = 0
        while max_frames is None or yielded < max_frames:
            if idx % step == 0:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield idx, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yielded += 1
            elif not cap.grab():
                break
            idx += 1
    finally:
        cap.release()
    if yielded == 0 and info.frame_count > 0:
        raise MediaError(path, "video has no decodable frame")


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, codec: str = "mp4v") -> int:
    """Encode RGB frames to a video file atomically; returns the frame count written.

    Real and fake videos must go through this one writer with the same codec and settings, so the
    container/codec is never what separates them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # OpenCV picks the container from the extension, so the partial file keeps it.
    tmp_path = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    writer: cv2.VideoWriter | None = None
    count = 0
    try:
        for rgb in frames:
            if writer is None:
                h, w = rgb.shape[:2]
                writer = cv2.VideoWriter(str(tmp_path), cv2.VideoWriter_fourcc(*codec), float(fps), (w, h))
                if not writer.isOpened():
                    raise MediaError(path, f"cannot open a {codec!r} video writer")
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            count += 1
        if writer is None:
            raise ValueError(f"{path}: no frames to write")
        writer.release()
        writer = None
        os.replace(tmp_path, path)
    finally:
        if writer is not None:
            writer.release()
        tmp_path.unlink(missing_ok=True)
    return count


def read_media_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image (header only) or a video."""
    path = Path(path)
    if media_kind(path) == "video":
        info = probe_video(path)
        return info.width, info.height
    _check_image_file(path)
    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError as exc:  # not an OSError: Pillow refuses the header's size
        raise MediaError(path, f"image too large ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(path, f"corrupt image ({exc})") from None


# Formats `read_image_by_content` will decode: the common still formats only, so a crafted file cannot reach
# Pillow's rarer plugins (EPS would start Ghostscript).
CONTENT_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


def read_image_by_content(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image whatever its extension says (GIF: the first frame) to RGB uint8 `[H,W,3]`.

    For callers that read the kind from the bytes and note an extension mismatch instead of refusing it (the
    analyst's scan); dataset code keeps `read_image`, which refuses a mismatch."""
    path = Path(path)
    _check_readable_file(path)
    return _decode_image(path, max_pixels, formats=CONTENT_IMAGE_FORMATS)
