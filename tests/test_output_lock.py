"""One writer per output folder: a second process is refused with the holder's pid; a dead holder's lock is
taken over with a message; synth, zoo train and detect bench all take the lock."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forensics.cli import app
from forensics.jobs import LOCK_NAME, OutputLockedError, output_lock
from forensics.jobs.lock import read_lock_holder
from tests.test_zoo_helpers import REPO, make_checkpoint, subprocess_env

HOLDER = """
import sys, time
from forensics.jobs import output_lock
with output_lock(sys.argv[1], command="holder-for-test"):
    print("held", flush=True)
    sys.stdin.readline()  # hold until the test says so (or kills us)
"""


@pytest.fixture
def holder(tmp_path: Path):
    """A real second process holding tmp_path/out's lock until its stdin closes."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], cwd=REPO, env=subprocess_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield out, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def test_a_second_process_is_refused_with_the_holders_pid(holder) -> None:
    out, proc = holder
    with pytest.raises(OutputLockedError) as err:
        with output_lock(out):
            pass
    msg = str(err.value)
    assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "holder-for-test" in msg
    assert err.value.holder is not None and err.value.holder.pid == proc.pid
    info = json.loads((out / LOCK_NAME).read_text())
    assert info["pid"] == proc.pid and info["command"] == "holder-for-test"
    proc.stdin.close()  # the holder finishes: its lock file goes with it, and the folder is free
    proc.wait(timeout=30)
    assert not (out / LOCK_NAME).exists()
    with output_lock(out) as lock:
        assert lock.took_over is None


def test_a_killed_holders_lock_is_taken_over_with_a_message(holder) -> None:
    out, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert read_lock_holder(out).pid == proc.pid  # kill -9 left the file behind
    messages: list[str] = []
    with output_lock(out, log=messages.append) as lock:
        assert lock.took_over is not None and lock.took_over.pid == proc.pid
        assert read_lock_holder(out).pid == os.getpid()
    assert len(messages) == 1 and f"stale lock of pid {proc.pid}" in messages[0] and "no longer running" in messages[0]
    assert not (out / LOCK_NAME).exists()


def test_the_lock_is_reentrant_in_one_process_and_removed_by_the_outermost_release(tmp_path: Path) -> None:
    out = tmp_path / "new" / "folder"
    with output_lock(out):
        with output_lock(out):  # the CLI and the library function under it
            assert (out / LOCK_NAME).exists()
        assert (out / LOCK_NAME).exists()
    assert not (out / LOCK_NAME).exists()


@pytest.mark.parametrize("command", ["synth", "zoo train", "detect bench"])
def test_long_commands_refuse_a_folder_another_process_writes(holder, tmp_path: Path, command: str) -> None:
    out, proc = holder
    data = tmp_path / "absent.parquet"  # never read: the lock is taken before the manifest is opened
    ckpt = make_checkpoint(tmp_path / "ckpt")
    args = {"synth": ["synth", "--ckpt", str(ckpt), "--data", str(data), "--n", "2", "--out", str(out)],
            "zoo train": ["zoo", "train", "stylegan2", "--data", str(data), "--config", "tiny", "--steps", "1",
                          "--out", str(out), "--device", "cpu"],
            "detect bench": ["detect", "bench", "--data", str(data), "--out", str(out), "--detectors", "dct"]}[command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"forensics {command}: {out} is in use by another job (pid {proc.pid}" in result.output
    assert read_lock_holder(out).pid == proc.pid  # the holder's lock is untouched


def test_a_scan_into_a_folder_another_process_writes_is_refused(holder) -> None:
    """`forensics scan` takes the same lock: the CLI exits 2 naming the holder, and writes nothing there."""
    out, proc = holder
    image = REPO / "forensics" / "assets" / "starter" / "grace_hopper.jpg"
    result = CliRunner().invoke(app, ["scan", str(image), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert f"pid {proc.pid}" in result.output and "in use by another job" in result.output
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
