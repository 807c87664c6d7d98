"""Kill -9 harness: run a job, SIGKILL it at seeded random points, resume it until it finishes, then compare
its output folder byte for byte with an uninterrupted run's.

How it compares: every file under both folders (relative path + sha256). A file that legitimately records
times (a wall-clock field, a custody timestamp) is compared after a `normalize` function removes exactly those
fields, and the report lists which files were normalized. Result rows (manifest rows, scores, journal lines)
are counted by a `row_keys` function: a row missing from the resumed output is *lost*, a key present twice
is *duplicated*.

The job runs in its own process group (start_new_session) so the kill reaches its children too (torchrun
workers, data loaders).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path

Normalizer = Callable[[bytes], bytes]


@dataclass(frozen=True)
class RunRecord:
    """One process started by the harness."""

    resumed: bool
    kill_at_s: float | None  # planned kill delay (after the marker, if any); None = let it finish
    killed: bool  # the SIGKILL landed while it was still running
    returncode: int
    seconds: float
    marker_s: float | None = None  # when the job's marker first held (it had started real work)


@dataclass
class KillResult:
    """What one seeded kill/resume sequence found."""

    name: str
    seed: int
    runs: list[RunRecord]
    files_compared: int
    identical: bool
    differing: list[str]  # relative paths whose (normalized) bytes differ
    missing: list[str]  # in the reference, not in the resumed output
    extra: list[str]  # in the resumed output, not in the reference (temp files, a stale lock...)
    normalized: list[str]  # files compared after removing their time fields
    rows_expected: int
    rows_found: int
    lost_rows: int
    duplicated_rows: int
    stderr_tail: str = ""

    @property
    def kills(self) -> int:
        return sum(r.killed for r in self.runs)

    @property
    def resumes(self) -> int:
        return sum(r.resumed for r in self.runs)

    @property
    def ok(self) -> bool:
        return self.identical and self.lost_rows == 0 and self.duplicated_rows == 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(kills=self.kills, resumes=self.resumes, ok=self.ok)
        return d


# ------------------------------------------------------------------------------------------------ comparing


def folder_digest(folder: Path, normalize: Mapping[str, Normalizer] | None = None) -> tuple[dict[str, str], list[str]]:
    """{relative posix path: sha256 of its (normalized) bytes} for every file under `folder`, and the list of
    files a normalizer applied to. `normalize` maps fnmatch patterns (on the relative path) to functions."""
    digests: dict[str, str] = {}
    touched: list[str] = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        data = p.read_bytes()
        for pattern, fn in (normalize or {}).items():
            if fnmatch(rel, pattern):
                data = fn(data)
                touched.append(rel)
                break
        digests[rel] = hashlib.sha256(data).hexdigest()
    return digests, touched


def _drop_keys(obj: object, keys: frozenset[str]) -> object:
    if isinstance(obj, dict):
        return {k: _drop_keys(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [_drop_keys(v, keys) for v in obj]
    return obj


def json_without(*keys: str) -> Normalizer:
    """A normalizer for a JSON file: the document minus these keys at any depth (canonical re-dump)."""
    drop = frozenset(keys)

    def fn(data: bytes) -> bytes:
        return json.dumps(_drop_keys(json.loads(data), drop), sort_keys=True).encode()

    return fn


def jsonl_without(*keys: str) -> Normalizer:
    """Like `json_without`, line by line (a JSON Lines log)."""
    one = json_without(*keys)

    def fn(data: bytes) -> bytes:
        return b"\n".join(one(line) for line in data.splitlines() if line.strip())

    return fn


def duplicates(keys: Sequence[object]) -> int:
    """Rows beyond the first per key."""
    return sum(n - 1 for n in Counter(keys).values() if n > 1)


# ------------------------------------------------------------------------------------------------ running


def run_once(cmd: Sequence[str], cwd: Path, env: Mapping[str, str] | None, timeout_s: float,
             kill_at_s: float | None = None, marker: Callable[[], bool] | None = None) -> tuple[RunRecord, str]:
    """Start `cmd` in its own process group; SIGKILL the group `kill_at_s` seconds after start (or after `marker()`
    first holds, when given). Returns the record and the tail of stderr."""
    t0 = time.monotonic()
    marker_s = None
    with open(os.devnull, "wb") as devnull, _TempLog() as err:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env) if env is not None else None, stdout=devnull,
                                stderr=err.fh, start_new_session=True)
        killed = False
        try:
            start = t0
            if marker is not None:  # wait for the job to reach a known point (then the seeded delay)
                while proc.poll() is None and not marker() and time.monotonic() - t0 < timeout_s:
                    time.sleep(0.01)
                start = time.monotonic()
                marker_s = round(start - t0, 3) if marker() else None
            if kill_at_s is not None:
                while proc.poll() is None and time.monotonic() - start < kill_at_s:
                    time.sleep(0.005)
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
            proc.wait(timeout=max(1.0, timeout_s - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise TimeoutError(f"{' '.join(cmd)}: still running after {timeout_s:.0f} s") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        tail = err.tail()
    return RunRecord(resumed=False, kill_at_s=kill_at_s, killed=killed, returncode=proc.returncode,
                     seconds=round(time.monotonic() - t0, 3), marker_s=marker_s), tail


class _TempLog:
    """stderr to a temp file (a pipe nobody reads could fill up and stall the job)."""

    def __enter__(self) -> "_TempLog":
        import tempfile

        self.fh = tempfile.TemporaryFile()
        return self

    def tail(self, n: int = 3000) -> str:
        self.fh.seek(0)
        return self.fh.read().decode(errors="replace")[-n:]

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


def timed_run(cmd: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout_s: float = 600,
              marker: Callable[[], bool] | None = None) -> RunRecord:
    """Run `cmd` to completion (the uninterrupted reference); its record says how long it took, and when
    `marker` first held."""
    rec, tail = run_once(cmd, cwd, env, timeout_s, marker=marker)
    if rec.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {rec.returncode}:\n{tail}")
    return rec


@dataclass(frozen=True)
class KillPlan:
    """Where to kill: `kills` times, each at a seeded uniform point in [lo, hi] x `duration_s`, counted from the
    job's marker (its first output: interpreter start-up and imports are not the interesting part) or, for a
    job without one, from the start."""

    duration_s: float  # the uninterrupted run's wall time (from its marker)
    kills: int = 2
    lo: float = 0.0
    hi: float = 1.0

    def delays(self, seed: int) -> list[float]:
        rng = random.Random(seed)
        return [round(rng.uniform(self.lo, self.hi) * self.duration_s, 3) for _ in range(self.kills)]


@dataclass
class KillJob:
    """A job the harness can kill and resume: how to start it, resume it, and read its result rows."""

    name: str
    cmd: list[str]  # the first run into `out`
    resume_cmd: list[str]  # every later run into `out`
    reference_cmd: list[str]  # the same job, uninterrupted, into `reference`
    out: Path
    reference: Path
    row_keys: Callable[[Path], list[object]]
    normalize: dict[str, Normalizer] = field(default_factory=dict)
    cwd: Path = Path(".")
    env: dict[str, str] | None = None
    timeout_s: float = 600
    marker: Callable[[Path], bool] | None = None  # true once the job in this folder has started real work

    def marker_in(self, folder: Path) -> Callable[[], bool] | None:
        marker = self.marker
        return None if marker is None else (lambda: marker(folder))

    def run_reference(self) -> RunRecord:
        """The uninterrupted run into `reference` (kept if already there); its time after the marker sizes
        the kill plan."""
        return timed_run(self.reference_cmd, self.cwd, self.env, self.timeout_s, self.marker_in(self.reference))

    def plan(self, reference: RunRecord, kills: int = 2, hi: float = 0.8) -> KillPlan:
        """Kill points over the first `hi` of the reference's working time (a later one would often miss)."""
        return KillPlan(duration_s=max(0.05, reference.seconds - (reference.marker_s or 0.0)), kills=kills, hi=hi)


def kill_and_resume(job: KillJob, plan: KillPlan, seed: int, max_finish_runs: int = 3) -> KillResult:
    """Start `job.cmd`, SIGKILL it at each planned point (the first kill hits the fresh run, later ones hit
    resumes), then resume until a run exits 0; compare `job.out` with `job.reference`."""
    runs: list[RunRecord] = []
    tail = ""
    for i, delay in enumerate(plan.delays(seed)):
        cmd = job.cmd if not runs else job.resume_cmd
        rec, tail = run_once(cmd, job.cwd, job.env, job.timeout_s, delay, job.marker_in(job.out))
        runs.append(RunRecord(bool(runs), rec.kill_at_s, rec.killed, rec.returncode, rec.seconds, rec.marker_s))
        if not rec.killed and rec.returncode != 0:
            raise RuntimeError(f"{job.name}: {' '.join(cmd)} failed with exit code {rec.returncode}:\n{tail}")
    for _ in range(max_finish_runs):
        if runs and not runs[-1].killed and runs[-1].returncode == 0:
            break
        rec, tail = run_once(job.resume_cmd, job.cwd, job.env, job.timeout_s)
        runs.append(RunRecord(True, None, False, rec.returncode, rec.seconds, rec.marker_s))
    if runs[-1].returncode != 0:
        raise RuntimeError(f"{job.name}: the resumed run failed with exit code {runs[-1].returncode}:\n{tail}")
    return compare_outputs(job, seed, runs, tail)


def compare_outputs(job: KillJob, seed: int, runs: list[RunRecord], tail: str = "") -> KillResult:
    ref, touched = folder_digest(job.reference, job.normalize)
    got, _ = folder_digest(job.out, job.normalize)
    differing = sorted(k for k in ref.keys() & got.keys() if ref[k] != got[k])
    missing, extra = sorted(ref.keys() - got.keys()), sorted(got.keys() - ref.keys())
    ref_rows, got_rows = job.row_keys(job.reference), job.row_keys(job.out)
    lost = len(set(ref_rows) - set(got_rows))
    return KillResult(name=job.name, seed=seed, runs=runs, files_compared=len(ref),
                      identical=not (differing or missing or extra),
                      differing=differing, missing=missing, extra=extra, normalized=touched,
                      rows_expected=len(ref_rows), rows_found=len(got_rows), lost_rows=lost,
                      duplicated_rows=duplicates(got_rows), stderr_tail=tail[-1500:])


# ------------------------------------------------------------------------------------------------ the four jobs
# Small, seeded versions of the long commands, each with its fixture built from synthetic arrays or the
# starter corpus (nothing downloaded). `prepare_*` builds inputs once; `*_job` names an output folder pair.


def _python() -> list[str]:
    import sys

    return [sys.executable, "-m", "forensics"]


def job_env() -> dict[str, str]:
    """One thread per job (the machine is shared) and this source tree on the path."""
    repo = Path(__file__).resolve().parents[2]
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(repo))


def make_real_manifest(root: Path, n: int = 20, size: int = 32) -> Path:
    """n smooth coloured noisy images, 5 identities over train/val/test; returns the manifest path."""
    import numpy as np

    from forensics.data.manifest import new_row, sha256_file, to_frame, write_manifest
    from forensics.data.media import write_image

    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    rows = []
    for i in range(n):
        img = np.stack([np.sin(6 * xx + i) * 0.5 + 0.5, yy, np.cos(4 * yy * xx + i) * 0.5 + 0.5], -1)
        img = (img * 255 + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)  # [H,W,3]
        path = root / "img" / f"{i:04d}.png"
        write_image(path, img)
        ident = f"id{i % 5}"
        rows.append(new_row(sample_id=f"r{i:04d}", path=f"img/{i:04d}.png", sha256=sha256_file(path), label=0,
                            media="frame", group_id=ident, identity=ident, width=size, height=size,
                            split=["train", "train", "train", "val", "test"][i % 5]))
    manifest = root / "manifest.parquet"
    write_manifest(to_frame(rows), manifest)
    return manifest


def make_tiny_checkpoint(folder: Path, seed: int = 0) -> Path:
    """A freshly initialised tiny StyleGAN2 saved as a checkpoint."""
    import torch

    import generators
    from generators.checkpoint import save_generator

    torch.manual_seed(seed)
    model = generators.create("stylegan2", "tiny")
    return save_generator(folder, "stylegan2", generators.resolve_config("stylegan2", "tiny"), model,
                          {"steps": 0, "seed": seed})


def make_toy_bundle(out: Path, size: int = 128) -> Path:
    """A real scan bundle (spectral + dct, fitted calibration) trained on toy textures."""
    import numpy as np

    from forensics.bundle.build import build_bundle_from_arrays
    from forensics.detectors import toydata

    rng = np.random.default_rng(0)

    def split(n: int):
        images = np.concatenate([toydata.real_images(rng, n, size), toydata.fake_images(rng, n, size, "nearest")])
        return images, np.array([0] * n + [1] * n)

    train, val = split(24), split(16)
    return build_bundle_from_arrays(out, train, (*val, [f"v{i}" for i in range(len(val[1]))]),
                                    {"spectral": {}, "dct": {}}, perturbations=("jpeg30",),
                                    face={"size": size, "margin": 0.25}, log=lambda m: None)


def manifest_keys(out: Path) -> list[object]:
    import pandas as pd

    p = out / "manifest.parquet"
    return pd.read_parquet(p)["sample_id"].tolist() if p.exists() else []


def train_log_keys(out: Path) -> list[object]:
    p = out / "log.jsonl"
    return [json.loads(x)["step"] for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


def score_keys(out: Path) -> list[object]:
    import pandas as pd

    p = out / "scores.parquet"
    if not p.exists():
        return []
    df = pd.read_parquet(p)
    return list(zip(df["sample_id"], df["detector"], df["train_generators"], df["perturbation"]))


def scan_keys(out: Path) -> list[object]:
    p = out / "results.jsonl"
    return [json.loads(x)["key"] for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


def _job(name: str, cmd: Callable[[Path], list[str]], resume_flag: Sequence[str], work: Path, run: str,
         row_keys: Callable[[Path], list[object]], normalize: dict[str, Normalizer] | None = None,
         marker: Callable[[Path], bool] | None = None) -> KillJob:
    out = work / run
    return KillJob(name, cmd(out), [*cmd(out), *resume_flag], cmd(work / "reference"), out, work / "reference",
                   row_keys, normalize or {}, cwd=Path(__file__).resolve().parents[2], env=job_env(), marker=marker)


def _has_png(folder: Path) -> bool:
    return any(True for _ in folder.glob("*/**/*.png"))


def synth_job(work: Path, manifest: Path, ckpt: Path, run: str) -> KillJob:
    """`forensics synth`: the reals copied + 48 fakes of a tiny StyleGAN2 (16 px); re-running resumes."""
    def cmd(out: Path) -> list[str]:
        return [*_python(), "synth", "--ckpt", str(ckpt), "--data", str(manifest), "--n", "48", "--batch", "4",
                "--out", str(out)]
    return _job("synth", cmd, (), work, run, manifest_keys, marker=_has_png)


def train_job(work: Path, manifest: Path, run: str, steps: int = 8) -> KillJob:
    """`forensics zoo train stylegan2 --config tiny`: `steps` steps, a checkpoint every 2; `--resume` resumes."""
    def cmd(out: Path) -> list[str]:
        return [*_python(), "zoo", "train", "stylegan2", "--data", str(manifest), "--config", "tiny", "--steps",
                str(steps), "--out", str(out), "--device", "cpu", "--checkpoint-every", "2", "--seed", "0"]
    timing = {"*model.json": json_without("wall_time_s"), "log.jsonl": jsonl_without("wall_time_s")}
    return _job("zoo train", cmd, ("--resume",), work, run, train_log_keys, timing,
                marker=lambda out: (out / "ckpt-00000000").exists())


def bench_job(work: Path, manifest: Path, run: str) -> KillJob:
    """`forensics detect bench` with spectral + dct, one perturbation, no cross matrix; re-running resumes."""
    def cmd(out: Path) -> list[str]:
        return [*_python(), "detect", "bench", "--data", str(manifest), "--out", str(out), "--detectors",
                "spectral,dct", "--perturb", "jpeg75", "--no-cross", "--n-boot", "50", "--seed", "0"]
    # training seconds are wall time; the git commit moves when anyone commits between the two runs
    timing = {"metrics.json": json_without("seconds", "git_commit"), "models/*/training.json": json_without("seconds"),
              "report.md": report_without("seconds", "git_commit"),
              "report.html": report_without("seconds", "git_commit")}
    return _job("detect bench", cmd, (), work, run, score_keys, timing, marker=lambda out: (out / "models").exists())


def scan_job(work: Path, src: Path, bundle: Path, run: str) -> KillJob:
    """`forensics scan` of a folder of starter stills and a clip; `--resume` resumes."""
    def cmd(out: Path) -> list[str]:
        return [*_python(), "scan", str(src), "--out", str(out), "--model", str(bundle), "--every", "5",
                "--max-frames", "15", "--no-progress"]
    return _job("scan", cmd, ("--resume",), work, run, scan_keys, scan_normalizers(),
                marker=lambda out: (out / "scan_state.json").exists())



def _blank_md_column(lines: list[str], header: str) -> list[str]:
    out, col = [], None
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            col = None
        elif col is None and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            col = cells.index(header) if header in cells else None
        elif col is not None and not line.startswith("|---"):
            cells = line.strip().strip("|").split("|")
            cells[col] = " ~ "
            line = "|" + "|".join(cells) + "|"
        out.append(line)
    return out


def _blank_html_column(doc: str, header: str) -> str:
    def table(m: re.Match) -> str:
        heads = re.findall(r"<th>(.*?)</th>", m.group(0))
        if header not in heads:
            return m.group(0)
        col = heads.index(header)

        def row(r: re.Match) -> str:
            cells = re.findall(r"<td>(.*?)</td>", r.group(1), flags=re.S)
            if len(cells) <= col:
                return r.group(0)
            cells[col] = "~"
            return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

        return re.sub(r"<tr>((?:<td>.*?</td>)+)</tr>", row, m.group(0), flags=re.S)

    return re.sub(r"<table>.*?</table>", table, doc, flags=re.S)


def report_without(column: str, *line_words: str) -> Normalizer:
    """A Markdown or HTML report minus one table column (e.g. training seconds) and minus the lines that
    contain any of `line_words` (e.g. the provenance's git commit)."""
    def fn(data: bytes) -> bytes:
        text = data.decode()
        lines = [ln for ln in text.split("\n") if not any(w in ln for w in line_words)]
        if text.lstrip().startswith("<"):
            return _blank_html_column("\n".join(lines), column).encode()
        return "\n".join(_blank_md_column(lines, column)).encode()

    return fn


_ISO_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


def scan_report_without_custody(data: bytes) -> bytes:
    """The scan's HTML report minus its chain-of-custody section (sessions, pids, times, the output folder) and
    the start/finish times in its header line."""
    data = re.sub(rb'<section id="custody">.*?</section>', b"", data, flags=re.S)
    return _ISO_TIME.sub(b"~", data)


def scan_normalizers() -> dict[str, Normalizer]:
    """A scan records custody (who, where, when, each session) beside its results: those blocks are left out,
    every result field is compared."""
    return {"scan.json": json_without("custody"), "results.jsonl": jsonl_without("custody"),
            "scan_state.json": json_without("sessions"), "report.html": scan_report_without_custody}
