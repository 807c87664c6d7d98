"""Run a bad-input corpus through every command that reads media, and count what each did with every file.

Commands: `forensics scan` (the library call `run_scan` in-process, then the CLI in a subprocess over the same
folder with --resume for its exit status and its own rendering), `forensics detect predict` (the shipped
bundle's spectral detector), `forensics data import --layout folder` and `forensics data describe` on the
manifest it wrote. Per command: files it is accountable for, scored (or imported), reported with a reason,
crashes (a traceback, an uncaught exception, an exit status other than 0/1/2, a signal, a hang), files
unaccounted for (neither scored nor reported), reasons that do not name their file, and files that must fail
but were scored. The targets are 0 crashes, 0 unaccounted, 0 reasons without the file's name.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forensics.reliability.fuzz import MUST_FAIL, NOT_A_FILE, FuzzCase, corpus_notes

EXAMPLES_KEPT = 5
SCAN_COMMANDS = ("scan (library)", "scan (CLI --resume)")


@dataclass
class CommandTally:
    """What one command did with the corpus; `examples` keeps a few file names per problem."""

    command: str
    files: int = 0
    scored: int = 0
    reported: int = 0
    crashes: int = 0
    unaccounted: int = 0
    reasons_without_name: int = 0
    must_fail_scored: int = 0
    exit_code: int | None = None
    seconds: float = 0.0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, problem: str, text: str) -> None:
        kept = self.examples.setdefault(problem, [])
        if len(kept) < EXAMPLES_KEPT:
            kept.append(text[:400])

    def account(self, case: FuzzCase, scored: bool, reasons: Sequence[str], must_not_score: bool,
                why_unaccounted: str = "") -> None:
        """One corpus file: scored (and whether it was allowed to be), or reported with reasons that must name
        it, or, with neither, unaccounted for."""
        name = f"{case.mutation}: {shown(case.path.name)}"
        if scored:
            self.scored += 1
            if must_not_score:
                self.must_fail_scored += 1
                self.note("must_fail_scored", name)
            return
        if not reasons:
            self.unaccounted += 1
            self.note("unaccounted", name + why_unaccounted)
            return
        self.reported += 1
        unnamed = [r for r in reasons if not names_file(r, case)]
        if unnamed:
            self.reasons_without_name += 1
            self.note("reason_without_name", unnamed[0])

    @property
    def ok(self) -> bool:
        return self.crashes == 0 and self.unaccounted == 0 and self.reasons_without_name == 0


@dataclass
class FuzzTally:
    corpus_entries: int
    corpus_files: int
    must_fail: int
    running_as_root: bool
    mode_000_readable: bool
    commands: list[CommandTally]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.commands)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def shown(text: str) -> str:
    """A name as a command prints it when it is not valid UTF-8 (undecodable bytes as backslash escapes)."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def names_file(reason: str, case: FuzzCase) -> bool:
    name = case.path.name
    return name in reason or shown(name) in reason


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _forensics(args: Sequence[str], timeout: float) -> tuple[int | None, str, str, float]:
    """Run `python -m forensics ARGS`: (exit status or None on a hang, stdout, stderr, seconds)."""
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}
    try:
        done = subprocess.run([sys.executable, "-m", "forensics", *args], capture_output=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return None, _decode(exc.stdout or b""), _decode(exc.stderr or b""), time.perf_counter() - t0
    return done.returncode, _decode(done.stdout), _decode(done.stderr), time.perf_counter() - t0


def _process_problems(tally: CommandTally, code: int | None, stderr: str, ok_codes: Sequence[int]) -> None:
    """A hang, a signal, an unexpected exit status or a traceback is a crash of the whole command."""
    tally.exit_code = code
    if code is None:
        tally.crashes += 1
        tally.note("crash", "timed out (hang)")
    elif code not in ok_codes:
        tally.crashes += 1
        tally.note("crash", f"exit status {code}: {stderr[-300:]}")
    elif "Traceback" in stderr:
        tally.crashes += 1
        tally.note("crash", "traceback: " + stderr[stderr.index("Traceback"):][:300])


# ------------------------------------------------------------------------------------------ scan


def _scan_files(cases: Sequence[FuzzCase]) -> list[FuzzCase]:
    """What a folder scan must account for: every non-folder entry found by walking the corpus."""
    return [c for c in cases if c.expect != NOT_A_FILE]


def tally_scan_json(command: str, scan_json: Path, cases: Sequence[FuzzCase]) -> CommandTally:
    tally = CommandTally(command)
    files = _scan_files(cases)
    tally.files = len(files)
    doc = json.loads(scan_json.read_text())
    by_path = {entry["path"]: entry for entry in doc["files"]}
    for case in files:
        entry = by_path.get(str(case.path))
        if entry is None:
            tally.account(case, False, [], case.expect == MUST_FAIL)
            continue
        internal = [e for e in entry["errors"] if "internal error while analysing" in e]
        if internal:
            tally.crashes += 1
            tally.note("crash", internal[0])
        tally.account(case, entry["status"] == "analysed", entry["errors"] + entry["reasons"],
                      case.expect == MUST_FAIL, f" ({entry['status']}, no reason)")
    return tally


def run_scan_library(corpus_dir: Path, out: Path, cases: Sequence[FuzzCase], max_frames: int) -> CommandTally:
    from forensics.scan.pipeline import run_scan
    from forensics.scan.settings import ScanSettings

    t0 = time.perf_counter()
    try:
        run_scan([str(corpus_dir)], out, settings=ScanSettings(max_frames=max_frames), progress=False,
                 log=lambda line: None)
    except Exception as exc:  # the whole scan ended: every file is unaccounted
        tally = CommandTally(SCAN_COMMANDS[0], files=len(_scan_files(cases)), crashes=1)
        tally.unaccounted = tally.files
        tally.note("crash", "".join(traceback.format_exception_only(type(exc), exc)).strip())
        tally.seconds = round(time.perf_counter() - t0, 2)
        return tally
    tally = tally_scan_json(SCAN_COMMANDS[0], out / "scan.json", cases)
    tally.exit_code = 0
    tally.seconds = round(time.perf_counter() - t0, 2)
    return tally


def run_scan_cli(corpus_dir: Path, out: Path, cases: Sequence[FuzzCase], max_frames: int,
                 timeout: float) -> CommandTally:
    """The CLI over the library run's folder with --resume: every file's state is re-checked, the journal
    re-merged and the outputs re-rendered, and the exit status says whether any file failed."""
    code, _, stderr, seconds = _forensics(["scan", str(corpus_dir), "--out", str(out), "--max-frames",
                                           str(max_frames), "--resume", "--no-progress"], timeout)
    scan_json = out / "scan.json"
    if code in (0, 1) and scan_json.is_file():
        tally = tally_scan_json(SCAN_COMMANDS[1], scan_json, cases)
    else:
        tally = CommandTally(SCAN_COMMANDS[1], files=len(_scan_files(cases)))
        tally.unaccounted = tally.files
    _process_problems(tally, code, stderr, (0, 1, 2))
    tally.seconds = round(seconds, 2)
    return tally


# ------------------------------------------------------------------------------------------ detect predict


def bundle_detector(name: str = "spectral") -> Path:
    return Path(__file__).resolve().parents[1] / "assets" / "bundle" / "detectors" / name


def run_predict(cases: Sequence[FuzzCase], detector: Path, timeout: float) -> CommandTally:
    """`detect predict DETECTOR FILE...` with every corpus entry named (folders too: each must be refused)."""
    tally = CommandTally("detect predict", files=len(cases))
    code, stdout, stderr, seconds = _forensics(["detect", "predict", str(detector),
                                                *[str(c.path) for c in cases]], timeout)
    _process_problems(tally, code, stderr, (0,))
    scored: dict[str, str] = {}
    errors: dict[str, str] = {}
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            scored[parts[0]] = line
    for line in stderr.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == "error":
            errors[parts[0]] = parts[2]
    for case in cases:
        keys = (str(case.path), shown(str(case.path)))
        reason = next((errors[k] for k in keys if k in errors), None)
        tally.account(case, any(k in scored for k in keys), [reason] if reason is not None else [],
                      case.expect in (MUST_FAIL, NOT_A_FILE))
    tally.seconds = round(seconds, 2)
    return tally


# ------------------------------------------------------------------------------------------ data import / describe


def _import_files(corpus_dir: Path, cases: Sequence[FuzzCase]) -> list[FuzzCase]:
    """Files a folder import walks past or reads: every non-folder entry (hidden and non-media ones included:
    they must be listed as ignored, not dropped without a word)."""
    return [c for c in cases if c.expect != NOT_A_FILE]


def run_import(corpus_dir: Path, manifest: Path, cases: Sequence[FuzzCase], timeout: float) -> CommandTally:
    """`data import CORPUS --layout folder --out MANIFEST`; imported rows are then decoded: a row that no
    reader can decode is counted as `must_fail_scored` (the import let a broken file into a dataset)."""
    from forensics.data.manifest import dataset_root, read_manifest
    from forensics.data.media import MediaError, probe_video, read_image

    files = _import_files(corpus_dir, cases)
    tally = CommandTally("data import --layout folder", files=len(files))
    code, _, stderr, seconds = _forensics(["data", "import", str(corpus_dir), "--layout", "folder", "--out",
                                           str(manifest)], timeout)
    _process_problems(tally, code, stderr, (0, 1, 2))
    rows: set[str] = set()
    if code == 0 and manifest.is_file():
        df = read_manifest(manifest)
        root = dataset_root(manifest)
        for rel, media in zip(df["path"], df["media"]):
            path = root / rel
            rows.add(str(path))
            try:
                probe_video(path) if media == "video" else read_image(path)
            except (MediaError, OSError) as exc:
                tally.must_fail_scored += 1
                tally.note("imported_but_unreadable", str(exc))
    said: dict[str, str] = {}
    for line in stderr.splitlines():
        for verb in ("  skipped ", "  ignored "):
            if line.startswith(verb):
                path, _, reason = line[len(verb):].partition(": ")
                said[path] = line
    for case in files:
        keys = (str(case.path), shown(str(case.path)))
        line = next((said[k] for k in keys if k in said), None)
        tally.account(case, str(case.path) in rows, [line] if line is not None else [], case.expect == MUST_FAIL)
    tally.seconds = round(seconds, 2)
    return tally


def run_describe(manifest: Path, imported: int, timeout: float) -> CommandTally:
    """`data describe MANIFEST`: must run cleanly and count exactly the rows the import wrote."""
    tally = CommandTally("data describe", files=imported)
    code, stdout, stderr, seconds = _forensics(["data", "describe", str(manifest)], timeout)
    _process_problems(tally, code, stderr, (0,))
    first = stdout.split()
    rows = int(first[1]) if len(first) > 1 and first[0] == "rows:" and first[1].isdigit() else None
    if rows == imported:
        tally.scored = imported
    else:
        tally.unaccounted = imported
        tally.note("unaccounted", f"describe printed rows={rows}, the import wrote {imported}")
    tally.seconds = round(seconds, 2)
    return tally


# ------------------------------------------------------------------------------------------ all of it


def run_fuzz(corpus_dir: str | os.PathLike, cases: Sequence[FuzzCase], work_dir: str | os.PathLike,
             max_frames: int = 2, timeout: float = 600.0, cli_scan: bool = True) -> FuzzTally:
    """Run the corpus through scan (library + CLI), detect predict, data import and data describe.

    Outputs go under `work_dir` except the import's manifest, which must sit in or above the dataset folder:
    it is written beside the corpus folder as `<corpus name>.manifest.parquet`."""
    t0 = time.perf_counter()
    corpus_dir = Path(corpus_dir).absolute()
    work = Path(work_dir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    notes = corpus_notes(cases)
    commands = [run_scan_library(corpus_dir, work / "scan", cases, max_frames)]
    if cli_scan:
        commands.append(run_scan_cli(corpus_dir, work / "scan", cases, max_frames, timeout))
    commands.append(run_predict(cases, bundle_detector(), timeout))
    manifest = corpus_dir.parent / f"{corpus_dir.name}.manifest.parquet"
    imported = run_import(corpus_dir, manifest, cases, timeout)
    commands.append(imported)
    commands.append(run_describe(manifest, imported.scored, timeout))
    return FuzzTally(corpus_entries=len(cases), corpus_files=sum(c.expect != NOT_A_FILE for c in cases),
                     must_fail=sum(c.expect == MUST_FAIL for c in cases), running_as_root=notes.running_as_root,
                     mode_000_readable=notes.mode_000_readable, commands=commands,
                     seconds=round(time.perf_counter() - t0, 2))
