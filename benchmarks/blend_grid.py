"""A look at self-blended fakes as `forensics synth --generator blend` wrote them: real | blend | mask, one row per
identity (as many as --rows), read back from the dataset's files, and a line per row with its parameters.

    .venv/bin/forensics data starter --out data/starter
    .venv/bin/forensics synth --generator blend --data data/starter/manifest.parquet --n 600 --out runs/blend
    .venv/bin/python benchmarks/blend_grid.py --dataset runs/blend/manifest.parquet --out reports/zoo/blend_grid.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from forensics.data.manifest import dataset_root, read_manifest
from forensics.data.media import read_image, write_image


def pick_rows(fakes: list[dict], rows: int, seed: int) -> list[dict]:
    """Up to `rows` blend fakes, each of another identity (then any), in a seeded order."""
    order = np.random.default_rng(seed).permutation(len(fakes))
    picked, seen = [], set()
    for i in order:
        if fakes[i]["identity"] not in seen:
            picked.append(fakes[i])
            seen.add(fakes[i]["identity"])
    picked += [fakes[i] for i in order if fakes[i] not in picked]
    return picked[:rows]


def grid_row(root: Path, fake_row: dict, real_row: dict) -> np.ndarray:
    """[S, 3S + 4, 3] uint8: the real copy, the blend, the mask (white = fully the changed source)."""
    real, fake = read_image(root / real_row["path"]), read_image(root / fake_row["path"])
    mask = cv2.imread(str(root / json.loads(fake_row["postproc"])["mask_path"]), cv2.IMREAD_UNCHANGED)
    gap = np.full((real.shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([real, gap, fake, gap, np.repeat(mask[:, :, None], 3, axis=2)], axis=1)


def describe(fake_row: dict) -> str:
    p = json.loads(fake_row["postproc"])["blend"]
    src, mask = p["source"], p["mask"]
    colour = src["colour"]
    return (f"{fake_row['sample_id']} from {fake_row['source_id']}: {src['frequency']['kind']} "
            f"{src['frequency']['value']:.2f}, brightness {colour['brightness']:+.3f}, "
            f"contrast {colour['contrast']:.3f}, "
            f"rgb shift {'none' if colour['rgb_shift'] is None else [round(v, 1) for v in colour['rgb_shift']]}, "
            f"hsv {'none' if colour['hsv'] is None else {k: round(v, 2) for k, v in colour['hsv'].items()}}, "
            f"scale {src['geometry']['scale']:.3f}; blend ratio {mask['blend_ratio']}, "
            f"feather {mask['feather']:.3f}, mask {p['derived']['mask_fraction']:.3f} of the crop, "
            f"changed {p['derived']['changed_fraction']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True, help="manifest of a synth run with --generator blend")
    parser.add_argument("--out", type=Path, default=Path("reports/zoo/blend_grid.png"))
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    df = read_manifest(args.dataset)
    root = dataset_root(args.dataset)
    fakes = df[df["generator"] == "blend"].sort_values("sample_id", kind="stable").to_dict("records")
    if not fakes:
        raise SystemExit(f"{args.dataset}: no blend fakes (run forensics synth --generator blend first)")
    reals = {r["sample_id"]: r for r in df[df["label"] == 0].to_dict("records")}
    picked = pick_rows(fakes, args.rows, args.seed)
    rows = [grid_row(root, f, reals[f["source_id"]]) for f in picked]
    gap = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
    write_image(args.out, np.concatenate([r if i == 0 else np.concatenate([gap, r]) for i, r in enumerate(rows)]))
    for f in picked:
        print(describe(f))
    print(f"wrote {args.out} ({len(rows)} rows: real | blend | mask)")


if __name__ == "__main__":
    main()
