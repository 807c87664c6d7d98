"""Scan workers: separate processes that take queued scans from the case database, one at a time each, and run
`forensics.scan.pipeline.run_scan` on them with resume on. A scan's files are its journal's unit of work, so a
worker killed mid-scan (or a server killed with its workers) loses at most the file it was on: the next worker
that claims the scan redoes that file only. A worker dies with the server that started it (PR_SET_PDEATHSIG and
a parent watch), so no orphan keeps writing after a kill -9.

`python -m forensics.serve.worker --cases DIR --parent PID [--model BUNDLE]` is what `WorkerPool` starts.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from forensics.serve.config import ServeConfig
from forensics.serve.db import CaseDB
from forensics.serve.progress import scan_paths

POLL_S = 0.3
LOCK_WAIT_S = 60.0


def _die_with_parent(parent: int) -> None:
    try:  # Linux: the kernel sends SIGKILL when the parent dies
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # elsewhere (and as a second guard): poll the parent
        while True:
            if os.getppid() != parent:
                os._exit(3)
            time.sleep(0.2)

    if os.getppid() != parent:
        os._exit(3)
    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def run_one(db: CaseDB, cfg_cases: Path, scan: dict[str, Any], model: str | None) -> None:
    """Run (or resume) one claimed scan and record its results; a failure is recorded, never raised."""
    from forensics.jobs.atomic import OutputWriteError
    from forensics.scan.pipeline import ScanSetupError, run_scan
    from forensics.scan.settings import ScanSettings
    from forensics.serve.store import EvidenceStore

    sid, case_id = int(scan["id"]), int(scan["case_id"])
    actor = f"worker pid {os.getpid()}"
    scans_dir = cfg_cases / "scans"
    folder, out = scan_paths(scans_dir, sid)
    inputs = db.scan_inputs(sid)
    store = EvidenceStore(cfg_cases / "evidence", 1)
    try:
        for i in inputs:
            store.link_into(i["sha256"], folder / i["input_name"])
        paths = [str((folder / i["input_name"]).absolute()) for i in inputs]
        settings = ScanSettings(**scan["settings"])
        note = f"scan {sid}" + (f", resumed (attempt {scan['attempts']})" if scan["attempts"] > 1 else "")
        db.log_files(case_id, [i["file_id"] for i in inputs], "read for analysis", actor, note)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                run_scan(paths, out, scan["model"] or model, settings, resume=True, progress=False,
                         log=lambda msg: print(f"[scan {sid}] {msg}", file=sys.stderr, flush=True))
                break
            except ScanSetupError as exc:  # a dying worker may still hold the folder for a moment
                if "in use by another job" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        doc = json.loads((out / "scan.json").read_text())
        by_name = {Path(f["path"]).name: f for f in doc["files"]}
        entries = [(int(i["file_id"]), by_name[i["input_name"]]) for i in inputs if i["input_name"] in by_name]
        missing = [i["input_name"] for i in inputs if i["input_name"] not in by_name]
        if missing:
            raise RuntimeError(f"scan.json lacks {missing}")
        db.finish_scan(sid, entries, (doc["custody"].get("model") or {}).get("sha256"), actor)
    except (ScanSetupError, OutputWriteError, ValueError, OSError, RuntimeError, KeyError) as exc:
        db.fail_scan(sid, f"{type(exc).__name__}: {exc}", actor)


def work(cases: Path, model: str | None, once: bool = False) -> None:
    db = CaseDB(cases / "cases.sqlite3")
    while True:
        scan = db.claim_scan(os.getpid())
        if scan is None:
            if once:
                return
            time.sleep(POLL_S)
            continue
        run_one(db, cases, scan, model)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=Path, required=True)
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--model", default=None)
    args = p.parse_args(argv)
    _die_with_parent(args.parent)
    work(args.cases, args.model)


class WorkerPool:
    """The server's scan workers: started after stale running scans are requeued, restarted if one dies."""

    def __init__(self, config: ServeConfig, db: CaseDB) -> None:
        self.config = config
        self.db = db
        self.procs: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "forensics.serve.worker", "--cases", str(self.config.cases.absolute()),
               "--parent", str(os.getpid())]
        if self.config.model is not None:
            cmd += ["--model", str(Path(self.config.model).absolute())]
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)

    def start(self) -> list[int]:
        requeued = self.db.requeue_running("server start")
        if self.config.workers:
            self.procs = [self._spawn() for _ in range(self.config.workers)]
            self._monitor = threading.Thread(target=self._watch, daemon=True, name="worker-monitor")
            self._monitor.start()
        return requeued

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stop.is_set():
                    self.db.requeue_scan_of(proc.pid, f"server (worker exited with {proc.returncode})")
                    self.procs[i] = self._spawn()

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


if __name__ == "__main__":
    main()
