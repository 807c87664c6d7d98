"""Double-JPEG indicator: AUC of single- vs double-compressed JPEGs built from the starter corpus, and the
JPEG section's cost on a 1 MP photo.

    .venv/bin/python benchmarks/bench_double_jpeg.py --data data/starter --out reports/evidence

Sources are never-JPEG pixels: the corpus's 128 px aligned face crops (PNG, resampled from their source, so
no earlier 8x8 grid survives) and frames decoded from its videos, cropped 1..7 px off the codec's block grid.
Each source gives one single-compressed JPEG (q2) and one double-compressed JPEG (q1 then q2, q1 != q2, both
drawn from 50..95; sources alternate q1 < q2 and q1 > q2, the hard case). Three size groups: the crops at
their native 128 px, 256x256 cuts of frames, and whole frames (176x144 .. 960x540).

Fit and measure are split by the corpus's own `split` column, never by image: the logistic regression
(forensics/evidence/double_jpeg_model.json, written to --model-out) is fitted on JPEGs made from `train`
sources only, its feature set and C picked by grouped cross-validation there, and its threshold set at 5%
false alarms on the out-of-fold scores of the train singles of >= 256 px; every AUC in the report's table
(but the first row) is on JPEGs made from `val`/`test` sources, beside the old fit score's AUC on the same
images. Writes double_jpeg.md and double_jpeg.json to --out.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from forensics.data.manifest import read_manifest
from forensics.data.media import iter_frames, probe_video, read_image
from forensics.evidence.double_jpeg import (MODEL_PATH, DoubleJpegModel, DoubleJpegResult, double_jpeg,
                                            feature_names, load_model)
from forensics.evidence.jpeg import jpeg_history_section, read_jpeg_luma
from forensics.metrics import bootstrap_ci, roc_auc, threshold_at_fpr

QUALITIES = np.arange(50, 96)
TARGET_FPR = 0.05
C_GRID = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strengths tried by the grouped cross-validation


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def recompress(data: bytes, quality: int) -> bytes:
    """Decode a JPEG and save it again: the second compression of a double-compressed file."""
    with Image.open(io.BytesIO(data)) as im:
        return jpeg_bytes(np.asarray(im.convert("RGB")), quality)


def score_bytes(data: bytes) -> DoubleJpegResult:
    """The double-compression statistics of JPEG bytes, through the section's own reader."""
    _, tables, luma = read_jpeg_luma(io.BytesIO(data))
    assert luma is not None
    return double_jpeg(luma, tables[0])


def held_out(m: pd.DataFrame, part: str) -> pd.DataFrame:
    """The corpus's rows of one part: "train" (the model's fit) or "test" (its val and test splits: other
    people and other videos, never seen by the fit)."""
    return m[m["split"] == "train"] if part == "train" else m[m["split"] != "train"]


def crop_sources(data: Path, n: int, part: str) -> list[tuple[str, np.ndarray]]:
    """`n` aligned face crops (PNG) of distinct images/frames of one part, spread over identities, with their
    identity."""
    m = held_out(read_manifest(data / "manifest.parquet"), part)
    m = m[m["media"].isin(["image", "frame"])]
    pick = m.sample(frac=1.0, random_state=0).groupby("identity").head(n)
    pick = pick.sample(min(n, len(pick)), random_state=0)
    return [(str(ident), read_image(data / p)) for ident, p in zip(pick["identity"], pick["path"])]


def frame_sources(data: Path, per_video: int, part: str) -> list[tuple[str, np.ndarray]]:
    """`per_video` evenly spaced decoded frames of each corpus video of one part, full size, with the video's
    name."""
    m = held_out(read_manifest(data / "manifest.parquet"), part)
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
        r = score_bytes(blob)
        rows.append({"label": label, "q1": int(q1) if label else None, "q2": int(q2), "order": order,
                     "fit_score": r.fit_score, "q1_est": r.q1_quality, "h": rgb.shape[0], "w": rgb.shape[1],
                     "features": r.features.tolist()})
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
    """AUC of the model's score and of the histogram-fit score alone on the same images, and the model's rates
    at the threshold."""
    y = np.array([r["label"] for r in rows])
    s = np.array([r["score"] for r in rows])
    old = np.array([r["fit_score"] for r in rows])
    doubles = [r for r in rows if r["label"] == 1 and r["score"] >= threshold]
    q1_ok = [abs(r["q1_est"] - r["q1"]) <= 5 for r in doubles if r["q1_est"] is not None]
    return {"n_single": int((y == 0).sum()), "n_double": int((y == 1).sum()), "auc": round(roc_auc(y, s), 4),
            "auc_ci": [round(v, 4) for v in bootstrap_ci(y, s, "auc", n_boot=1000, seed=0)],
            "fit_score_auc": round(roc_auc(y, old), 4),
            "fit_score_auc_ci": [round(v, 4) for v in bootstrap_ci(y, old, "auc", n_boot=1000, seed=0)],
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


def collect(args: argparse.Namespace, part: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Single/double pairs of one part of the corpus (crops, 256 px frame cuts, whole frames), each row with
    its part, group, source (identity or video: the unit the fit's folds keep together) and features."""
    orders = ("q1<q2", "q1>q2")
    crops = args.crops if part == "test" else args.train_crops
    per_video = args.frames_per_video if part == "test" else args.train_frames_per_video
    rows: list[dict[str, Any]] = []
    for i, (ident, rgb) in enumerate(crop_sources(args.data, crops, part)):
        rows += [dict(r, group="crop 128 px", source=ident) for r in pairs(rgb, orders[i % 2], rng)]
    for i, (video, rgb) in enumerate(frame_sources(args.data, per_video, part)):
        cut = off_grid(rgb, rng, 256)
        if cut is not None:
            rows += [dict(r, group="frame cut 256 px", source=video) for r in pairs(cut, orders[i % 2], rng)]
        rows += [dict(r, group="whole frame", source=video)
                 for r in pairs(off_grid(rgb, rng, None), orders[(i + 1) % 2], rng)]
    for r in rows:
        mp = r["w"] * r["h"] / 1e6
        r["part"] = part
        r["bucket"] = ("whole frame < 0.1 MP" if mp < 0.1 else "whole frame 0.1-0.3 MP" if mp < 0.3
                       else "whole frame >= 0.3 MP")
    return rows


def cached_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train and test rows, from --rows-cache when it holds rows of the same settings (refitting the model
    then takes seconds, not minutes)."""
    key = {k: str(getattr(args, k)) for k in ("data", "crops", "train_crops", "frames_per_video",
                                               "train_frames_per_video", "seed")}
    key["features"] = ",".join(feature_names())
    if args.rows_cache is not None and args.rows_cache.exists():
        cached = json.loads(args.rows_cache.read_text())
        if cached["key"] == key:
            return cached["rows"]
    rng = np.random.default_rng(args.seed)
    rows = collect(args, "train", rng) + collect(args, "test", rng)
    if args.rows_cache is not None:
        args.rows_cache.write_text(json.dumps({"key": key, "rows": rows}))
    return rows


def feature_sets() -> dict[str, list[str]]:
    """The candidate inputs of the model; the grouped cross-validation on the train part picks one."""
    names = feature_names()
    scalars = ["fit_score", "log_mean_step", "joint_gain", "joint_mean_gain"]
    per_frequency = [n for n in names if n.startswith(("gain_", "log_single", "log_double"))]
    digits = [n for n in names if n.startswith("first_digit")]
    return {"scalars": scalars, "scalars + per-frequency fit": scalars + per_frequency,
            "scalars + first digits": scalars + digits, "all": scalars + per_frequency + digits}


def fit_model(rows: list[dict[str, Any]], c_grid: tuple[float, ...]) -> tuple[DoubleJpegModel, dict[str, Any]]:
    """Logistic regression on the train rows: the feature set and C picked by grouped 5-fold cross-validation
    (folds never split an identity or video), then refitted on all of them. Also returns the out-of-fold
    scores, from which the threshold is fitted (in-fold scores would be optimistic)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    index = {n: i for i, n in enumerate(feature_names())}
    full = np.array([r["features"] for r in rows], np.float64)  # [N,D]
    y = np.array([r["label"] for r in rows])
    folds = list(GroupKFold(n_splits=5).split(full, y, np.array([r["source"] for r in rows])))
    cv: dict[str, dict[str, float]] = {}
    best: tuple[float, str, float, np.ndarray] | None = None
    for set_name, names in feature_sets().items():
        x = full[:, [index[n] for n in names]]  # [N,K]
        mean = np.nan_to_num(np.nanmean(x, axis=0))
        scale = np.nanstd(x, axis=0)
        scale[~(scale > 1e-9)] = 1.0
        z = np.nan_to_num((x - mean) / scale, nan=0.0)
        cv[set_name] = {}
        for c in c_grid:
            oof = np.zeros(len(y))
            for tr, va in folds:
                oof[va] = LogisticRegression(C=c, max_iter=5000).fit(z[tr], y[tr]).predict_proba(z[va])[:, 1]
            auc = roc_auc(y, oof)
            cv[set_name][str(c)] = round(auc, 4)
            if best is None or auc > best[0]:
                best = (auc, set_name, c, oof)
    assert best is not None
    _, set_name, c, oof = best
    names = feature_sets()[set_name]
    x = full[:, [index[n] for n in names]]
    mean = np.nan_to_num(np.nanmean(x, axis=0))
    scale = np.nanstd(x, axis=0)
    scale[~(scale > 1e-9)] = 1.0
    lr = LogisticRegression(C=c, max_iter=5000).fit(np.nan_to_num((x - mean) / scale, nan=0.0), y)
    model = DoubleJpegModel(tuple(names), mean, scale, lr.coef_[0].astype(np.float64), float(lr.intercept_[0]),
                            float("nan"))
    return model, {"features": set_name, "C": c, "cv_auc": cv, "oof": oof.tolist()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/starter"))
    ap.add_argument("--out", type=Path, default=Path("reports/evidence"))
    ap.add_argument("--model-out", type=Path, default=MODEL_PATH, help="where the fitted model's JSON goes")
    ap.add_argument("--crops", type=int, default=200, help="128 px face crops of the test part")
    ap.add_argument("--train-crops", type=int, default=400, help="128 px face crops of the train part")
    ap.add_argument("--frames-per-video", type=int, default=24, help="frames per test-part video")
    ap.add_argument("--train-frames-per-video", type=int, default=64, help="frames per train-part video")
    ap.add_argument("--repeats", type=int, default=20, help="timing repeats of the 1 MP section")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows-cache", type=Path, default=None, help="JSON of computed rows, reused when present")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    rows = cached_rows(args)
    train = [r for r in rows if r["part"] == "train"]
    test = [r for r in rows if r["part"] == "test"]
    model, fit = fit_model(train, C_GRID)
    for r, p in zip(train, fit.pop("oof")):
        r["score"] = p  # out-of-fold: what the threshold is fitted on
    for r in test:
        r["score"] = model.probability(np.array(r["features"], np.float64))
    train_big = [r for r in train if r["group"] != "crop 128 px" and r["label"] == 0]
    threshold = threshold_at_fpr(np.array([r["score"] for r in train_big]), TARGET_FPR)
    results: dict[str, Any] = {"threshold": round(float(threshold), 4), "threshold_fpr_target": TARGET_FPR,
                               "train (out-of-fold)": group_metrics(train, threshold),
                               "test": group_metrics(test, threshold)}
    big = [r for r in test if r["group"] != "crop 128 px"]
    results[">= 256 px"] = group_metrics(big, threshold)
    orders = ("q1<q2", "q1>q2")
    for name, part in (("test", test), (">= 256 px", big)):
        for order in orders:
            results[f"{name}, {order}"] = group_metrics([r for r in part if r["order"] == order], threshold)
    for group in ("crop 128 px", "frame cut 256 px", "whole frame"):
        part = [r for r in test if r["group"] == group]
        results[group] = group_metrics(part, threshold)
        for order in orders:
            results[f"{group}, {order}"] = group_metrics([r for r in part if r["order"] == order], threshold)
    for bucket in ("whole frame < 0.1 MP", "whole frame 0.1-0.3 MP", "whole frame >= 0.3 MP"):
        part = [r for r in test if r["group"] == "whole frame" and r["bucket"] == bucket]
        if part:
            results[bucket] = group_metrics(part, threshold)
    command = "python benchmarks/bench_double_jpeg.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    parts = {p: {"rows": len([r for r in rows if r["part"] == p]),
                 "sources": sorted({r["source"] for r in rows if r["part"] == p})} for p in ("train", "test")}
    model = dataclasses.replace(model, threshold=round(float(threshold), 4))
    args.model_out.write_text(json.dumps(dict(model.to_json(), C=fit["C"], feature_set=fit["features"],
                                              fitted_by=command,
                                              fitted_on=parts["train"]), indent=1) + "\n")
    load_model.cache_clear()
    args.out.mkdir(parents=True, exist_ok=True)
    frame = next(iter(frame_sources(args.data, 1, "train")), ("", np.zeros((576, 720, 3), np.uint8)))[1]
    cost = section_cost(frame, args.out, args.repeats)
    report = {"command": command, "seed": args.seed, "qualities": [int(QUALITIES[0]), int(QUALITIES[-1])],
              "parts": parts, "fit": fit, "model": str(args.model_out),
              "sizes": {g: size_range([r for r in test if r["group"] == g]) for g in
                        ("crop 128 px", "frame cut 256 px", "whole frame")},
              "results": results, "cost_1mp": cost, "runtime_s": round(time.perf_counter() - start, 1)}
    (args.out / "cost_1mp.jpg").unlink(missing_ok=True)
    (args.out / "double_jpeg.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "double_jpeg.md").write_text(markdown(report))
    print(markdown(report))
    return report


def markdown(rep: dict[str, Any]) -> str:
    res = rep["results"]
    parts, fit = rep["parts"], rep["fit"]
    lines = ["# Double-JPEG indicator: single vs double compression (issue #13)", "",
             f"Command: `{rep['command']}` (seed {rep['seed']}, q1, q2 drawn from "
             f"{rep['qualities'][0]}..{rep['qualities'][1]}, q1 != q2).", "",
             f"**Fit** (model `{Path(rep['model']).name}`, a logistic regression): the corpus's `train` split "
             f"only, {parts['train']['rows']} JPEGs made from the sources {', '.join(parts['train']['sources'])}. "
             f"Features \"{fit['features']}\" and C = {fit['C']} picked by grouped 5-fold cross-validation on "
             "them (folds keep an identity or video together); out-of-fold AUC by feature set and C:", "",
             *[f"- {k}: " + ", ".join(f"C={c}: {a}" for c, a in v.items()) for k, v in fit["cv_auc"].items()],
             "",
             "(scalars: the histogram-fit score, the log mean luma step, and the gains of one IJG first table "
             "fitted to all 15 frequencies at once, weighted and mean; per-frequency fit: each frequency's gain "
             "and log misfits; first digits: leading-digit shares of 20 AC modes, Fu, Shi & Su 2007.) "
             f"Threshold {res['threshold']} fitted at {res['threshold_fpr_target']:.0%} false alarms on the "
             "out-of-fold scores of the train part's single-compressed images of >= 256 px.", "",
             f"**Measure**: the `val` and `test` splits (other people, other videos), {parts['test']['rows']} "
             f"JPEGs made from the sources {', '.join(parts['test']['sources'])}. Every row below except the "
             "first is on these test images. \"fit score\" is the previous indicator (the histogram-fit "
             "statistic alone) on the same images.", "",
             "| group | single | double | AUC [95% CI] | fit score AUC [95% CI] | TPR at thr | FPR at thr "
             "| q1 within 5 (detected) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in res.items():
        if not isinstance(m, dict):
            continue
        q1 = "-" if m["q1_within_5_of_detected"] is None else f"{m['q1_within_5_of_detected']:.2f}"
        lines.append(f"| {name} | {m['n_single']} | {m['n_double']} | {m['auc']:.3f} [{m['auc_ci'][0]:.3f}, "
                     f"{m['auc_ci'][1]:.3f}] | {m['fit_score_auc']:.3f} [{m['fit_score_auc_ci'][0]:.3f}, "
                     f"{m['fit_score_auc_ci'][1]:.3f}] | {m['tpr_at_threshold']:.2f} | {m['fpr_at_threshold']:.2f} "
                     f"| {q1} |")
    c = rep["cost_1mp"]
    lines += ["", "Test sizes: " + "; ".join(f"{g}: {s}" for g, s in rep["sizes"].items()), "",
              f"Cost of `jpeg_history_section` on a {c['pixels'] / 1e6:.2f} MP JPEG (q85), median of {c['repeats']} "
              f"runs: {c['section_cpu_ms_median']} ms CPU ({c['section_wall_ms_median']} ms wall), of which the "
              f"double-JPEG statistics and model {c['double_jpeg_cpu_ms']} ms CPU (the rest: luma decode, ELA "
              "re-save at full resolution, PNG). Run with OMP_NUM_THREADS=1; wall time depends on the machine's "
              "load.", f"Benchmark runtime {rep['runtime_s']} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
