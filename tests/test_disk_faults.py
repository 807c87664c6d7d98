"""Disk and permission faults: a full disk or a read-only output folder gives a clear error naming the path, a
non-zero exit status, and no half-written file under a final name (temp files removed).

Where the test runs as root and may mount, the faults are real: a 48 KiB tmpfs, and a tmpfs remounted
read-only (chmod does not stop root, so a mode-555 folder would prove nothing). Elsewhere a non-root user gets
a mode-555 folder, and a full disk is simulated by an ENOSPC from the atomic writer's write."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import types
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import forensics.data.media as media
from forensics.cli import app
from forensics.data.media import read_image
from forensics.jobs import LOCK_NAME, OutputWriteError
from forensics.jobs.atomic import write_bytes
from generators.synthesize import SynthOptions, synthesize
from generators.train import TrainOptions, train
from tests.test_zoo_helpers import make_checkpoint, make_real_dataset


def _try_mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return proc.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


class _FullDiskOs:
    """`os` for forensics.data.media whose fdopen'ed files fail with ENOSPC once `budget` bytes are written."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def __getattr__(self, name: str):
        return getattr(os, name)

    def fdopen(self, fd: int, mode: str = "r"):
        fh = os.fdopen(fd, mode)
        disk = self

        class Limited(types.SimpleNamespace):
            def write(self, data: bytes) -> int:
                if len(data) > disk.budget:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                disk.budget -= len(data)
                return fh.write(data)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

        return Limited()


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(a folder on a nearly full disk, 'tmpfs' | 'mock')."""
    mnt = tmp_path / "small_disk"
    if _try_mount_tmpfs(mnt, "48k"):
        try:
            yield mnt, "tmpfs"
        finally:
            _umount(mnt)
        return
    mnt.mkdir()
    monkeypatch.setattr(media, "os", _FullDiskOs(budget=40_000))
    yield mnt, "mock"


@pytest.fixture
def read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(a read-only folder holding an empty `out/`, 'tmpfs-ro' | 'chmod' | 'mock')."""
    mnt = tmp_path / "ro_disk"
    if _try_mount_tmpfs(mnt, "1m"):
        try:
            (mnt / "out").mkdir()
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, capture_output=True)
            yield mnt, "tmpfs-ro"
        finally:
            _umount(mnt)
        return
    mnt.mkdir()
    (mnt / "out").mkdir()
    if os.geteuid() != 0:
        (mnt / "out").chmod(0o555)
        mnt.chmod(0o555)
        try:
            yield mnt, "chmod"
        finally:
            mnt.chmod(0o755)
            (mnt / "out").chmod(0o755)
        return

    def refuse(*args, **kwargs):  # root without mount: the writer is what meets EROFS
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(media, "tempfile", types.SimpleNamespace(mkstemp=refuse))
    yield mnt, "mock"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("disk_inputs")
    return make_real_dataset(root / "real", n=20, size=32), make_checkpoint(root / "ck", 0)


def _leftovers(folder: Path) -> list[str]:
    """Temp files, lock files, and final-named files that are not whole (a PNG that does not decode, a parquet
    that does not parse)."""
    bad = []
    for p in folder.rglob("*"):
        if p.is_dir():
            if p.name.startswith(".tmp"):
                bad.append(f"temp folder {p}")
            continue
        if p.name.endswith(".tmp") or p.name == LOCK_NAME:
            bad.append(f"leftover {p}")
        elif p.suffix == ".png":
            read_image(p)
        elif p.suffix == ".parquet":
            pd.read_parquet(p)
    return bad


def test_a_write_that_fails_names_the_file_and_removes_its_temp(full_disk) -> None:
    disk, kind = full_disk
    target = disk / "big.bin"
    with pytest.raises(OutputWriteError) as err:
        write_bytes(target, b"x" * 200_000)
    assert err.value.errno == errno.ENOSPC
    assert str(err.value) == f"cannot write {target}: no space left on the device"
    assert not target.exists() and list(disk.iterdir()) == []


def test_synth_on_a_full_disk_fails_clearly_without_partial_files(full_disk, inputs) -> None:
    disk, kind = full_disk
    manifest, ckpt = inputs
    out = disk / "ds"
    with pytest.raises(OutputWriteError) as err:
        synthesize([ckpt], manifest, out, SynthOptions(n=40, batch=4), progress=False)
    assert err.value.errno == errno.ENOSPC and str(out) in str(err.value)
    assert "no space left on the device" in str(err.value)
    assert _leftovers(out) == []
    result = CliRunner().invoke(app, ["synth", "--ckpt", str(ckpt), "--data", str(manifest), "--n", "40",
                                      "--out", str(out)])
    assert result.exit_code == 1
    assert f"forensics synth: cannot write {out}" in result.output and "no space left" in result.output
    assert "Traceback" not in result.output
    assert _leftovers(out) == []


def test_training_on_a_full_disk_leaves_no_half_checkpoint(full_disk, inputs) -> None:
    disk, kind = full_disk
    manifest, _ = inputs
    out = disk / "run"
    with pytest.raises(OutputWriteError) as err:
        train("stylegan2", "tiny", manifest, TrainOptions(steps=2, out=out, checkpoint_every=1, progress=False,
                                                          device="cpu"))
    assert err.value.errno == errno.ENOSPC and str(out) in str(err.value)
    assert _leftovers(out) == []
    assert not (out / "latest.json").exists() and not list(out.glob("ckpt-*"))


@pytest.mark.parametrize("command", ["synth", "zoo train", "detect bench"])
def test_a_read_only_output_folder_is_a_clear_error(read_only, inputs, command: str) -> None:
    disk, kind = read_only
    manifest, ckpt = inputs
    out = disk / "out"
    args = {"synth": ["synth", "--ckpt", str(ckpt), "--data", str(manifest), "--n", "4", "--out", str(out)],
            "zoo train": ["zoo", "train", "stylegan2", "--data", str(manifest), "--config", "tiny", "--steps", "1",
                          "--out", str(out), "--device", "cpu"],
            "detect bench": ["detect", "bench", "--data", str(manifest), "--out", str(out), "--detectors", "dct"]}
    if kind == "mock" and command != "synth":
        pytest.skip("root without mount: only the atomic writer's EROFS can be simulated (see the synth case)")
    result = CliRunner().invoke(app, args[command])
    assert result.exit_code == 1, result.output
    reason = "permission denied" if kind == "chmod" else "the file system is read-only"
    assert f"forensics {command}: cannot write {out}" in result.output and reason in result.output
    assert "Traceback" not in result.output
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_a_scan_on_a_full_disk_stops_clearly_without_partial_files(full_disk) -> None:
    """The scan's pictures, journal and reports go through the same atomic writers: exit 2, the path named."""
    disk, kind = full_disk
    out = disk / "scan"
    image = Path(__file__).resolve().parents[1] / "forensics" / "assets" / "starter" / "grace_hopper.jpg"
    result = CliRunner().invoke(app, ["scan", str(image), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "forensics scan: cannot write" in result.output and "no space left" in result.output
    assert "Traceback" not in result.output
    assert _leftovers(out) == []
