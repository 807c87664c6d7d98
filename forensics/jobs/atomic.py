"""Atomic output writes whose failures name the file: disk full, read-only folder, no permission.

`forensics.data.media.write_bytes_atomic` already writes a temp file and renames it (a killed job never leaves
half a file under its final name, and the temp file is removed when the write fails). What it cannot do is say
*which* file a full disk stopped: `write()` raises ENOSPC without a filename. These wrappers add the path and a
plain reason, and `output_errors` does the same for any writer called inside its block.
"""
from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# errno -> what to tell the user
_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for the file system",
}


class OutputWriteError(OSError):
    """An output could not be written; `str()` names the path and the reason (errno kept for callers)."""

    def __init__(self, path: str | os.PathLike, cause: OSError) -> None:
        self.path = Path(path)
        self.reason = _REASONS.get(cause.errno or 0, cause.strerror or str(cause))
        super().__init__(cause.errno, f"cannot write {self.path}: {self.reason}")
        self.filename = str(self.path)

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.reason}"


def is_output_fault(exc: BaseException) -> bool:
    """True for the errors a full, read-only or forbidden output folder raises."""
    return isinstance(exc, OSError) and exc.errno in _REASONS


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomic write (temp + rename, temp removed on failure); disk faults raise OutputWriteError naming `path`."""
    from forensics.data.media import write_bytes_atomic

    try:
        write_bytes_atomic(path, data)
    except OutputWriteError:
        raise
    except OSError as exc:
        if is_output_fault(exc):
            raise OutputWriteError(path, exc) from None
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2, sort_keys: bool = True) -> None:
    write_bytes(path, (json.dumps(obj, indent=indent, sort_keys=sort_keys, default=str) + "\n").encode())


def write_parquet(path: str | os.PathLike, df: "pd.DataFrame") -> None:
    """Parquet bytes are built in memory first: a failing encoder never touches the disk."""
    write_bytes(path, df.to_parquet(index=False))


@contextmanager
def output_errors(folder: str | os.PathLike) -> Iterator[None]:
    """Inside the block, a disk fault from any writer becomes OutputWriteError naming the file (or `folder`
    when the OS did not say which file)."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as exc:
        if not is_output_fault(exc):
            raise
        where = exc.filename if exc.filename else Path(folder)
        raise OutputWriteError(where, exc) from None


def _is_atomic_temp(name: str) -> bool:
    """`write_bytes_atomic` temp names: '.<final name>.<random>.tmp'."""
    return name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete temp files a killed writer left under `folder` (call it while holding the folder's lock)."""
    removed = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if _is_atomic_temp(name):
                p = Path(root) / name
                p.unlink(missing_ok=True)
                removed.append(p)
    return sorted(removed)
