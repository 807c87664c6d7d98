"""kill -9 at seeded random points, resume, compare byte for byte with an uninterrupted run: synth, zoo train,
detect bench and scan (forensics.reliability.kill). The harness itself is checked first on two toy jobs: one
that resumes correctly and one that duplicates rows, which it must catch."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from forensics.reliability.kill import (
    KillJob,
    KillPlan,
    bench_job,
    kill_and_resume,
    make_real_manifest,
    make_tiny_checkpoint,
    make_toy_bundle,
    scan_job,
    synth_job,
    train_job,
)
from tests.test_scan_helpers import STARTER

SEEDS = (0, 1, 2)

# A toy job: 40 numbered rows, one line each, 5 ms apart; a re-run continues. The careless variant restarts
# from row 0 and appends, so a kill duplicates rows; the careful one counts complete lines first.
TOY = """
import os, sys, time
out, careful = sys.argv[1], sys.argv[2] == "careful"
os.makedirs(out, exist_ok=True)
path = os.path.join(out, "rows.txt")
done = 0
if careful and os.path.exists(path):
    lines = open(path).read().split("\\n")
    done = len(lines) - 1  # complete lines only; a torn last line is rewritten
    open(path, "w").write("".join(l + "\\n" for l in lines[:done]))
with open(path, "a") as fh:
    for i in range(done, 40):
        fh.write(f"row {i}\\n")
        fh.flush()
        time.sleep(0.005)
"""


def _toy_job(root: Path, careful: bool) -> KillJob:
    def cmd(out: Path) -> list[str]:
        return [sys.executable, "-c", TOY, str(out), "careful" if careful else "careless"]

    def keys(out: Path) -> list[object]:
        p = out / "rows.txt"
        return p.read_text().splitlines() if p.exists() else []

    out, ref = root / "run", root / "reference"
    return KillJob("toy", cmd(out), cmd(out), cmd(ref), out, ref, keys, marker=lambda o: (o / "rows.txt").exists())


@pytest.mark.parametrize("careful", [True, False])
def test_the_harness_passes_a_resumable_job_and_catches_duplicated_rows(tmp_path: Path, careful: bool) -> None:
    job = _toy_job(tmp_path, careful)
    ref = job.run_reference()
    # kill at 40% and 30% of the rows' time: both land mid-run whatever the machine's speed
    result = kill_and_resume(job, KillPlan(duration_s=ref.seconds - ref.marker_s, kills=2, lo=0.3, hi=0.4), seed=0)
    assert result.rows_expected == 40 and result.kills >= 1
    if careful:
        assert result.ok and result.identical and result.duplicated_rows == 0 and result.lost_rows == 0
    else:
        assert not result.ok and result.duplicated_rows > 0 and result.differing == ["rows.txt"]


# ------------------------------------------------------------------------------------------- the real commands


def _check(result) -> None:
    detail = (f"{result.name} seed {result.seed}: differing {result.differing}, missing {result.missing}, "
              f"extra {result.extra}, lost {result.lost_rows}, duplicated {result.duplicated_rows}, runs "
              f"{result.runs}\n{result.stderr_tail}")
    assert result.ok, detail
    assert result.kills >= 1, f"no kill landed mid-run: {result.runs}"
    assert result.rows_found == result.rows_expected > 0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("kill")
    return root, make_real_manifest(root / "real", n=40, size=32), make_tiny_checkpoint(root / "ck")


def _reference(job: KillJob, cache: dict):
    """One uninterrupted run per command (kept for the module)."""
    if job.name not in cache:
        cache[job.name] = job.run_reference()
    return cache[job.name]


_REFS: dict = {}


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_synth_resumes_to_the_same_bytes(inputs, seed: int) -> None:
    root, manifest, ckpt = inputs
    job = synth_job(root / "synth", manifest, ckpt, f"seed{seed}")
    ref = _reference(job, _REFS)
    _check(kill_and_resume(job, job.plan(ref, kills=1, hi=0.6), seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_zoo_train_resumes_to_the_same_bytes(inputs, seed: int) -> None:
    root, manifest, _ = inputs
    job = train_job(root / "train", manifest, f"seed{seed}")
    ref = _reference(job, _REFS)
    _check(kill_and_resume(job, job.plan(ref, kills=1, hi=0.6), seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_detect_bench_resumes_to_the_same_bytes(inputs, seed: int) -> None:
    root, manifest, ckpt = inputs
    data = synth_job(root / "synth", manifest, ckpt, "unused")  # the synth reference is the bench's dataset
    _reference(data, _REFS)
    job = bench_job(root / "bench", data.reference / "manifest.parquet", f"seed{seed}")
    ref = _reference(job, _REFS)
    _check(kill_and_resume(job, job.plan(ref, kills=1, hi=0.6), seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_scan_resumes_to_the_same_bytes(inputs, seed: int) -> None:
    root, _, _ = inputs
    src, bundle = root / "scan_in", root / "bundle"
    if not src.exists():
        src.mkdir()
        for name in ("0-f1-su-ph.jpg", "single_face.jpg", "grace_hopper.jpg", "astronaut.png", "carphone_pristine.mp4"):
            shutil.copy(STARTER / name, src / name)
        make_toy_bundle(bundle)
    job = scan_job(root / "scan", src, bundle, f"seed{seed}")
    ref = _reference(job, _REFS)
    _check(kill_and_resume(job, job.plan(ref, kills=1, hi=0.6), seed))
