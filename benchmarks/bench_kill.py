"""kill -9 benchmark: for synth, zoo train, detect bench and scan, SIGKILL each at seeded random points, resume
until it finishes, and compare with an uninterrupted run (forensics.reliability.kill).

Writes reports/reliability/kill.json (every run of every seed) and kill.md (one row per command: kill points
tried and landed, resumes, lost and duplicated rows, byte-identical or not, and which files were compared minus
their time fields).

    python benchmarks/bench_kill.py --seeds 3 --kills 2
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from forensics.reliability.kill import (
    KillJob,
    bench_job,
    kill_and_resume,
    make_real_manifest,
    make_tiny_checkpoint,
    make_toy_bundle,
    scan_job,
    synth_job,
    train_job,
)

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "forensics" / "assets" / "starter"
SCAN_FILES = ("0-f1-su-ph.jpg", "single_face.jpg", "grace_hopper.jpg", "astronaut.png", "carphone_pristine.mp4")
# what each comparison leaves out, in words (the normalizers in forensics.reliability.kill)
EXCLUDED = {
    "synth": "nothing",
    "zoo train": "`wall_time_s` in every model.json and log.jsonl line",
    "detect bench": "training `seconds` in models/*/training.json, metrics.json, report.md and report.html; "
                    "`git_commit` in metrics.json and the reports",
    "scan": "the `custody` block of scan.json and of each results.jsonl line, `sessions` in scan_state.json, the "
            "chain-of-custody section and timestamps of report.html",
}


def _jobs(work: Path, run: str) -> list[KillJob]:
    manifest, ckpt = work / "real" / "manifest.parquet", work / "ck"
    src, bundle = work / "scan_in", work / "bundle"
    synth = synth_job(work / "synth", manifest, ckpt, run)
    return [synth, train_job(work / "train", manifest, run),
            bench_job(work / "bench", synth.reference / "manifest.parquet", run),
            scan_job(work / "scan", src, bundle, run)]


def _prepare(work: Path) -> None:
    make_real_manifest(work / "real", n=40, size=32)
    make_tiny_checkpoint(work / "ck")
    (work / "scan_in").mkdir()
    for name in SCAN_FILES:
        shutil.copy(STARTER / name, work / "scan_in" / name)
    make_toy_bundle(work / "bundle")


def run(seeds: int, kills: int, commands: list[str], work: Path) -> dict:
    _prepare(work)
    report = {"seeds": seeds, "kills_per_seed": kills, "platform": platform.platform(), "commands": {}}
    for ref_job in _jobs(work, "reference-only"):
        if ref_job.name == "synth" and "detect bench" in commands and "synth" not in commands:
            ref_job.run_reference()  # the bench's dataset
        if ref_job.name not in commands:
            continue
        t0 = time.perf_counter()
        ref = ref_job.run_reference()
        results: list[dict] = []
        failures: list[dict] = []
        for seed in range(seeds):
            job = next(j for j in _jobs(work, f"seed{seed}") if j.name == ref_job.name)
            try:
                r = kill_and_resume(job, job.plan(ref, kills=kills), seed)
            except (RuntimeError, TimeoutError) as exc:  # a resume that fails is a finding, not a crash
                print(f"{job.name} seed {seed}: FAILED {str(exc)[:2000]}", flush=True)
                failures.append({"seed": seed, "error": str(exc)[-3000:]})
                continue
            print(f"{job.name} seed {seed}: kills {r.kills}/{len(r.runs)} runs, identical {r.identical}, lost "
                  f"{r.lost_rows}, duplicated {r.duplicated_rows}", flush=True)
            results.append(r.to_dict())
        report["commands"][ref_job.name] = {
            "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reference_seconds": ref.seconds,
            "reference_marker_s": ref.marker_s, "excluded": EXCLUDED[ref_job.name],
            "kill_points_tried": sum(len([x for x in r["runs"] if x["kill_at_s"] is not None]) for r in results),
            "kills_landed": sum(r["kills"] for r in results), "resumes": sum(r["resumes"] for r in results),
            "rows_expected": results[0]["rows_expected"] if results else 0,
            "lost_rows": sum(r["lost_rows"] for r in results),
            "duplicated_rows": sum(r["duplicated_rows"] for r in results),
            "byte_identical": f"{sum(r['identical'] for r in results)}/{len(results) + len(failures)}",
            "failed_seeds": failures,
            "files_compared": results[0]["files_compared"] if results else 0,
            "seconds": round(time.perf_counter() - t0, 1), "runs": results}
    return report


def markdown(report: dict) -> str:
    lines = ["# kill -9 and resume", "",
             f"Each command was killed with SIGKILL at {report['kills_per_seed']} seeded random point(s) per seed "
             f"({report['seeds']} seeds), counted from its first output, then resumed until it finished; its output "
             "folder was compared file by file (sha256) with an uninterrupted run's. Written by "
             "`python benchmarks/bench_kill.py`.", "",
             "| command | kill points tried | kills landed | resumes | rows | lost rows | duplicated rows | "
             "byte-identical seeds | files compared | left out of the comparison |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in report["commands"].items():
        lines.append(f"| {name} | {c['kill_points_tried']} | {c['kills_landed']} | {c['resumes']} | "
                     f"{c['rows_expected']} | {c['lost_rows']} | {c['duplicated_rows']} | {c['byte_identical']} | "
                     f"{c['files_compared']} | {c['excluded']} |")
    for name, c in report["commands"].items():
        for f in c["failed_seeds"]:
            lines += ["", f"**{name}, seed {f['seed']}: the resume failed.**", "", "```", f["error"][-1500:], "```"]
    lines += ["", "A kill point that was not *landed* fell after the job had already finished (the run completed).",
              f"Platform: {report['platform']}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--kills", type=int, default=2, help="SIGKILLs per seed (the first hits the fresh run, the "
                                                          "next ones hit resumes)")
    ap.add_argument("--commands", default="synth,zoo train,detect bench,scan")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "reliability")
    ap.add_argument("--update", action="store_true", help="keep the other commands' results already in "
                                                           "OUT/kill.json (re-measure only --commands)")
    args = ap.parse_args()
    from forensics.jobs.atomic import write_json, write_text

    with tempfile.TemporaryDirectory(prefix="bench_kill_") as tmp:
        report = run(args.seeds, args.kills, [c.strip() for c in args.commands.split(",")], Path(tmp))
    if args.update and (args.out / "kill.json").exists():
        old = json.loads((args.out / "kill.json").read_text())
        if (old["seeds"], old["kills_per_seed"]) != (report["seeds"], report["kills_per_seed"]):
            raise SystemExit("--update needs the same --seeds and --kills as the saved run")
        report["commands"] = {**old["commands"], **report["commands"]}
    write_json(args.out / "kill.json", report)
    write_text(args.out / "kill.md", markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
