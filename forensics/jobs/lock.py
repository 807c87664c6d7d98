"""One writer per output folder: a lock file `OUT/.forensics.lock` held with `fcntl.flock`.

Why flock and not only O_CREAT|O_EXCL: the kernel drops a flock when its process dies, kill -9 included, so a
crashed job never blocks the resume that follows it, and no pid-guessing decides who owns the folder. The file
also holds the holder's pid, host, command and start time (JSON), so a refused job can say who holds the folder,
and a job that takes over a dead holder's file says so. A lock is re-entrant inside one process (the CLI and the
library function under it may both take it) and is removed when the outermost holder releases it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from forensics.jobs.atomic import OutputWriteError

LOCK_NAME = ".forensics.lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) an output folder."""

    pid: int
    host: str
    command: str
    started_utc: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started_utc}: {self.command}"


class OutputLockedError(RuntimeError):
    """Another live process writes this output folder; `holder` says which."""

    def __init__(self, folder: Path, holder: LockHolder | None) -> None:
        self.folder = folder
        self.holder = holder
        who = holder.describe() if holder is not None else "a process that has not written its details yet"
        super().__init__(f"{folder} is in use by another job ({who}); wait for it to finish, or use another "
                         f"output folder")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_holder(fd: int) -> LockHolder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        d = json.loads(raw.decode())
        return LockHolder(int(d["pid"]), str(d["host"]), str(d["command"]), str(d.get("started_utc", "?")))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _this_holder(command: str | None) -> LockHolder:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return LockHolder(os.getpid(), socket.gethostname(), command or " ".join(sys.argv), stamp)


# Locks this process holds, by resolved folder: (open fd, depth). Re-entrant within the process.
_HELD: dict[Path, list[int]] = {}
_HELD_GUARD = threading.Lock()


@dataclass
class OutputLock:
    """A held lock; `release()` (or leaving `output_lock`'s block) gives it back."""

    folder: Path
    path: Path
    holder: LockHolder
    took_over: LockHolder | None  # a dead holder whose lock file was left behind (e.g. after kill -9)

    def release(self) -> None:
        with _HELD_GUARD:
            entry = _HELD.get(self.folder)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[self.folder]
        # unlink while still holding the flock: a waiter that opened this inode re-checks it after locking
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(entry[0])


def _open_locked(path: Path) -> int:
    """Open (creating) the lock file and flock it; retries if the file was replaced between open and lock."""
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputWriteError(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise OutputWriteError(path, exc) from None
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputLockedError(path.parent, holder) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder released (and unlinked) it between our open and flock: try the new file
    raise OutputLockedError(path.parent, None)


def acquire_output_lock(folder: str | os.PathLike, command: str | None = None,
                        log: Callable[[str], None] | None = None) -> OutputLock:
    """Take `folder`'s lock (creating the folder) or raise OutputLockedError naming the live holder.

    A lock file left by a dead holder is taken over and reported through `log` (stderr by default)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(folder, exc) from None
    key = folder.resolve()
    path = folder / LOCK_NAME
    me = _this_holder(command)
    with _HELD_GUARD:
        if key in _HELD:
            _HELD[key][1] += 1
            return OutputLock(key, path, me, None)
        fd = _open_locked(path)
        previous = _read_holder(fd)
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(asdict(me), sort_keys=True) + "\n").encode())
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise OutputWriteError(path, exc) from None
        _HELD[key] = [fd, 1]
    took_over = previous if previous is not None and previous.pid != me.pid else None
    if took_over is not None:
        state = ("no longer running" if took_over.host == me.host and not _pid_alive(took_over.pid)
                 else "its lock was released")
        (log or _stderr)(f"{folder}: taking over a stale lock of {took_over.describe()} ({state})")
    return OutputLock(key, path, me, took_over)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def output_lock(folder: str | os.PathLike, command: str | None = None,
                log: Callable[[str], None] | None = None) -> Iterator[OutputLock]:
    """`with output_lock(out):` one writer at a time per output folder (see `acquire_output_lock`)."""
    lock = acquire_output_lock(folder, command, log)
    try:
        yield lock
    finally:
        lock.release()


def read_lock_holder(folder: str | os.PathLike) -> LockHolder | None:
    """The details in `folder`'s lock file (live or stale), or None when there is none."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)
