"""Issue #14 part 1: a seeded bad-input corpus through every command that reads media; writes the numbers table.

    .venv/bin/python benchmarks/bench_fuzz.py --seed 0 --n 500

Builds the corpus under --work (default a temp folder, removed afterwards), runs `forensics.reliability.fuzz_run`
and writes reports/reliability/fuzz.md (the table) and fuzz.json (every figure, with example file names per
problem). The lead merges the table into reports/reliability.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from forensics.data.media import printable, write_bytes_atomic
from forensics.reliability.fuzz import build_bad_corpus, restore_permissions
from forensics.reliability.fuzz_run import FuzzTally, run_fuzz

REPORTS = Path(__file__).resolve().parents[1] / "reports" / "reliability"


def mutation_kind(mutation: str) -> str:
    """'truncate@123/456 of x.jpg' -> 'truncate'; the fixed cases are one group."""
    head = mutation.split(" ")[0].split("@")[0]
    return head if head in ("truncate", "flip", "flip_header", "zero_run") else "fixed cases"


def markdown(tally: FuzzTally, seed: int, kinds: Counter, max_frames: int, video_share: float) -> str:
    locked = ("was readable (root ignores permissions), so it tests nothing here" if tally.mode_000_readable
              else "was unreadable")
    lines = [
        "# Fuzzed bad-input corpus through every media reader (issue #14, part 1)",
        "",
        f"Written by `benchmarks/bench_fuzz.py --seed {seed} --n {tally.corpus_entries}` "
        f"({tally.seconds:.0f} s on this machine). The corpus is generated from the starter media, nothing binary "
        f"is committed: {tally.corpus_entries} entries ({tally.corpus_files} files, "
        f"{tally.corpus_entries - tally.corpus_files} folders or links to folders), {tally.must_fail} of them "
        f"files that no reader may score; {video_share:.0%} of the random mutations damage a video; videos are "
        f"scanned to {max_frames} frames.",
        "",
        "Mutations: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])) + ".",
        "",
        "| command | files | scored / imported | reported with a reason | crashes | unaccounted | reasons without "
        "the file's name | must-fail files scored | exit status | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in tally.commands:
        lines.append(f"| `{c.command}` | {c.files} | {c.scored} | {c.reported} | {c.crashes} | {c.unaccounted} | "
                     f"{c.reasons_without_name} | {c.must_fail_scored} | {c.exit_code} | {c.seconds:.1f} |")
    lines += [
        "",
        "Targets: 0 crashes, 0 unaccounted, 0 reasons without the file's name. A crash is a traceback, an uncaught "
        "exception, an exit status other than 0/1/2, a signal or a hang; in the scan a file whose error says "
        "*internal error while analysing* (the scan caught it and went on, but it is a bug) counts as one. "
        "`scan (CLI --resume)` runs the command over the library run's folder: it re-checks every file's size and "
        "modification time, re-merges the journal and re-renders the outputs, so its per-file figures come from "
        "the same analyses. `data import` files include hidden and non-media entries (each must be listed as "
        "ignored); its *must-fail files scored* also counts imported rows no reader can decode. `data describe` "
        "counts the rows it printed against the rows the import wrote.",
        "",
        f"Running as root: {tally.running_as_root}. The mode-000 file "
        f"{locked}"
        "; a FIFO named .jpg (opening it would block) and a file under a folder without x permission (readable by "
        "root) stand in for it. Unreadable-file handling (EACCES) is only exercised when not root.",
    ]
    problems = [(c.command, k, v) for c in tally.commands for k, v in c.examples.items()]
    if problems:
        lines += ["", "## Examples (at most five per problem)", ""]
        for command, kind, examples in problems:
            lines.append(f"- `{command}` {kind}: " + "; ".join(f"`{e[:200]}`" for e in examples))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=500, help="corpus entries")
    ap.add_argument("--max-frames", type=int, default=2, help="frames scanned per video")
    ap.add_argument("--video-share", type=float, default=0.2, help="share of random mutations that damage a video")
    ap.add_argument("--work", type=Path, default=None, help="work folder (kept); default: a temp folder, removed")
    ap.add_argument("--out", type=Path, default=REPORTS)
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_fuzz_"))
    t0 = time.perf_counter()
    cases = build_bad_corpus(work / "corpus", args.seed, n=args.n, video_share=args.video_share)
    try:
        tally = run_fuzz(work / "corpus", cases, work / "work", max_frames=args.max_frames)
    finally:
        restore_permissions(cases)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    kinds = Counter(mutation_kind(c.mutation) for c in cases)
    doc = {"seed": args.seed, "n": args.n, "max_frames": args.max_frames, "video_share": args.video_share,
           "seconds_total": round(time.perf_counter() - t0, 1), **tally.to_dict(),
           "cases": [c.to_dict() for c in cases]}
    args.out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out / "fuzz.json", (json.dumps(doc, indent=1, ensure_ascii=True) + "\n").encode())
    text = printable(markdown(tally, args.seed, kinds, args.max_frames, args.video_share))
    write_bytes_atomic(args.out / "fuzz.md", text.encode())
    print((args.out / "fuzz.md").read_text())
    return 0 if tally.ok else 1


if __name__ == "__main__":
    sys.exit(main())
