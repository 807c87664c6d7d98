"""A scan killed with SIGKILL and resumed gives the same scan.json as an uninterrupted one (custody times
aside), with one journal line per file; a two-rank torchrun scan gives it too."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from tests.test_scan_helpers import REPO, STARTER, build_toy_bundle
from tests.test_zoo_helpers import subprocess_env, torchrun_cmd

pytestmark = pytest.mark.slow


def _scan_cmd(src: Path, out: Path, bundle: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "forensics", "scan", str(src), "--out", str(out), "--model", str(bundle),
            "--every", "5", "--max-frames", "15", "--no-progress", *extra]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A toy bundle, a folder of 11 media files (stills, a recompressed copy, a clip) and an uninterrupted scan."""
    root = tmp_path_factory.mktemp("resume")
    bundle = build_toy_bundle(root / "bundle")
    src = root / "in"
    src.mkdir()
    for name in ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg", "single_face.jpg",
                 "grace_hopper.jpg", "multi_face.jpg", "astronaut.png", "carphone_pristine.mp4"):
        shutil.copy(STARTER / name, src / name)
    img = cv2.imread(str(STARTER / "grace_hopper.jpg"))
    cv2.imwrite(str(src / "hopper_q20.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 20])  # heavily compressed
    cv2.imwrite(str(src / "hopper_flipped.png"), img[:, ::-1])
    reference = root / "reference"
    proc = subprocess.run(_scan_cmd(src, reference, bundle), cwd=REPO, env=subprocess_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, bundle, src, reference


def _doc(out: Path) -> dict:
    return json.loads((out / "scan.json").read_text())


def _same_scan(a: Path, b: Path) -> None:
    da, db = _doc(a), _doc(b)
    assert da["files"] == db["files"]
    assert da["summary"] == db["summary"]
    for key in ("model", "settings", "inputs"):
        assert da["custody"][key] == db["custody"][key]
    crops_a = {p.relative_to(a): p.read_bytes() for p in (a / "files").rglob("*.png") if "timeline" not in p.name}
    crops_b = {p.relative_to(b): p.read_bytes() for p in (b / "files").rglob("*.png") if "timeline" not in p.name}
    assert crops_a == crops_b  # the exact pixels the detectors scored


def test_reference_scan_covers_every_file(world) -> None:
    _, _, src, reference = world
    doc = _doc(reference)
    assert doc["summary"]["files"] == 11 and doc["summary"]["analysed"] == 11
    q20 = next(f for f in doc["files"] if f["name"] == "hopper_q20.jpg")
    assert q20["media"]["jpeg"]["quality"] == 20
    assert all(u["verdict"] == "inconclusive" and any(r.startswith("heavily compressed") for r in u["reasons"])
               for u in q20["faces"]) and q20["faces"]


def test_killed_scan_resumes_to_the_same_result_without_duplicates(world) -> None:
    root, bundle, src, reference = world
    out = root / "killed"
    journal = out / "results.rank000-of-001.jsonl"
    proc = subprocess.Popen(_scan_cmd(src, out, bundle), cwd=REPO, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.is_file() and journal.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done_at_kill = journal.read_bytes().count(b"\n")
    assert 3 <= done_at_kill < 11, "the kill must land mid-scan"
    assert not (out / "scan.json").exists()
    state = json.loads((out / "scan_state.json").read_text())
    assert state["sessions"][0]["finished_utc"] is None  # the killed session stays on record as interrupted

    resumed = subprocess.run(_scan_cmd(src, out, bundle, "--resume"), cwd=REPO, env=subprocess_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"analysed {11 - done_at_kill} file(s) now" in resumed.stdout
    _same_scan(out, reference)
    keys = [json.loads(line)["key"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 11
    sessions = _doc(out)["custody"]["sessions"]
    assert len(sessions) == 2 and sessions[1]["resumed"] and sessions[0]["finished_utc"] is None


def test_torchrun_shards_the_files_and_merges_one_report(world) -> None:
    root, bundle, src, reference = world
    out = root / "sharded"
    cmd = torchrun_cmd(2, "-m", "forensics", "scan", str(src), "--out", str(out), "--model", str(bundle),
                       "--every", "5", "--max-frames", "15", "--no-progress")
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(out.glob("results.rank*"))  # merged and removed
    _same_scan(out, reference)
    ranks = {c["rank"] for c in _doc(out)["custody"]["files"]}
    assert ranks == {0, 1}
    assert _doc(out)["custody"]["sessions"][0]["world_size"] == 2
