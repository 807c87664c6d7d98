"""Double-JPEG indicator: AUC of single- vs double-compressed JPEGs built from the starter corpus, and the
JPEG section's cost on a 1 MP photo.

    .venv/bin/python benchmarks/bench_double_jpeg.py --data data/starter --out reports/evidence

Sources are never-JPEG pixels: the corpus's 128 px aligned face crops (PNG, resampled from their source, so
no earlier 8x8 grid survives) and frames decoded from its videos, cropped 1..7 px off the codec's block grid.
Each source gives one single-compressed JPEG (q2) and one double-compressed JPEG (q1 then q2, q1 != q2, both
drawn from 50..95; sources alternate q1 < q2 and q1 > q2, the hard case). Three size groups: the crops at
their native 128 px, 256x256 cuts of frames, and whole frames (176x144 .. 960x540). The threshold is fitted at
5% false alarms on the single-compressed images of >= 256 px and written to the report; the section's
DOUBLE_JPEG_THRESHOLD is set from it. Writes double_jpeg.md and double_jpeg.json to --out.
"""
from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from forensics.data.manifest import read_manifest
from forensics.data.media import iter_frames, probe_video, read_image
from forensics.evidence.double_jpeg import double_jpeg
from forensics.evidence.jpeg import jpeg_history_section, read_jpeg_luma
from forensics.metrics import bootstrap_ci, roc_auc, threshold_at_fpr

QUALITIES = np.arange(50, 96)
TARGET_FPR = 0.05


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def recompress(data: bytes, quality: int) -> bytes:
    """Decode a JPEG and save it again: the second compression of a double-compressed file."""
    with Image.open(io.BytesIO(data)) as im:
        return jpeg_bytes(np.asarray(im.convert("RGB")), quality)


def score_bytes(data: bytes) -> tuple[float, int | None]:
    """The double-compression score and q1 estimate of JPEG bytes, through the section's own reader."""
    _, tables, luma = read_jpeg_luma(io.BytesIO(data))
    assert luma is not None
    r = double_jpeg(luma, tables[0])
    return r.score, r.q1_quality


def crop_sources(data: Path, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`n` aligned face crops (PNG) of distinct images/frames, spread over identities."""
    m = read_manifest(data / "manifest.parquet")
    m = m[m["media"].isin(["image", "frame"])]
    pick = m.groupby("identity", group_keys=False).apply(lambda g: g.sample(min(len(g), n), random_state=0))
    pick = pick.sample(min(n, len(pick)), random_state=0)
    return [read_image(data / p) for p in pick["path"]]


def frame_sources(data: Path, per_video: int) -> list[tuple[str, np.ndarray]]:
    """`per_video` evenly spaced decoded frames of each corpus video, full size."""
    m = read_manifest(data / "manifest.parquet")
    out = []
    for rel in sorted(m.loc[m["media"] == "video", "path"]):
        step = max(1, probe_video(data / rel).frame_count // per_video)
        out += [(Path(rel).stem, f) for _, f in iter_frames(data / rel, step=step, max_frames=per_video)]
    return out


def pairs(rgb: np.ndarray, order: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    """One single- and one double-compressed sample of `rgb`, q1/q2 drawn so that q1 `order` q2."""
    q1, q2 = sorted(rng.choice(QUALITIES, 2, replace=False))
    if order == "q1>q2":
        q1, q2 = q2, q1
    single = jpeg_bytes(rgb, q2)
    double = recompress(jpeg_bytes(rgb, q1), q2)
    rows = []
    for label, blob in ((0, single), (1, double)):
        score, q1_est = score_bytes(blob)
        rows.append({"label": label, "q1": int(q1) if label else None, "q2": int(q2), "order": order,
                     "score": score, "q1_est": q1_est, "h": rgb.shape[0], "w": rgb.shape[1]})
    return rows


def off_grid(rgb: np.ndarray, rng: np.random.Generator, size: int | None) -> np.ndarray | None:
    """A cut starting 1..7 px off the video codec's block grid (whole rest of the frame when size is None)."""
    oy, ox = rng.integers(1, 8, 2)
    h, w = rgb.shape[:2]
    if size is None:
        return np.ascontiguousarray(rgb[oy:, ox:])
    if h - oy < size or w - ox < size:
        return None
    y = oy + 8 * int(rng.integers(0, (h - oy - size) // 8 + 1))
    x = ox + 8 * int(rng.integers(0, (w - ox - size) // 8 + 1))
    return np.ascontiguousarray(rgb[y:y + size, x:x + size])


def group_metrics(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    y = np.array([r["label"] for r in rows])
    s = np.array([r["score"] for r in rows])
    doubles = [r for r in rows if r["label"] == 1 and r["score"] >= threshold]
    q1_ok = [abs(r["q1_est"] - r["q1"]) <= 5 for r in doubles if r["q1_est"] is not None]
    return {"n_single": int((y == 0).sum()), "n_double": int((y == 1).sum()), "auc": round(roc_auc(y, s), 4),
            "auc_ci": [round(v, 4) for v in bootstrap_ci(y, s, "auc", n_boot=1000, seed=0)],
            "tpr_at_threshold": round(float(np.mean(s[y == 1] >= threshold)), 4),
            "fpr_at_threshold": round(float(np.mean(s[y == 0] >= threshold)), 4),
            "q1_within_5_of_detected": round(float(np.mean(q1_ok)), 4) if q1_ok else None}


def size_range(rows: list[dict[str, Any]]) -> str:
    """'WxH' or 'WxH .. WxH' (smallest and largest by pixel count) of a group's images."""
    dims = sorted({(r["w"], r["h"]) for r in rows}, key=lambda d: d[0] * d[1])
    if not dims:
        return "-"
    lo, hi = dims[0], dims[-1]
    return f"{lo[0]}x{lo[1]}" if lo == hi else f"{lo[0]}x{lo[1]} .. {hi[0]}x{hi[1]} ({len(dims)} sizes)"


def section_cost(rgb: np.ndarray, work: Path, repeats: int) -> dict[str, Any]:
    """Median wall time of jpeg_history_section on a ~1 MP JPEG made from a corpus frame."""
    import cv2

    big = cv2.resize(rgb, (1280, 800), interpolation=cv2.INTER_CUBIC)  # 1.02 MP
    path = work / "cost_1mp.jpg"
    path.write_bytes(jpeg_bytes(big, 85))
    decoded = read_image(path)
    jpeg_history_section(path, decoded)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        jpeg_history_section(path, decoded)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    _, tables, luma = read_jpeg_luma(path)
    c = time.process_time()
    for _ in range(repeats):
        double_jpeg(luma, tables[0])
    double_ms = (time.process_time() - c) / repeats * 1000
    return {"pixels": int(big.shape[0] * big.shape[1]),
            "section_wall_ms_median": round(float(np.median(wall)) * 1000, 2),
            "section_cpu_ms_median": round(float(np.median(cpu)) * 1000, 2),
            "double_jpeg_cpu_ms": round(double_ms, 2), "repeats": repeats}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/starter"))
    ap.add_argument("--out", type=Path, default=Path("reports/evidence"))
    ap.add_argument("--crops", type=int, default=200, help="128 px face crops used")
    ap.add_argument("--frames-per-video", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=20, help="timing repeats of the 1 MP section")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    orders = ("q1<q2", "q1>q2")
    for i, rgb in enumerate(crop_sources(args.data, args.crops, rng)):
        rows += [dict(r, group="crop 128 px") for r in pairs(rgb, orders[i % 2], rng)]
    frames = frame_sources(args.data, args.frames_per_video)
    for i, (_, rgb) in enumerate(frames):
        cut = off_grid(rgb, rng, 256)
        if cut is not None:
            rows += [dict(r, group="frame cut 256 px") for r in pairs(cut, orders[i % 2], rng)]
        rows += [dict(r, group="whole frame") for r in pairs(off_grid(rgb, rng, None), orders[(i + 1) % 2], rng)]
    for r in rows:
        mp = r["w"] * r["h"] / 1e6
        r["bucket"] = ("whole frame < 0.1 MP" if mp < 0.1 else "whole frame 0.1-0.3 MP" if mp < 0.3
                       else "whole frame >= 0.3 MP")
    big = [r for r in rows if r["group"] != "crop 128 px"]
    threshold = threshold_at_fpr(np.array([r["score"] for r in big if r["label"] == 0]), TARGET_FPR)
    results: dict[str, Any] = {"threshold": round(float(threshold), 4), "threshold_fpr_target": TARGET_FPR,
                               "all": group_metrics(rows, threshold), ">= 256 px": group_metrics(big, threshold)}
    for name in ("all", ">= 256 px"):
        part = rows if name == "all" else big
        for order in orders:
            results[f"{name}, {order}"] = group_metrics([r for r in part if r["order"] == order], threshold)
    for group in ("crop 128 px", "frame cut 256 px", "whole frame"):
        part = [r for r in rows if r["group"] == group]
        results[group] = group_metrics(part, threshold)
        for order in orders:
            results[f"{group}, {order}"] = group_metrics([r for r in part if r["order"] == order], threshold)
    for bucket in ("whole frame < 0.1 MP", "whole frame 0.1-0.3 MP", "whole frame >= 0.3 MP"):
        part = [r for r in rows if r["group"] == "whole frame" and r["bucket"] == bucket]
        if part:
            results[bucket] = group_metrics(part, threshold)
    args.out.mkdir(parents=True, exist_ok=True)
    cost = section_cost(frames[0][1] if frames else np.zeros((576, 720, 3), np.uint8), args.out, args.repeats)
    command = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    report = {"command": f"python benchmarks/bench_double_jpeg.py {command}",
              "seed": args.seed, "qualities": [int(QUALITIES[0]), int(QUALITIES[-1])],
              "sizes": {g: size_range([r for r in rows if r["group"] == g]) for g in
                        ("crop 128 px", "frame cut 256 px", "whole frame")},
              "results": results, "cost_1mp": cost, "runtime_s": round(time.perf_counter() - start, 1)}
    (args.out / "cost_1mp.jpg").unlink(missing_ok=True)
    (args.out / "double_jpeg.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "double_jpeg.md").write_text(markdown(report))
    print(markdown(report))
    return report


def markdown(rep: dict[str, Any]) -> str:
    res = rep["results"]
    lines = ["# Double-JPEG indicator: single vs double compression (issue #13)", "",
             f"Command: `{rep['command']}` (seed {rep['seed']}, q1, q2 drawn from "
             f"{rep['qualities'][0]}..{rep['qualities'][1]}, q1 != q2). Threshold {res['threshold']} fitted at "
             f"{res['threshold_fpr_target']:.0%} false alarms on the single-compressed images of >= 256 px.", "",
             "| group | single | double | AUC [95% CI] | TPR at thr | FPR at thr | q1 within 5 (detected) |",
             "|---|---|---|---|---|---|---|"]
    for name, m in res.items():
        if not isinstance(m, dict):
            continue
        q1 = "-" if m["q1_within_5_of_detected"] is None else f"{m['q1_within_5_of_detected']:.2f}"
        lines.append(f"| {name} | {m['n_single']} | {m['n_double']} | {m['auc']:.3f} [{m['auc_ci'][0]:.3f}, "
                     f"{m['auc_ci'][1]:.3f}] | {m['tpr_at_threshold']:.2f} | {m['fpr_at_threshold']:.2f} | {q1} |")
    c = rep["cost_1mp"]
    lines += ["", "Sizes: " + "; ".join(f"{g}: {s}" for g, s in rep["sizes"].items()), "",
              f"Cost of `jpeg_history_section` on a {c['pixels'] / 1e6:.2f} MP JPEG (q85), median of {c['repeats']} "
              f"runs: {c['section_cpu_ms_median']} ms CPU ({c['section_wall_ms_median']} ms wall), of which the "
              f"double-JPEG statistic {c['double_jpeg_cpu_ms']} ms CPU (the rest: luma decode, ELA re-save at "
              "full resolution, PNG). Run with OMP_NUM_THREADS=1; wall time depends on the machine's load.",
              f"Benchmark runtime {rep['runtime_s']} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
