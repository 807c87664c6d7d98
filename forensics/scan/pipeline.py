"""The scan from end to end: discover -> for each file: hash, sniff, analyse, hash again, write its pictures,
journal it -> merge -> scan.json, summary.csv, report.html.

Resumable: the journal (`results`) is the commit point of a file; `resume=True` skips every file already
journaled whose size and modification time are unchanged, and redoes the rest (a killed run's file included).
Sharded: under `torchrun` (WORLD_SIZE > 1) rank r analyses files i with i % world == r into its own journal,
rank 0 merges them into one report, as `forensics synth` does with manifests.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.data.media import MediaError, write_bytes_atomic
from forensics.jobs.atomic import output_errors
from forensics.scan.batching import ReadAhead, merge_timer, read_ahead, read_ahead_files
from forensics.scan.context import ScanContext, make_context
from forensics.scan.discover import Candidate, discover
from forensics.scan.integrity import (FileState, file_state, host_record, integrity_errors, library_versions,
                                      model_record, session_record, utc_now)
from forensics.scan.results import Journal, load_results, merge_journals, result_files, shard_path
from forensics.scan.settings import ScanSettings
from forensics.scan.timing import StageTimer

STATE = "scan_state.json"
ASSETS = "files"
REPORT_HTML = "report.html"
SCHEMA_COPY = "scan.schema.json"


class ScanSetupError(ValueError):
    """The scan cannot start (no model, an output folder holding another scan, ...); the message says why."""


@dataclass(frozen=True)
class ScanOutcome:
    out: Path
    files: int
    analysed: int
    failed: int
    skipped: int
    scan_json: Path
    summary_csv: Path
    report_html: Path


def default_bundle_dir() -> Path:
    """Where the shipped default model bundle lives (`forensics/assets/bundle/`)."""
    return Path(__file__).resolve().parents[1] / "assets" / "bundle"


def load_scan_bundle(model: str | os.PathLike | None):
    from forensics.bundle import BundleError, load_bundle

    root = Path(model) if model is not None else default_bundle_dir()
    if model is None and not (root / "bundle.json").is_file():
        raise ScanSetupError(f"no model bundle at {root}: the default bundle has not been shipped in this checkout; "
                             "pass --model DIR (a folder made by `forensics.bundle`)")
    try:
        return load_bundle(root)
    except BundleError as exc:
        raise ScanSetupError(f"cannot use the model bundle: {exc}") from exc


def asset_dir(path: Path) -> str:
    """A file's picture folder, relative to the scan folder: stable across runs, unique per path."""
    return f"{ASSETS}/{hashlib.sha256(os.fsencode(path)).hexdigest()[:16]}"


def _base_entry(c: Candidate) -> dict[str, Any]:
    return {"path": str(c.path), "name": c.path.name, "origin": c.origin, "status": "failed", "kind": "unknown",
            "format": None, "content": None, "sha256": None, "sha256_after": None, "size_bytes": None,
            "integrity": None, "verdict": None, "probability": None, "reasons": [], "errors": [], "notes": [],
            "media": None, "faces": [], "video": None, "thumbnail": None, "evidence": {}}


def analyse_file(c: Candidate, ctx: ScanContext, out: Path, pre: ReadAhead | None = None
                 ) -> tuple[dict[str, Any], FileState | None]:
    """One file's scan.json entry (its pictures written under out/files/...). Never raises for a bad file.
    `pre`: the file already hashed, sniffed and decoded (`forensics.scan.batching`), else done here."""
    entry = _base_entry(c)
    if c.error:
        entry["errors"].append(f"{c.path}: {c.error}")
        return entry, None
    path = c.path
    pre = pre or read_ahead(c, ctx.timer)
    if pre.error is not None or pre.before is None:
        entry["errors"].append(pre.error or f"{path}: cannot read")
        return entry, None
    before = pre.before
    entry.update(sha256=before.sha256, size_bytes=before.size)
    if pre.sniff_error is not None:
        raise pre.sniff_error
    sniffed = pre.sniffed
    assert sniffed is not None
    entry.update(kind=sniffed.kind, format=sniffed.format, content=sniffed.description)
    if sniffed.mismatch:
        entry["notes"].append(sniffed.mismatch)
    analysis = None
    if sniffed.kind == "unknown":
        named = sniffed.ext_kind is not None or c.origin == str(c.path) or Path(c.origin).absolute() == c.path
        entry["status"] = "failed" if named else "skipped"
        message = (f"{path}: file is empty (0 bytes)" if before.size == 0
                   else f"{path}: not a supported image or video (content: {sniffed.description})")
        (entry["errors"] if named else entry["reasons"]).append(message)
    else:
        from forensics.scan.image import analyse_image
        from forensics.scan.video import analyse_video

        try:
            if pre.decode_error is not None:
                raise pre.decode_error
            if sniffed.kind == "image":
                analysis = analyse_image(path, ctx, asset_dir(path), sniffed.format, pre.decoded)
            else:
                analysis = analyse_video(path, ctx, asset_dir(path), sniffed.format)
        except MediaError as exc:
            entry["errors"].append(str(exc))
        except MemoryError:
            entry["errors"].append(f"{path}: out of memory while analysing")
        except Exception as exc:  # a bug or an unforeseen decoder failure must not end a batch: report it
            traceback.print_exc(file=sys.stderr)
            entry["errors"].append(f"{path}: internal error while analysing ({type(exc).__name__}: {exc})")
    try:
        with ctx.timer.stage("hash"):
            after = file_state(path)
        entry["sha256_after"] = after.sha256
        entry["integrity"] = {"before": before.to_dict(), "after": after.to_dict(),
                              "unchanged": before == after}
        entry["errors"].extend(integrity_errors(path, before, after))
    except OSError as exc:
        entry["errors"].append(f"{path}: cannot re-read after the scan to check it is unchanged ({exc})")
    if analysis is not None:
        entry.update(analysis.fields)
        folder = out / asset_dir(path)
        if folder.exists():
            shutil.rmtree(folder)  # pictures of an interrupted earlier attempt
        for name, data in sorted(analysis.assets.items()):
            write_bytes_atomic(folder / name, data)
        if not entry["errors"]:
            entry["status"] = "analysed"
    return entry, before


# ------------------------------------------------------------------------------------------ scan state


def _expected_state(paths: Sequence[str], bundle: Any, settings: ScanSettings) -> dict[str, Any]:
    from forensics.scan.schema import SCHEMA_ID

    return {"inputs": list(paths), "settings": settings.to_dict(), "schema": SCHEMA_ID,
            "model": {"path": str(Path(bundle.root).absolute()), "sha256": bundle.sha256}}


def check_out_dir(out: Path, expected: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    """The earlier state when resuming (None for a fresh scan); refuse to mix two different scans."""
    state_path = out / STATE
    has_scan = state_path.is_file() or bool(result_files(out))
    if not has_scan:
        return None
    if not resume:
        raise ScanSetupError(f"{out} already holds a scan ({STATE} / results*.jsonl); pass --resume to finish or "
                             "re-render it, or choose another --out")
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    if state is None:
        raise ScanSetupError(f"{out}: results without {STATE}; cannot check they come from the same settings")
    diffs = [k for k in ("inputs", "settings", "model", "schema") if state.get(k) != expected[k]]
    if diffs:
        detail = "; ".join(f"{k}: was {json.dumps(state.get(k))}, now {json.dumps(expected[k])}" for k in diffs)
        raise ScanSetupError(f"--resume: {out} holds a scan with other {', '.join(diffs)} ({detail[:600]})")
    return state


def _write_state(out: Path, state: dict[str, Any]) -> None:
    write_bytes_atomic(out / STATE, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())


# ------------------------------------------------------------------------------------------ running


def scan_shard(candidates: Sequence[Candidate], ctx: ScanContext, out: Path, rank: int, world: int,
               session: int, resume: bool, progress: bool = True) -> int:
    """Analyse this rank's files not yet journaled; returns how many were analysed now."""
    mine = [c for i, c in enumerate(candidates) if i % world == rank]
    done = load_results(out) if resume else {}
    journal = Journal(shard_path(out, rank, world))
    todo = []
    for c in mine:
        record = done.get(str(c.path))
        if record is not None and _unchanged(c.path, record.get("state")):
            continue
        todo.append(c)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"scan {rank}/{world}" if world > 1 else "scan", unit="file",
                   dynamic_ncols=True, file=sys.stderr)
    for c, pre in read_ahead_files(todo, ctx):  # hashed, sniffed, decoded and faces found one batch ahead
        if bar is not None:
            bar.set_postfix_str(c.path.name[-40:], refresh=False)
        started, t0 = (utc_now(), time.perf_counter()) if pre is None else (pre.started_utc, pre.t0)
        timer = StageTimer()
        if pre is not None:
            merge_timer(timer, pre.timer)
            pre.timer = timer
        ctx.timer = timer
        entry, state = analyse_file(c, ctx, out, pre)
        journal.append({"key": str(c.path), "file": entry,
                        "state": None if state is None else {"size": state.size, "mtime_ns": state.mtime_ns},
                        "custody": {"path": str(c.path), "started_utc": started, "finished_utc": utc_now(),
                                    "seconds": round(time.perf_counter() - t0, 4), "stages": timer.to_dict(),
                                    "session": session, "rank": rank, "host": host_record()["hostname"]}})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return len(todo)


def _unchanged(path: Path, state: dict[str, Any] | None) -> bool:
    """A journaled file is done when it still has the size and modification time it had when it was read."""
    if state is None:  # it could not be read at all then (a missing file): done, its error stands
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == state["size"] and st.st_mtime_ns == state["mtime_ns"]


def finalize(candidates: Sequence[Candidate], out: Path, state: dict[str, Any], bundle: Any,
             settings: ScanSettings) -> ScanOutcome:
    """Merge the journals and write scan.json, summary.csv, report.html and the schema beside them."""
    from forensics.scan.outputs import scan_document, summarise, write_scan_json, write_summary_csv
    from forensics.scan.report_html import write_report
    from forensics.scan.schema import schema_bytes
    from forensics.scan.verdict import calibrated_jpeg_floor

    keys = [str(c.path) for c in candidates]
    merge_journals(out, keys)
    done = load_results(out)
    files, custody_files = [], []
    for c in candidates:
        record = done.get(str(c.path))
        if record is None:  # never silently dropped: a rank that died leaves its files unaccounted otherwise
            entry = _base_entry(c)
            entry["errors"].append(f"{c.path}: not analysed (no result was recorded; rerun with --resume)")
            files.append(entry)
            continue
        files.append(record["file"])
        custody_files.append(record["custody"])
    state["sessions"][-1]["finished_utc"] = utc_now()
    _write_state(out, state)
    versions = library_versions()
    custody = {
        "tool": {"name": "deepfake-forensics", "command": "forensics scan",
                 "version": versions.get("deepfake-forensics")},
        "versions": versions, "model": model_record(bundle),
        "settings": {**settings.to_dict(), "heavy_jpeg_quality": calibrated_jpeg_floor(bundle.meta)},
        "inputs": state["inputs"], "out": str(out.absolute()),
        "started_utc": state["sessions"][0]["started_utc"], "finished_utc": state["sessions"][-1]["finished_utc"],
        "sessions": state["sessions"], "files": custody_files,
    }
    doc = scan_document(custody, files)
    scan_json = write_scan_json(out, doc)
    summary_csv = write_summary_csv(out, files)
    write_bytes_atomic(out / SCHEMA_COPY, schema_bytes())
    report = write_report(out, doc, bundle)
    s = summarise(files)
    return ScanOutcome(out, s["files"], s["analysed"], s["failed"], s["skipped"], scan_json, summary_csv, report)


def _prepare(paths: Sequence[str], out: Path, model: str | os.PathLike | None, settings: ScanSettings,
             resume: bool) -> tuple[list[Candidate], Any, dict[str, Any], dict[str, Any] | None]:
    bundle = load_scan_bundle(model)
    out.mkdir(parents=True, exist_ok=True)
    expected = _expected_state(paths, bundle, settings)
    previous = check_out_dir(out, expected, resume)
    candidates = discover(list(paths), exclude=out)
    return candidates, bundle, expected, previous


def _start_session(out: Path, expected: dict[str, Any], previous: dict[str, Any] | None, rank: int, world: int,
                   resume: bool) -> dict[str, Any]:
    state = dict(previous) if previous is not None else {**expected, "sessions": []}
    state["sessions"] = list(state.get("sessions", [])) + [session_record(rank, world, resume and previous is not None)]
    _write_state(out, state)
    return state


@contextlib.contextmanager
def _writer_lock(out: Path) -> Iterator[None]:
    """One scan per output folder at a time: a second writer is refused with the holder's pid (forensics.jobs)."""
    from forensics.jobs.atomic import remove_stale_temp_files
    from forensics.jobs.lock import OutputLockedError, acquire_output_lock

    try:
        lock = acquire_output_lock(out, "forensics scan")
    except OutputLockedError as exc:
        raise ScanSetupError(str(exc)) from None
    try:
        remove_stale_temp_files(out)  # a killed writer's half-written temp files (never under a final name)
        yield
    finally:
        lock.release()


def run_scan(paths: Sequence[str], out: str | os.PathLike, model: str | os.PathLike | None = None,
             settings: ScanSettings = ScanSettings(), resume: bool = False, progress: bool = True,
             log: Callable[[str], None] = print) -> ScanOutcome | None:
    """Scan `paths` into `out`. Under torchrun, every rank calls this; rank 0 returns the outcome, others None."""
    out = Path(out)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        with _writer_lock(out), output_errors(out):
            candidates, bundle, expected, previous = _prepare(paths, out, model, settings, resume)
            state = _start_session(out, expected, previous, 0, 1, resume)
            ctx = make_context(bundle, settings)
            n = scan_shard(candidates, ctx, out, 0, 1, len(state["sessions"]) - 1, resume, progress)
            log(f"analysed {n} file(s) now, {len(candidates) - n} already done" if resume
                else f"analysed {n} file(s)")
            return finalize(candidates, out, state, bundle, settings)
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")  # a barrier is all the scan needs
    try:
        with contextlib.ExitStack() as held:
            if rank == 0:  # one job: rank 0 holds the folder for every rank
                held.enter_context(_writer_lock(out))
            candidates, bundle, expected, previous = _prepare(paths, out, model, settings, resume)
            dist.barrier()  # every rank checked the folder before rank 0 writes to it
            state = _start_session(out, expected, previous, 0, world, resume) if rank == 0 else {}
            dist.barrier()
            session = len(json.loads((out / STATE).read_text())["sessions"]) - 1
            ctx = make_context(bundle, settings)
            scan_shard(candidates, ctx, out, rank, world, session, resume, progress and rank == 0)
            dist.barrier()
            outcome = finalize(candidates, out, state, bundle, settings) if rank == 0 else None
            dist.barrier()
            return outcome
    finally:
        dist.destroy_process_group()
