"""reports/reliability.md: issue #14's figures in one page, from the runs that measured them.

    .venv/bin/python benchmarks/reliability_report.py   # -> reports/reliability.md

It reads what `benchmarks/bench_fuzz.py` (the fuzzed bad-input corpus) and `benchmarks/bench_kill.py` (kill -9
and resume) wrote under reports/reliability/, and runs the fault tests itself (untrusted model files, the output
lock, read-only and full disks) to list every case and whether it held. Rerun those two benchmarks first when
the code they measure changed; this page says when each was measured.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULT_TESTS = {
    "untrusted model files": "tests/test_untrusted_models.py",
    "two writers of one output folder": "tests/test_output_lock.py",
    "read-only and full disks": "tests/test_disk_faults.py",
}


def run_fault_tests() -> dict[str, list[tuple[str, str]]]:
    """Each fault test file through pytest (slow tests included): [(test name, outcome)] per group."""
    out: dict[str, list[tuple[str, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for group, path in FAULT_TESTS.items():
            xml = Path(tmp) / "junit.xml"
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path,
                            f"--junitxml={xml}"], cwd=ROOT, capture_output=True, text=True)
            cases = []
            for case in ElementTree.parse(xml).getroot().iter("testcase"):
                outcome = "passed"
                for tag in ("failure", "error", "skipped"):
                    if case.find(tag) is not None:
                        outcome = {"failure": "FAILED", "error": "ERROR", "skipped": "skipped"}[tag]
                cases.append((case.get("name", "?"), outcome))
            out[group] = cases
    return out


def fuzz_lines(fuzz: dict) -> list[str]:
    lines = [
        "## A fuzzed bad-input corpus through every media reader",
        "",
        f"`benchmarks/bench_fuzz.py --seed {fuzz['seed']} --n {fuzz['n']}` ({fuzz['seconds_total']:.0f} s): "
        f"{fuzz['corpus_entries']} entries ({fuzz['corpus_files']} files) made from the starter media, "
        f"{fuzz['must_fail']} of them files no reader may score. Details: `reports/reliability/fuzz.md`.",
        "",
        "| command | files | scored | reported with a reason | crashes | unaccounted | reasons not naming the file |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in fuzz["commands"]:
        lines.append(f"| `{c['command']}` | {c['files']} | {c['scored']} | {c['reported']} | **{c['crashes']}** | "
                     f"**{c['unaccounted']}** | {c['reasons_without_name']} |")
    lines += ["", f"Running as root: {fuzz['running_as_root']} (a mode-000 file is then readable, so permission "
              "errors are only exercised by a non-root run).", ""]
    return lines


def kill_lines(kill: dict) -> list[str]:
    lines = [
        "## kill -9 at random points, then resume",
        "",
        f"`benchmarks/bench_kill.py`: {kill['seeds']} seeds, {kill['kills_per_seed']} kill point(s) per seed; "
        "the final outputs are compared file by file with an uninterrupted run's. Details and what is left out of "
        "the byte comparison (times): `reports/reliability/kill.md`.",
        "",
        "| command | kill points tried | kills landed | lost rows | duplicated rows | byte-identical seeds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, c in kill["commands"].items():
        lines.append(f"| `{name}` | {c['kill_points_tried']} | {c['kills_landed']} | **{c['lost_rows']}** | "
                     f"**{c['duplicated_rows']}** | {c['byte_identical']} |")
    return lines + [""]


def fault_lines(faults: dict[str, list[tuple[str, str]]]) -> list[str]:
    lines = ["## Faults: untrusted model files, concurrent writers, disks", "",
             "Each case is a test that builds the fault for real (a corrupt or pickled file, two processes, a "
             "read-only folder or a full disk) and checks the refusal names the file and leaves no half-written "
             "output; run by this command just now.", ""]
    for group, cases in faults.items():
        held = sum(outcome == "passed" for _, outcome in cases)
        lines.append(f"**{group}** (`{FAULT_TESTS[group]}`): {held} of {len(cases)} held.")
        lines.append("")
        lines += [f"- {name.replace('test_', '', 1).replace('_', ' ')}: {outcome}" for name, outcome in cases]
        lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "reliability.md")
    args = ap.parse_args()
    fuzz = json.loads((ROOT / "reports" / "reliability" / "fuzz.json").read_text())
    kill = json.loads((ROOT / "reports" / "reliability" / "kill.json").read_text())
    faults = run_fault_tests()
    lines = ["# Reliability", "", "Written by `python benchmarks/reliability_report.py`. Issue #14: nothing modified, "
             "nothing silently dropped, the same answer after a crash.", ""]
    lines += fuzz_lines(fuzz) + kill_lines(kill) + fault_lines(faults)
    args.out.write_text("\n".join(lines))
    crashes = sum(c["crashes"] for c in fuzz["commands"])
    unaccounted = sum(c["unaccounted"] for c in fuzz["commands"])
    lost = sum(c["lost_rows"] for c in kill["commands"].values())
    dup = sum(c["duplicated_rows"] for c in kill["commands"].values())
    held = sum(o == "passed" for cases in faults.values() for _, o in cases)
    total = sum(len(cases) for cases in faults.values())
    print(f"fuzz: {fuzz['corpus_entries']} entries, {crashes} crashes, {unaccounted} unaccounted; kill -9: "
          f"{sum(c['kill_points_tried'] for c in kill['commands'].values())} kill points, {lost} lost rows, "
          f"{dup} duplicated; faults: {held}/{total} held; wrote {args.out}")


if __name__ == "__main__":
    main()
