"""A bad-input corpus generated from the starter media: what every command that reads media must survive.

Nothing binary is committed: `build_bad_corpus` writes the corpus from the shipped starter files (or any others
given as `sources`) with a seeded generator, so the same seed always gives the same files. Two parts:

- fixed cases, one of each kind of trouble a media reader meets in the field (empty files, random bytes under a
  media name, text and HTML named .jpg, a PNG whose header claims 60000x60000, every pixel layout Pillow writes,
  animated GIF, videos without a picture stream or without frames, symlink loops, FIFOs, odd names, ...);
- random mutations of real files (truncation at a random offset, random byte flips in the header or anywhere,
  a zeroed run of bytes) until the corpus holds `n` entries.

Each case says what a reader may do with it (`expect`): "must_fail" (scoring it would be a bug: there are no
pixels to score), "may_succeed" (a valid or damaged-but-decodable file: scored or refused with a reason are both
right) or "not_a_file" (a folder or a link to one: a folder scan walks past it; a reader given it by name must
refuse it with a reason).
"""
from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

MUST_FAIL = "must_fail"
MAY_SUCCEED = "may_succeed"
NOT_A_FILE = "not_a_file"
EXPECTATIONS = (MUST_FAIL, MAY_SUCCEED, NOT_A_FILE)

# Starter files used as mutation sources: small ones, so most damaged copies stay cheap to scan.
DEFAULT_SOURCES = ("franck_01829.jpg", "franck_02045.jpg", "test.jpg", "0-f1-su-ph.jpg", "grace_hopper.jpg",
                   "astronaut.png", "single_face.mp4", "no_face.mp4", "carphone_pristine.mp4")
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".gif")
_VIDEO_EXTS = (".mp4", ".mov", ".m4v", ".avi", ".mkv")


@dataclass(frozen=True)
class FuzzCase:
    """One corpus entry: where it is, how it was made, and what a reader may do with it."""

    path: Path  # absolute
    mutation: str  # e.g. "truncate@1234 of test.jpg", "png-60000x60000"
    expect: str  # one of EXPECTATIONS

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "name": os.fsdecode(self.path.name), "mutation": self.mutation,
                "expect": self.expect}


@dataclass(frozen=True)
class CorpusNotes:
    """What this machine let the corpus test (root reads mode-000 files, so that case proves nothing as root)."""

    running_as_root: bool
    mode_000_readable: bool


def starter_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "assets" / "starter"


def default_sources() -> list[Path]:
    return [starter_dir() / name for name in DEFAULT_SOURCES]


# ------------------------------------------------------------------------------------------ crafted files


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG (valid IHDR and CRCs) whose header claims width x height RGB but whose IDAT holds one
    tiny compressed row: a decompression bomb's header without its payload."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no filter/interlace
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _pil_bytes(im, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def image_variants(source: Path) -> dict[str, bytes]:
    """Every pixel layout and still format a reader should handle, from one real photo (name -> bytes)."""
    import cv2
    from PIL import Image

    with Image.open(source) as im:
        rgb = im.convert("RGB")
    rgb.thumbnail((256, 256))
    arr = np.asarray(rgb)  # [H,W,3] uint8
    wide = (arr.astype(np.uint16) * 257)[:, :, ::-1]  # [H,W,3] uint16 BGR for OpenCV
    ok, png16 = cv2.imencode(".png", np.ascontiguousarray(wide))
    assert ok
    frames = [rgb.rotate(angle) for angle in (0, 5, 10)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return {
        "rgb16.png": png16.tobytes(),
        "gray16.png": _pil_bytes(Image.fromarray(arr[:, :, 0].astype(np.uint16) * 257), "PNG"),
        "rgba.png": _pil_bytes(rgb.convert("RGBA"), "PNG"),
        "gray.png": _pil_bytes(rgb.convert("L"), "PNG"),
        "gray_alpha.png": _pil_bytes(rgb.convert("LA"), "PNG"),
        "palette.png": _pil_bytes(rgb.convert("P"), "PNG"),
        "bilevel.png": _pil_bytes(rgb.convert("1"), "PNG"),
        "cmyk.jpg": _pil_bytes(rgb.convert("CMYK"), "JPEG", quality=90),
        "gray.jpg": _pil_bytes(rgb.convert("L"), "JPEG", quality=90),
        "progressive.jpg": _pil_bytes(rgb, "JPEG", quality=85, progressive=True),
        "image.webp": _pil_bytes(rgb, "WEBP", quality=80),
        "image.tif": _pil_bytes(rgb, "TIFF"),
        "image.gif": _pil_bytes(rgb, "GIF"),
        "animated.gif": gif.getvalue(),
        "image.bmp": _pil_bytes(rgb, "BMP"),
        "px3x2.png": _pil_bytes(rgb.resize((3, 2)), "PNG"),
        "px3x2.jpg": _pil_bytes(rgb.resize((3, 2)), "JPEG"),
        "px1x1.png": _pil_bytes(rgb.resize((1, 1)), "PNG"),
        "px1x1.jpg": _pil_bytes(rgb.resize((1, 1)), "JPEG"),
        "png_named.jpg": _pil_bytes(rgb, "PNG"),  # content and extension disagree
        "jpeg_named.png": _pil_bytes(rgb, "JPEG"),
    }


def remux(source: Path, target: Path) -> None:
    """Copy a video's packets into another container (e.g. .mp4 -> .mov) without re-encoding."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)


def audio_only(target: Path, seconds: float = 0.5) -> None:
    """A container with one AAC audio stream and no video stream."""
    import av

    rate = 44100
    with av.open(str(target), "w") as dst:
        stream = dst.add_stream("aac", rate=rate)
        t = np.arange(int(rate * seconds)) / rate
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]  # [1,T]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)


def zero_frames(target: Path) -> None:
    """A container with a video stream and no packets at all."""
    import av

    with av.open(str(target), "w") as dst:
        stream = dst.add_stream("mpeg4", rate=Fraction(25, 1))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        dst.start_encoding()  # header written; no frame ever encoded


# ------------------------------------------------------------------------------------------ the corpus


class _Writer:
    """Writes corpus entries under one folder with unique names and records each case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases: list[FuzzCase] = []
        self.names: set[str] = set()

    def path(self, name: str) -> Path:
        stem, dot, ext = name.partition(".")
        candidate, i = name, 1
        while candidate in self.names or (self.root / candidate).exists() or (self.root / candidate).is_symlink():
            candidate = f"{stem}-{i}{dot}{ext}"
            i += 1
        self.names.add(candidate)
        return self.root / candidate

    def add(self, path: Path, mutation: str, expect: str) -> None:
        self.cases.append(FuzzCase(path.absolute(), mutation, expect))

    def write(self, name: str, data: bytes, mutation: str, expect: str) -> Path:
        path = self.path(name)
        path.write_bytes(data)
        self.add(path, mutation, expect)
        return path


def _fixed_cases(w: _Writer, rng: np.random.Generator, photo: Path, videos: Sequence[Path]) -> Path:
    """Write one case of each kind; returns the remuxed .mov (a further mutation source)."""
    for ext in (".jpg", ".png", ".mp4", ".mov", ".gif", ".webp", ""):
        w.write(f"empty{ext}", b"", "zero bytes", MUST_FAIL)
    for ext in (".jpg", ".png", ".mp4", ".mov", ".tif", ".bmp", ".webp", ".avi"):
        w.write(f"random{ext}", rng.bytes(int(rng.integers(1, 4096))), "random bytes", MUST_FAIL)
    w.write("text.jpg", b"hello, this is not a picture\n" * 20, "text named .jpg", MUST_FAIL)
    w.write("page.jpg", b"<!DOCTYPE html><html><body><img src='x.jpg'></body></html>\n", "HTML named .jpg",
            MUST_FAIL)
    w.write("page.mp4", b"<html><head><title>404</title></head></html>\n", "HTML named .mp4", MUST_FAIL)
    w.write("notes.txt", b"case notes\n", "text named .txt", MUST_FAIL)
    w.write("huge.png", png_claiming(60000, 60000), "PNG header claiming 60000x60000", MUST_FAIL)
    w.write("huge.jpg", png_claiming(60000, 60000), "PNG claiming 60000x60000 named .jpg", MUST_FAIL)
    w.write("jpeg_header_only.jpg", photo.read_bytes()[:200], "JPEG headers, no scan data", MUST_FAIL)
    for name, data in image_variants(photo).items():
        w.write(name, data, f"format variant {name} of {photo.name}", MAY_SUCCEED)
    video = videos[0]
    mov = w.path(f"{video.stem}_remuxed.mov")
    remux(video, mov)
    w.add(mov, f"{video.name} remuxed to .mov", MAY_SUCCEED)
    audio = w.path("audio_only.mp4")
    audio_only(audio)
    w.add(audio, "audio stream only", MUST_FAIL)
    empty_video = w.path("zero_frames.mp4")
    zero_frames(empty_video)
    w.add(empty_video, "video stream with no packets", MUST_FAIL)
    # names and file-system oddities
    w.write("a face – été 顔 copy.jpg", photo.read_bytes(), "spaces and non-ASCII in the name", MAY_SUCCEED)
    w.write(os.fsdecode(b"bad-\xff\xfe-bytes.jpg"), photo.read_bytes(), "name that is not UTF-8", MAY_SUCCEED)
    w.write(".hidden.jpg", photo.read_bytes(), "hidden file (dot name)", MAY_SUCCEED)
    locked = w.write("mode000.jpg", photo.read_bytes(), "chmod 000", MAY_SUCCEED)
    os.chmod(locked, 0)
    fifo = w.path("fifo.jpg")
    os.mkfifo(fifo)
    w.add(fifo, "FIFO named .jpg (opening it for reading would block)", MUST_FAIL)
    dangling = w.path("dangling.jpg")
    dangling.symlink_to("does-not-exist.jpg")
    w.add(dangling, "dangling symlink", MUST_FAIL)
    self_loop = w.path("self_loop.jpg")
    self_loop.symlink_to(self_loop.name)
    w.add(self_loop, "symlink to itself (ELOOP)", MUST_FAIL)
    inside = w.write("link_target.jpg", photo.read_bytes(), "a file a symlink points to", MAY_SUCCEED)
    link = w.path("link_inside.jpg")
    link.symlink_to(inside.name)
    w.add(link, "symlink to a file in the corpus", MAY_SUCCEED)
    outside = w.path("link_outside.jpg")
    outside.symlink_to(photo.resolve())
    w.add(outside, "symlink to a file outside the corpus", MAY_SUCCEED)
    loop = w.path("loopdir")
    loop.mkdir()
    (loop / "again").symlink_to("..")
    w.add(loop / "again", "directory symlink loop", NOT_A_FILE)
    w.add(loop, "folder holding a symlink loop", NOT_A_FILE)
    like = w.path("folder.jpg")
    like.mkdir()
    w.add(like, "directory named like.jpg", NOT_A_FILE)
    like_video = w.path("folder.mp4")
    like_video.mkdir()
    w.add(like_video, "directory named like.mp4", NOT_A_FILE)
    closed = w.path("noexec")
    closed.mkdir()
    hidden_in = closed / "inside.jpg"
    hidden_in.write_bytes(photo.read_bytes())
    w.add(hidden_in, "file under a folder without x permission", MAY_SUCCEED)
    os.chmod(closed, stat.S_IRUSR | stat.S_IWUSR)  # rw-, no x: not traversable except by root
    return mov


def _mutate(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One random damage to a real file's bytes, and its description."""
    kind = rng.choice(["truncate", "flip", "flip_header", "zero_run"], p=[0.35, 0.3, 0.25, 0.1])
    n = len(data)
    if kind == "truncate":
        at = int(rng.integers(1, n))
        return data[:at], f"truncate@{at}/{n}"
    buf = bytearray(data)
    if kind == "zero_run":
        start = int(rng.integers(0, n))
        length = int(rng.integers(1, max(2, n // 20)))
        buf[start:start + length] = bytes(len(buf[start:start + length]))
        return bytes(buf), f"zero_run {length} bytes@{start}/{n}"
    span = min(n, 2048) if kind == "flip_header" else n
    flips = int(rng.integers(1, 33))
    for at in rng.integers(0, span, size=flips):
        buf[int(at)] ^= int(rng.integers(1, 256))
    return bytes(buf), f"{kind} {flips} bytes in the first {span}/{n}"


def build_bad_corpus(out_dir: str | os.PathLike, seed: int, sources: Sequence[str | os.PathLike] | None = None,
                     n: int = 500, video_share: float = 0.2) -> list[FuzzCase]:
    """Write a corpus of at least `n` entries (fixed cases first, then seeded mutations of `sources`) under
    `out_dir` (created; must be empty or absent). Returns one FuzzCase per entry, in creation order.

    `video_share` of the mutations damage a video: a damaged video that still decodes costs a scan ~1-4 s (its
    timeline plot), an image ~0.4 s, so this share sets the corpus's scan time."""
    root = Path(out_dir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root}: the corpus folder must be empty")
    paths = [Path(s) for s in (sources if sources is not None else default_sources())]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"corpus sources not found: {missing}")
    photos = [p for p in paths if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    videos = [p for p in paths if p.suffix.lower() in _VIDEO_EXTS]
    if not photos or not videos:
        raise ValueError("sources must include at least one photo (.jpg/.png) and one video (.mp4/.mov)")
    rng = np.random.default_rng(seed)
    w = _Writer(root)
    paths.append(_fixed_cases(w, rng, photos[0], videos))  # damaged .mov files come from the remuxed copy
    blobs = {p: p.read_bytes() for p in paths}
    videos = [p for p in paths if p.suffix.lower() in _VIDEO_EXTS]  # the remuxed .mov included
    i = 0
    while len(w.cases) < n:
        pool = videos if rng.random() < video_share else photos
        src = pool[int(rng.integers(0, len(pool)))]
        damaged, how = _mutate(blobs[src], rng)
        ext = src.suffix.lower()
        if rng.random() < 0.1:  # now and then under another media extension of the same kind
            pool = _VIDEO_EXTS if ext in _VIDEO_EXTS else _IMAGE_EXTS
            ext = pool[int(rng.integers(0, len(pool)))]
        w.write(f"m{i:04d}_{src.stem}{ext}", damaged, f"{how} of {src.name}", MAY_SUCCEED)
        i += 1
    return w.cases


def corpus_notes(cases: Sequence[FuzzCase]) -> CorpusNotes:
    """Whether the mode-000 case really was unreadable here (it is not for root)."""
    locked = [c.path for c in cases if c.mutation == "chmod 000"]
    readable = False
    for path in locked:
        try:
            with open(path, "rb") as fh:
                fh.read(1)
            readable = True
        except OSError:
            pass
    return CorpusNotes(running_as_root=os.geteuid() == 0, mode_000_readable=readable)


def restore_permissions(cases: Sequence[FuzzCase]) -> None:
    """Give the corpus's locked files and folders their permissions back, so a temp folder can be deleted."""
    for c in cases:
        for p in (c.path.parent, c.path):
            if p.is_dir() and not p.is_symlink():
                os.chmod(p, 0o755)
            elif p.is_file() and not p.is_symlink() and c.mutation == "chmod 000":
                os.chmod(p, 0o644)
