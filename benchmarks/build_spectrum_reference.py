"""Build the bundle's real-face references for the per-face evidence, and measure the rules that use them.

    .venv/bin/python benchmarks/build_spectrum_reference.py --data data/starter \
        --out forensics/assets/bundle/reference/spectrum.json [--fakes /path/to/zoo/dataset]

1. Spectrum band: the azimuthal spectrum (the spectral detector's own function, 64 bins, min-max) of every
   *real train* crop of `--data`, reduced to per-bin 5/50/95 percentiles, written to `--out` with n, the
   manifest's sha256 and this command.
2. Spectrum rule: the false-alarm rate of `forensics.evidence.spectrum`'s rule on the real *val* and *test*
   crops of `--data` (people and frames the band never saw), over a small grid of rules, and with `--fakes`
   (any dataset folder with a manifest.parquet holding generator != "real" rows, e.g. the zoo dataset a demo run
   builds; its test split, enlarged to the reference's face size as the scan's aligner would, with the zoo's
   own reals as a control that went through the same pipeline) the share of faces per generator it flags.
3. Noise ratio: face-vs-border residual energy ratio (`forensics.evidence.noise`) on every real crop of
   `--data` (percentiles), and with `--fakes` on the fakes per generator (how many fall outside the real range).

4. `--timing`: only the cost per face of each part on this machine (Grad-CAM, noise, spectrum), then exit.

Nothing is written but `--out`. Prints every figure the evidence modules' constants cite.
"""
from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SPECTRUM_GRID = [(0.25, 0.5), (0.5, 0.5), (0.5, 1.0), (0.5, 2.0), (0.75, 1.0), (0.75, 2.0)]


def load_crops(root: Path, rows: pd.DataFrame, size: int) -> np.ndarray:
    """Crops of the manifest rows at `size` px. Smaller crops (the zoo's 64 px faces) are enlarged bilinearly, as
    the scan's aligner enlarges a small face into its 128 px crop.  # -> [N,size,size,3] uint8"""
    import cv2

    from forensics.data.media import read_image

    crops = [read_image(root / p) for p in rows["path"]]
    return np.stack([c if c.shape[:2] == (size, size) else
                     cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in crops])


def spectrum_rule_rates(curves: np.ndarray, reference, grid: list[tuple[float, float]]) -> list[float]:
    """Share of curves each (fraction, excursion) rule flags.  # curves [N,n_bins]"""
    from forensics.evidence.spectrum import HIGH_FREQ_FROM, excursions

    hf = int(round(HIGH_FREQ_FROM * reference.n_bins))
    exc = np.stack([excursions(c, reference) for c in curves.astype(np.float64)])[:, hf:]  # [N,n_hf]
    frac = (exc != 0).mean(axis=1)
    worst = np.abs(exc).max(axis=1)
    return [float(np.mean((frac >= f) & (worst >= e))) for f, e in grid]


def time_parts(data: Path, n: int = 16, bundle_root: Path = Path("forensics/assets/bundle")) -> None:
    """ms per face of each part on `n` real starter crops (after one warm-up call), as the scan would call them."""
    from forensics.bundle import load_bundle
    from forensics.evidence.gradcam import GradCamExplainer, gradcam_sections
    from forensics.evidence.noise import noise_residual_section
    from forensics.evidence.spectrum import load_spectrum_reference, spectrum_section

    table = pd.read_parquet(data / "manifest.parquet")
    rows = table[(table["label"] == 0) & (table["media"] != "video")].sample(n=n, random_state=0)
    crops = load_crops(data, rows, 128)
    bundle = load_bundle(bundle_root)
    t0 = time.perf_counter()
    explainer = GradCamExplainer.from_bundle(bundle)
    print(f"Grad-CAM explainer set-up (once per scan, includes importing pytorch-grad-cam): "
          f"{time.perf_counter() - t0:.2f} s")
    reference = load_spectrum_reference(bundle_root)
    parts = {
        "gradcam, one face per call": lambda c: gradcam_sections(explainer, c[None], ["face-1"]),
        "noise": lambda c: noise_residual_section(c, "face-1"),
        "spectrum (with its PNG)": lambda c: spectrum_section(c, "face-1", reference),
        "spectrum (fields only)": lambda c: spectrum_section(c, "face-1", reference, plot=False),
    }
    for label, fn in parts.items():
        fn(crops[0])  # warm-up: lazy imports, caches
        t0 = time.perf_counter()
        for c in crops:
            fn(c)
        print(f"  {label:<28} {1000 * (time.perf_counter() - t0) / n:7.1f} ms per face")
    t0 = time.perf_counter()
    gradcam_sections(explainer, crops, [f"face-{i}" for i in range(n)])
    print(f"  {'gradcam, all faces in one call':<28} {1000 * (time.perf_counter() - t0) / n:7.1f} ms per face")
    import torch

    print(f"  (torch threads: {torch.get_num_threads()}, {n} crops of {data})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/starter"))
    parser.add_argument("--out", type=Path, default=Path("forensics/assets/bundle/reference/spectrum.json"))
    parser.add_argument("--fakes", type=Path, default=None, help="a dataset folder with fakes (manifest.parquet)")
    parser.add_argument("--max-fakes", type=int, default=200, help="fakes per generator at most (seeded sample)")
    parser.add_argument("--timing", action="store_true", help="only print the cost per face of each part")
    args = parser.parse_args(argv)
    if args.timing:
        time_parts(args.data)
        return

    from forensics.data.media import write_bytes_atomic
    from forensics.evidence.noise import noise_ratios
    from forensics.evidence.spectrum import build_reference, face_spectra

    manifest = args.data / "manifest.parquet"
    table = pd.read_parquet(manifest)
    sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
    reals = table[(table["label"] == 0) & (table["media"] != "video")]  # crops only (video rows name the source file)
    command = "python benchmarks/build_spectrum_reference.py " + shlex.join(
        ["--data", str(args.data), "--out", str(args.out)])

    t0 = time.perf_counter()
    size = int(reals["width"].iloc[0])
    train = load_crops(args.data, reals[reals["split"] == "train"], size)
    reference = build_reference(train, sha, command)
    import json

    write_bytes_atomic(args.out, (json.dumps(reference.to_dict(), indent=1) + "\n").encode())
    print(f"spectrum reference: {reference.n} real train crops of {args.data} ({time.perf_counter() - t0:.1f} s) "
          f"-> {args.out}")
    print("  band width p95-p5 per bin (every 8th):",
          " ".join(f"{w:.3f}" for w in (reference.p95 - reference.p5)[::8]))

    grid_head = "  ".join(f"f>={f:g},e>={e:g}" for f, e in SPECTRUM_GRID)
    print(f"spectrum rule, share flagged (rule: high-freq bins outside >= f and max excursion >= e band widths)\n"
          f"  {'set':<22}{'n':>6}  {grid_head}")
    held_out = {}
    for split in ("val", "test"):
        rows = reals[reals["split"] == split]
        held_out[split] = load_crops(args.data, rows, size)
        rates = spectrum_rule_rates(face_spectra(held_out[split]), reference, SPECTRUM_GRID)
        print(f"  {'real ' + split:<22}{len(rows):>6}  " + "  ".join(f"{r:>{len(f'f>={f:g},e>={e:g}')}.3f}"
                                                                  for r, (f, e) in zip(rates, SPECTRUM_GRID)))
    fakes_by_gen: dict[str, np.ndarray] = {}
    if args.fakes is not None:
        zoo = pd.read_parquet(args.fakes / "manifest.parquet")
        zoo_test = zoo[(zoo["split"] == "test") & (zoo["media"] != "video")]
        for gen, rows in sorted(zoo_test.groupby("generator")):
            rows = rows.sample(n=min(len(rows), args.max_fakes), random_state=0)
            fakes_by_gen[str(gen)] = load_crops(args.fakes, rows, size)
            rates = spectrum_rule_rates(face_spectra(fakes_by_gen[str(gen)]), reference, SPECTRUM_GRID)
            label = f"zoo test {gen}"
            print(f"  {label:<22}{len(rows):>6}  " + "  ".join(f"{r:>{len(f'f>={f:g},e>={e:g}')}.3f}"
                                                            for r, (f, e) in zip(rates, SPECTRUM_GRID)))

    all_reals = np.concatenate([train, *held_out.values()])
    ratios = noise_ratios(all_reals)
    ok = np.isfinite(ratios)
    q = np.percentile(ratios[ok], [0.5, 1, 5, 50, 95, 99, 99.5])
    print(f"noise face/border residual ratio on {ok.sum()} real starter crops ({(~ok).sum()} without a ratio): "
          "p0.5 p1 p5 p50 p95 p99 p99.5 = " + " ".join(f"{v:.3f}" for v in q))
    from forensics.evidence.noise import RATIO_HIGH, RATIO_LOW

    outside = float(np.mean((ratios[ok] < RATIO_LOW) | (ratios[ok] > RATIO_HIGH)))
    print(f"  outside the rule's range [{RATIO_LOW}, {RATIO_HIGH}]: real {outside:.4f}")
    for gen, crops in fakes_by_gen.items():
        r = noise_ratios(crops)
        r = r[np.isfinite(r)]
        print(f"  zoo test {gen:<12} n={len(r):>4} median {np.median(r):.3f}  outside: "
              f"{np.mean((r < RATIO_LOW) | (r > RATIO_HIGH)):.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
