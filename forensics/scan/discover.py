"""Which files a scan covers, and what each one is.

Paths, folders (recursive) and globs expand to a sorted, de-duplicated list; nothing named on the command line
is dropped silently: a missing path or an empty glob becomes an entry with its error. The kind (image / video)
is read from the file's first bytes, not its extension; a disagreement is noted, not fatal.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from forensics.data.media import IMAGE_EXTS, VIDEO_EXTS

SCAN_IMAGE_EXTS = IMAGE_EXTS | {".gif"}

# Families of formats an extension may name without that being a mismatch (mp4 and mov are both ISO BMFF).
_EXT_FORMATS = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".webp": "webp", ".bmp": "bmp", ".tif": "tiff",
    ".tiff": "tiff", ".gif": "gif", ".mp4": "isobmff", ".m4v": "isobmff", ".mov": "isobmff", ".avi": "avi",
    ".mkv": "matroska", ".webm": "matroska",
}
IMAGE_FORMATS = frozenset({"jpeg", "png", "webp", "bmp", "tiff", "gif"})
VIDEO_FORMATS = frozenset({"isobmff", "avi", "matroska", "mpegts", "mpegps", "flv"})
_HEAD_BYTES = 512  # enough for an MPEG-TS sync check (0x47 every 188 bytes)


@dataclass(frozen=True)
class Candidate:
    """One entry of the scan: a file to analyse, or an argument that named nothing usable (`error`)."""

    path: Path  # absolute, as found (symlinks are not resolved: the report names what the analyst gave)
    origin: str  # the command-line argument it came from
    error: str | None = None


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" | "video" | "unknown"
    format: str | None  # e.g. "jpeg", "isobmff"; None when unknown
    description: str  # what the bytes look like, for messages ("PNG image", "text", "empty file")
    ext_kind: str | None  # what the extension claims: "image" | "video" | None
    mismatch: str | None  # a note when extension and content disagree


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _walk(root: Path, exclude: Path | None) -> list[Path]:
    """Every file under `root`, sorted; symlinked folders are not followed (no loops), symlinked files are."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if exclude is not None and (here == exclude or exclude in here.parents):
            dirnames[:] = []
            continue
        dirnames.sort()
        found.extend(here / name for name in sorted(filenames))
    return found


def discover(paths: list[str], exclude: str | os.PathLike | None = None) -> list[Candidate]:
    """Expand PATH arguments into candidates, in argument order, each folder's files sorted.

    `exclude` (the scan's own output folder) is never scanned. The same path reached twice (two arguments, a
    folder and a glob) is kept once, at its first mention; a symlink is its own entry under its own name (its
    sha256 shows it is the target's content), so no name the analyst will look for is dropped from the report."""
    exclude_path = Path(exclude).absolute() if exclude is not None else None
    out: list[Candidate] = []
    seen: set[str] = set()

    def add(path: Path, origin: str) -> None:
        path = path.absolute()
        if exclude_path is not None and (path == exclude_path or exclude_path in path.parents):
            return
        key = os.path.normpath(path)
        if key not in seen:
            seen.add(key)
            out.append(Candidate(path, origin))

    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            for f in _walk(p.absolute(), exclude_path):
                add(f, arg)
        elif p.exists() or p.is_symlink():
            add(p, arg)
        elif _has_glob(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                out.append(Candidate(p.absolute(), arg, f"no file matches the pattern {arg!r}"))
            for m in matches:
                mp = Path(m)
                for f in (_walk(mp.absolute(), exclude_path) if mp.is_dir() else [mp]):
                    add(f, arg)
        else:
            out.append(Candidate(p.absolute(), arg, "file does not exist"))
    return out


def _content_format(head: bytes) -> tuple[str | None, str]:
    """(format, description) from a file's first bytes."""
    if not head:
        return None, "empty file"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg", "JPEG image"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", "PNG image"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif", "GIF image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "WebP image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi", "AVI video"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp", "BMP image"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff", "TIFF image"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1").strip()
        if brand in ("avif", "avis", "heic", "heix", "mif1", "msf1"):
            return None, f"HEIF/AVIF still image (brand {brand!r}, not supported)"
        return "isobmff", f"MP4/QuickTime video (brand {brand!r})"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "isobmff", "QuickTime video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska", "WebM video" if b"webm" in head else "Matroska video"
    if head.startswith(b"FLV"):
        return "flv", "FLV video"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpegps", "MPEG program stream video"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "mpegts", "MPEG transport stream video"
    text = head.lstrip()
    if text[:1] == b"<" and (b"html" in text[:64].lower() or b"<!doctype" in text[:64].lower()):
        return None, "HTML text"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64]):
        return None, "text"
    return None, "unrecognised binary data"


def sniff(path: str | os.PathLike) -> Sniffed:
    """The kind and format of a file from its first bytes (read-only), and any extension mismatch."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    fmt, description = _content_format(head)
    kind = "image" if fmt in IMAGE_FORMATS else "video" if fmt in VIDEO_FORMATS else "unknown"
    ext = path.suffix.lower()
    ext_kind = "image" if ext in SCAN_IMAGE_EXTS else "video" if ext in VIDEO_EXTS else None
    mismatch = None
    if fmt is not None and ext in _EXT_FORMATS and _EXT_FORMATS[ext] != fmt:
        mismatch = f"the extension {ext!r} says {_EXT_FORMATS[ext]} but the content is {description}; read by content"
    elif fmt is not None and ext_kind is None:
        mismatch = f"the extension {ext!r} is not a media extension; the content is {description}; read by content"
    return Sniffed(kind, fmt, description, ext_kind, mismatch)
