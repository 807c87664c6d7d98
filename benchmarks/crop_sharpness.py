"""How sharp each person's real crops are, and each generator's fakes, in the release dataset: the median variance
of the Laplacian (high-frequency energy) of the 128 px crops, plus saturation and brightness: a check of whether
a person the detectors call fake when held out (issue 18's pexels_woman) looks unlike every other real face.

    python benchmarks/crop_sharpness.py --dataset runs/release/dataset --out reports/release/crop_sharpness.md
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from forensics.data.manifest import read_manifest
from forensics.data.media import read_image


def crop_stats(paths: list[Path]) -> dict[str, float]:
    lap, sat, bright = [], [], []
    for p in paths:
        rgb = read_image(p)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        lap.append(cv2.Laplacian(gray, cv2.CV_32F).var())
        sat.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].mean())
        bright.append(gray.mean())
    return {"crops": len(paths), "laplacian_var": float(np.median(lap)), "saturation": float(np.median(sat)),
            "brightness": float(np.median(bright))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=Path("runs/release/dataset"))
    ap.add_argument("--out", type=Path, default=Path("reports/release/crop_sharpness.md"))
    ap.add_argument("--per-group", type=int, default=60, help="crops sampled per person / generator")
    ap.add_argument("--min-crops", type=int, default=50, help="people with at least this many real crops")
    args = ap.parse_args()

    df = read_manifest(args.dataset / "manifest.parquet")
    native = df[~df["sample_id"].str.startswith("lowres:")]  # resampled twins would blur the comparison
    rows = []
    for kind, key, part in (("real", "identity", native[native["label"] == 0]),
                            ("fake", "generator", native[native["label"] == 1])):
        for name, group in part.groupby(key, sort=True):
            if kind == "real" and len(group) < args.min_crops:
                continue
            sample = group.sample(min(args.per_group, len(group)), random_state=0)
            rows.append({"kind": kind, "group": name, **crop_stats([args.dataset / p for p in sample["path"]])})
    table = pd.DataFrame(rows)
    lines = ["# Sharpness of the release dataset's crops", "",
             f"`python benchmarks/crop_sharpness.py --dataset {args.dataset}`: medians over {args.per_group} "
             "sampled 128 px crops per person (real, >= "
             f"{args.min_crops} crops) and per generator (fakes); resampled twins left out.", "",
             "| kind | person / generator | crops | Laplacian variance | saturation | brightness |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.kind} | {r.group} | {r.crops} | {r.laplacian_var:.0f} | {r.saturation:.0f} | {r.brightness:.0f} |"
              for r in table.itertuples()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[4:]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
