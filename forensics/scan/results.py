"""The scan's journal: one JSON line per finished file, appended and fsynced before the next file starts.

A killed scan leaves at most one torn last line (no newline, or not valid JSON); reading drops it and the file
is redone. Under torchrun every rank appends to its own shard (`results.rank<r>-of-<w>.jsonl`); at the end the
shards are merged into `results.jsonl` (atomically) and removed. A resumed scan reads all of them, so it also
resumes a run that was sharded differently. One record per file: a key seen twice keeps its last record.

A line: {"key": absolute path, "state": {"size", "mtime_ns"} when the file was read, "file": the file's
scan.json object, "custody": when/where it was analysed and the seconds per stage}.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forensics.data.media import write_bytes_atomic

RESULTS = "results.jsonl"


class ResultsError(ValueError):
    """A results file damaged somewhere other than its last line (not what a kill leaves)."""


def shard_path(out: str | os.PathLike, rank: int, world: int) -> Path:
    return Path(out) / f"results.rank{rank:03d}-of-{world:03d}.jsonl"


def result_files(out: str | os.PathLike) -> list[Path]:
    """The merged journal first, then the shards (sorted): later files win on a repeated key."""
    out = Path(out)
    merged = [out / RESULTS] if (out / RESULTS).is_file() else []
    return merged + sorted(out.glob("results.rank*-of-*.jsonl"))


def encode_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n").encode()


def read_journal(path: str | os.PathLike) -> tuple[list[dict[str, Any]], int]:
    """(records, bytes of complete lines). A torn last line is left out; damage before it is an error."""
    data = Path(path).read_bytes()
    records, good = [], 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and line == b"":
            break
        try:
            if last:  # no newline after it: the write was cut
                raise ValueError("line without its newline")
            record = json.loads(line)
            if not isinstance(record, dict) or "key" not in record or "file" not in record:
                raise ValueError("not a result record")
        except ValueError as exc:
            if last:
                break
            raise ResultsError(f"{path}: line {i + 1} is damaged ({exc}); it is not the last line, so this is not "
                               "what a killed scan leaves. Move the file away to rescan those files.") from None
        records.append(record)
        good += len(line) + 1
    return records, good


class Journal:
    """Appends records to one JSONL file; a torn tail from a killed run is cut off before the first append."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_file():
            _, good = read_journal(self.path)
            if good != self.path.stat().st_size:
                write_bytes_atomic(self.path, self.path.read_bytes()[:good])

    def append(self, record: dict[str, Any]) -> None:
        data = encode_line(record)
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the new directory entry must survive a crash too
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def load_results(out: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Every finished file's last record, by key."""
    done: dict[str, dict[str, Any]] = {}
    for path in result_files(out):
        for record in read_journal(path)[0]:
            done[record["key"]] = record
    return done


def merge_journals(out: str | os.PathLike, order: Iterable[str]) -> Path:
    """Write every record into results.jsonl (in `order` of keys, then any others) and remove the shards."""
    out = Path(out)
    done = load_results(out)
    keys = [k for k in order if k in done]
    keys += sorted(set(done) - set(keys))
    write_bytes_atomic(out / RESULTS, b"".join(encode_line(done[k]) for k in keys))
    for shard in out.glob("results.rank*-of-*.jsonl"):
        shard.unlink()
    return out / RESULTS
