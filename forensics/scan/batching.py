"""Reading files ahead of their analysis: hash, sniff and decode in a thread pool, faces of a batch of photos found
in one MTCNN call, while the scan's main thread scores, draws and writes the files before them.

`read_ahead(c, timer, ...)` is the start of every file's analysis (the scan's order is kept: hashed before
anything decodes it, sniffed by content, then decoded). `read_ahead_files(candidates, ctx)` runs it for a stream of
files, `BATCH_FILES` at a time: each window's files are hashed, sniffed and (images) decoded and searched for
faces by `DECODE_WORKERS` threads, and the next window is read while the consumer works on this one
(`forensics.scan.prefetch`, one window ahead), so decoding and face detection (the largest cost of a photo) run on
two threads beside scoring, the maps and the writing of the files before. (MTCNN's forward passes only read the
networks, and torch releases the GIL in them: two threads can run them at once.)

Faces are searched one photo per MTCNN call, not one call per batch of photos: MTCNN on a batch of equal-sized
images (one P-net pyramid pass for all) is ~20% cheaper per photo but not bit-identical to one image at a time
(boxes move by ~3e-5 px: other GEMM blocking), so a file's scan.json would depend on which files shared its batch,
and a resumed or sharded scan would no longer give the bytes of an uninterrupted one. (Video keyframes are still
batched per chunk: a video's chunks are the same in every run.) Videos are hashed and sniffed here
and decoded by their own streaming reader. Memory is bounded: a window closes once its files decoded so far reach
`BATCH_PIXELS` pixels (at most `DECODE_WORKERS` more are in flight), and at most two windows are alive.

Each file's stage times (hash, decode, quality, detect) come with it in its own StageTimer, merged into the
file's custody record.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from forensics.data.media import MediaError
from forensics.scan.discover import Candidate, Sniffed, sniff
from forensics.scan.integrity import FileState, file_state, utc_now
from forensics.scan.timing import StageTimer

BATCH_FILES = 8
BATCH_PIXELS = 24_000_000  # decoded pixels per window (~72 MB of RGB)
DECODE_WORKERS = 2


@dataclass
class ReadAhead:
    """A file hashed, sniffed and, for an image, decoded with its faces found, before its analysis."""

    started_utc: str
    t0: float  # perf_counter when its reading began
    timer: StageTimer = field(default_factory=StageTimer)
    before: FileState | None = None
    error: str | None = None  # it could not be read at all (then nothing else is set)
    sniffed: Sniffed | None = None
    sniff_error: BaseException | None = None  # raised again where the analysis would have raised it
    decoded: Any = None  # forensics.scan.image.DecodedImage
    decode_error: BaseException | None = None  # a MediaError etc., reported by the analysis as usual


def read_ahead(c: Candidate, timer: StageTimer | None = None, decode: bool = False, max_pixels: int | None = None,
               finder: Any = None) -> ReadAhead:
    """Hash before anything else reads the file, then sniff; `decode`: an image is decoded too, and its faces found
    when a `finder` (forensics.scan.faces.FaceFinder) is given."""
    from forensics.scan.image import decode_image

    pre = ReadAhead(utc_now(), time.perf_counter(), timer or StageTimer())
    path = c.path
    try:
        if not path.is_file():
            raise MediaError(path, "not a regular file" if path.exists() else "file does not exist (broken link?)")
        with pre.timer.stage("hash"):
            pre.before = file_state(path)
    except (OSError, MediaError) as exc:
        pre.error = str(exc) if isinstance(exc, MediaError) else f"{path}: cannot read ({exc.strerror or exc})"
        return pre
    try:
        pre.sniffed = sniff(path)
    except Exception as exc:  # noqa: BLE001 - raised again in the analysis, where it always surfaced
        pre.sniff_error = exc
        return pre
    if decode and pre.sniffed.kind == "image":
        try:
            pre.decoded = decode_image(path, pre.timer, pre.sniffed.format, max_pixels)
        except Exception as exc:  # noqa: BLE001 - the analysis reports it as it reports its own decode errors
            pre.decode_error = exc
            return pre
        if finder is not None:
            try:
                with pre.timer.stage("detect"):
                    pre.decoded.faces = finder.detect([pre.decoded.rgb])[0]
            except Exception:  # noqa: BLE001 - left to the analysis, which searches again and reports its error
                pre.decoded.faces = None
    return pre


def _windows(candidates: Sequence[Candidate], finder: Any, max_pixels: int, batch: int
             ) -> Iterator[list[tuple[Candidate, ReadAhead | None]]]:
    with ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="scan-decode") as pool:
        i = 0
        while i < len(candidates):
            window: list[tuple[Candidate, Any]] = []
            pixels = 0
            while i < len(candidates) and len(window) < batch and pixels < BATCH_PIXELS:
                c = candidates[i]
                i += 1
                if c.error:
                    window.append((c, None))
                    continue
                window.append((c, pool.submit(read_ahead, c, None, True, max_pixels, finder)))
                if len(window) > DECODE_WORKERS:  # bound the window's decoded pixels (waits for the oldest only)
                    pixels = sum(_pixels(f) for _, f in window[:-DECODE_WORKERS] if f is not None)
            yield [(c, None if f is None else f.result()) for c, f in window]


def _pixels(future: Any) -> int:
    pre = future.result()
    return 0 if pre.decoded is None else int(pre.decoded.rgb.shape[0] * pre.decoded.rgb.shape[1])


def read_ahead_files(candidates: Sequence[Candidate], ctx: Any, batch: int = BATCH_FILES
                     ) -> Iterator[tuple[Candidate, ReadAhead | None]]:
    """(candidate, its ReadAhead) in order, read one window ahead of the consumer (module docstring). A candidate
    that names nothing (`c.error`) comes with None."""
    from forensics.scan.prefetch import prefetch

    windows = _windows(list(candidates), ctx.finder, ctx.settings.max_pixels, max(1, batch))
    for window in prefetch(windows, depth=1):
        yield from window


def merge_timer(into: StageTimer, other: StageTimer) -> None:
    with into._lock:
        for k, v in other.seconds.items():
            into.seconds[k] += v
        for k, v in other.cpu_seconds.items():
            into.cpu_seconds[k] += v


__all__ = ["BATCH_FILES", "ReadAhead", "merge_timer", "read_ahead", "read_ahead_files"]
