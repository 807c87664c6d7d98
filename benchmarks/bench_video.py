"""Video benchmark: clip-level ("video-level") AUC of frame-score aggregation, the temporal detector and their
fusion, on held-out source videos, clean and after H.264 re-encoding; per fake type.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video.py --data data/starter/manifest.parquet \
        --work runs/video --out reports/video

1. Builds (or resumes) the clip dataset (`generators.video_dataset`: real re-encodes, three face-swap variants,
   CycleGAN and StarGAN v2 per-frame translations, self-blends) into WORK/dataset.
2. For every clip and condition (clean, H.264 CRF 23, CRF 35 via PyAV), decodes it, finds and tracks the face
   with MTCNN on the clip itself (every 4th frame, shrunk to 360 px, interpolated between) (nothing from the generator: as a scan would), and keeps the main track's
   temporal features and 64 px aligned crops (cached in WORK/features, so a rerun resumes).
3. Scores held-out source videos two ways, base models never seeing the video they score:
   - leave-one-video-out (headline; every source video held out once, so every clip gets a score): the image
     detectors (spectral, dct; trained on frame crops of the other videos) and the temporal detector are
     trained on the other videos; the fusion (stacked logistic regression) is fitted on out-of-fold base
     scores of those other videos (each scored by base models trained without it);
   - the dataset's split: base models on train videos, fusion on val videos, metrics on test videos.
   Base models train on all three conditions of their videos (reals and fakes alike), so compression is
   neither a signal nor unseen.
4. Writes OUT/video_bench.json, OUT/video_bench.md and OUT/timeline.png (per-frame scores of a real clip and
   its naive face swap), and prints "source videos shared across splits: N".
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensics.data.faces import FaceDetector
from forensics.data.manifest import dataset_root, read_manifest
from forensics.data.media import iter_frames, write_bytes_atomic
from forensics.metrics import compute_metrics
from forensics.video.aggregate import AGGREGATIONS, aggregate_all
from forensics.video.codec import perturb_video
from forensics.video.features import DETECT_EVERY, DETECT_MAX_SIDE, TRACK_FEATURES, aligned_crops, clip_track_records
from forensics.video.fusion import FusionModel
from forensics.video.release import clip_table

CONDITIONS = ("none", "crf23", "crf35")
IMAGE_DETECTORS = ("spectral", "dct")
FUSION_INPUTS = ("spectral:mean", "spectral:confident", "dct:mean", "dct:confident", "temporal")
# Added after the first run, whose 5-input fusion (fitted on out-of-fold scores of only 3-4 videos per fold)
# flipped weight signs between folds and scored below its inputs: two inputs, stronger regularisation.
FUSION_SMALL, FUSION_SMALL_C = ("dct:mean", "temporal"), 0.1
CROP = 64  # the image detectors' resolution (the demo's)
TRAIN_FRAME_EVERY = 4  # image-detector training uses every 4th crop of a track (adjacent frames are near-twins)


def log(msg: str, t0: float = time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)


# -- 1. dataset ------------------------------------------------------------------------------------------------

def build_dataset(args: argparse.Namespace) -> Path:
    from generators.video_dataset import VideoDatasetOptions, synthesize_video_dataset

    opts = VideoDatasetOptions(clip_seconds=args.clip_seconds, max_seconds=args.max_seconds or None,
                               max_clips=args.max_clips,
                               split=args.split, seed=args.seed)
    ckpts = [f"generators/checkpoints/{n}" for n in ("faceswap_small", "cyclegan_small", "stargan_v2_small")]
    out = args.work / "dataset"
    synthesize_video_dataset(ckpts, args.data, out, "all", opts, log=lambda m: log(m.strip()))
    return out / "manifest.parquet"


def shared_sources(manifest: Path) -> int:
    """Source videos (group_id video:<id>) with rows in more than one split."""
    df = read_manifest(manifest)
    return int((df.groupby("group_id")["split"].nunique() > 1).sum())


# -- 2. features -----------------------------------------------------------------------------------------------

def _cache_path(work: Path, clip_id: str, cond: str) -> Path:
    return work / "features" / f"{clip_id.replace(':', '_')}__{cond}.npz"


def extract(row: dict[str, Any], cond: str, root: Path, work: Path, detector: FaceDetector) -> dict[str, Any]:
    """Main-track features and aligned crops of one clip under one condition (cached)."""
    path = _cache_path(work, row["sample_id"], cond)
    if path.exists():
        z = np.load(path, allow_pickle=False)
        feats = json.loads(str(z["features"]))
        return {"features": feats, "crops": z["crops"], "frame_idx": z["frame_idx"], "cached": True}
    frames = [f for _, f in iter_frames(root / row["path"])]
    frames = perturb_video(frames, float(row["fps"]), cond)
    recs = clip_track_records(frames, list(range(len(frames))), detector, every=DETECT_EVERY, max_side=DETECT_MAX_SIDE)
    if recs:
        track = recs[0]["face_track"]
        crops = aligned_crops([frames[i] for i in track.frame_idx], track, size=CROP)
        feats, idx = recs[0]["features"], track.frame_idx
    else:
        feats, crops, idx = None, np.zeros((0, CROP, CROP, 3), np.uint8), np.zeros(0, np.int64)
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, features=np.array(json.dumps(feats)), crops=crops, frame_idx=idx)
    write_bytes_atomic(path, buf.getvalue())
    return {"features": feats, "crops": crops, "frame_idx": idx, "cached": False}


def extract_all(clips: pd.DataFrame, root: Path, work: Path) -> tuple[pd.DataFrame, list[np.ndarray], list[np.ndarray]]:
    """-> (table: one row per (clip, condition) with a face track, its features and labels; crops; frame idx)"""
    detector = FaceDetector(min_score=0.9, min_face_size=32)
    rows, crops, idxs, missing = [], [], [], []
    total = len(clips) * len(CONDITIONS)
    started, computed = time.perf_counter(), 0
    for k, row in enumerate(clips.to_dict("records")):
        for cond in CONDITIONS:
            rec = extract(row, cond, root, work, detector)
            computed += not rec["cached"]
            if rec["features"] is None:
                missing.append(f"{row['sample_id']} [{cond}]")
                continue
            rows.append({**row, "cond": cond, **rec["features"]})
            crops.append(rec["crops"])
            idxs.append(rec["frame_idx"])
        if (k + 1) % 20 == 0:
            log(f"features: {(k + 1) * len(CONDITIONS)}/{total} clip-conditions")
    if missing:
        log(f"no face track of 5+ frames in {len(missing)} clip-conditions (left out): {missing[:6]}")
    log(f"features: {computed} clip-conditions computed in {time.perf_counter() - started:.0f} s, "
        f"{total - computed} read from {work / 'features'}")
    return pd.DataFrame(rows), crops, idxs


# -- 3. scoring ------------------------------------------------------------------------------------------------

def base_scores(table: pd.DataFrame, crops: list[np.ndarray], train: np.ndarray, score: np.ndarray,
                keep_frames: bool = False) -> pd.DataFrame:
    """Base models fitted on rows `train` (bool [N]) score rows `score`: frame-score aggregations of each
    image detector and the temporal detector's P(fake). -> one row per scored row (index = table index)"""
    import forensics.detectors as registry

    y = table["label"].to_numpy()
    out = pd.DataFrame(index=table.index[score])
    tr = np.flatnonzero(train)
    x_img = np.concatenate([crops[i][::TRAIN_FRAME_EVERY] for i in tr])  # [M,64,64,3]
    y_img = np.concatenate([np.full(len(crops[i][::TRAIN_FRAME_EVERY]), y[i]) for i in tr])
    frame_scores: dict[str, list[np.ndarray]] = {}
    for name in IMAGE_DETECTORS:
        det = registry.create(name).fit(x_img, y_img)
        per = [det.predict_proba(crops[i]) for i in np.flatnonzero(score)]
        frame_scores[name] = per
        agg = pd.DataFrame([aggregate_all(p) for p in per], index=out.index)
        for how in AGGREGATIONS:
            out[f"{name}:{how}"] = agg[how]
    temporal = registry.create("temporal").fit(table.loc[train, list(TRACK_FEATURES)], y[train])
    out["temporal"] = temporal.predict_proba(table.loc[score, list(TRACK_FEATURES)])
    if keep_frames:
        out.attrs["frame_scores"] = frame_scores
        out.attrs["temporal"] = temporal
    return out


def leave_one_video_out(table: pd.DataFrame, crops: list[np.ndarray]) -> pd.DataFrame:
    """Every source video scored by base models trained without it, fused by a stacking model fitted on
    out-of-fold scores of the other videos."""
    sources = sorted(table["source"].unique())
    parts = []
    for v in sources:
        test = (table["source"] == v).to_numpy()
        rest = [u for u in sources if u != v]
        inner = pd.concat([base_scores(table, crops, (~test) & (table["source"] != u).to_numpy(),
                                       (table["source"] == u).to_numpy()) for u in rest])
        inner_y = table.loc[inner.index, "label"].to_numpy()
        fusion = FusionModel(FUSION_INPUTS).fit(inner, inner_y)
        small = FusionModel(FUSION_SMALL, C=FUSION_SMALL_C).fit(inner, inner_y)
        outer = base_scores(table, crops, ~test, test, keep_frames=True)
        outer["fused"] = fusion.predict_proba(outer)
        outer["fused_small"] = small.predict_proba(outer)
        outer.attrs.pop("temporal", None)
        parts.append(outer)
        frames = outer.attrs.get("frame_scores", {})
        outer.attrs = {}
        outer["frames"] = [json.dumps({n: np.round(frames[n][k], 4).tolist() for n in frames})
                           for k in range(len(outer))]
        log(f"leave-one-video-out: {v} scored ({int(test.sum())} clip-conditions; fusion weights {fusion.weights()})")
    return pd.concat(parts).sort_index()


def split_protocol(table: pd.DataFrame, crops: list[np.ndarray], models: Path) -> tuple[pd.DataFrame | None, dict]:
    """Base models on train videos, fusion on val videos, scores on test videos. Saves the models."""
    split = table["split"].to_numpy()
    if not all((split == s).any() for s in ("train", "val", "test")):
        return None, {"skipped": f"splits present: {sorted(set(split))}"}
    train, val, test = split == "train", split == "val", split == "test"
    val_scores = base_scores(table, crops, train, val)
    val_y = table.loc[val_scores.index, "label"].to_numpy()
    fusion = FusionModel(FUSION_INPUTS).fit(val_scores, val_y)
    small = FusionModel(FUSION_SMALL, C=FUSION_SMALL_C).fit(val_scores, val_y)
    test_scores = base_scores(table, crops, train, test, keep_frames=True)
    temporal = test_scores.attrs["temporal"]
    test_scores.attrs = {}
    test_scores["fused"] = fusion.predict_proba(test_scores)
    test_scores["fused_small"] = small.predict_proba(test_scores)
    # the temporal detector's threshold calibrated on validation reals (5% FPR), then saved with the fusion
    import forensics.detectors as registry

    y = table["label"].to_numpy()
    cal = registry.create("temporal").fit(table.loc[train, list(TRACK_FEATURES)], y[train],
                                          table.loc[val, list(TRACK_FEATURES)], y[val])
    cal.save(models / "temporal")
    fusion.save(models / "fusion")
    info = {"videos": {s: sorted(table.loc[split == s, "source"].unique()) for s in ("train", "val", "test")},
            "temporal_weights": temporal.weights(), "fusion_weights": fusion.weights(),
            "temporal_threshold_val_fpr5": cal.threshold_, "models": str(models)}
    return test_scores, info


# -- 4. metrics and report -------------------------------------------------------------------------------------

SCORE_NAMES = tuple(f"{d}:{h}" for d in IMAGE_DETECTORS for h in AGGREGATIONS) + ("temporal", "fused", "fused_small")


def within_video_auc(part: pd.DataFrame, name: str) -> float:
    """Mean over source videos of the AUC of that video's fake clips against its own real clips: does a score
    rank a video's fakes above the same video's reals, whatever its level on other videos?"""
    from forensics.metrics import roc_auc

    per = [roc_auc(g["label"].to_numpy(), g[name].to_numpy()) for _, g in part.groupby("source")]
    per = [a for a in per if np.isfinite(a)]
    return float(np.mean(per)) if per else float("nan")


def summarize(table: pd.DataFrame, scores: pd.DataFrame, n_boot: int) -> dict[str, Any]:
    """AUC with 95% CI per condition x score, overall and per fake type (all reals vs that type's fakes)."""
    df = table.loc[scores.index, ["label", "fake_type", "cond", "source"]].join(scores)
    out: dict[str, Any] = {}
    for cond in CONDITIONS:
        part = df[df["cond"] == cond]
        res: dict[str, Any] = {"n_real": int((part["label"] == 0).sum()), "n_fake": int((part["label"] == 1).sum())}
        for name in SCORE_NAMES:
            m = compute_metrics(part["label"].to_numpy(), part[name].to_numpy(), n_boot=n_boot, ci_metrics=("auc",))
            entry = {"auc": m["auc"], "auc_ci": m["auc_ci"], "ap": m["ap"], "tpr@fpr5%": m["tpr@fpr5%"],
                     "within_video_auc": within_video_auc(part, name), "by_type": {}}
            reals = part[part["label"] == 0]
            for ft in sorted(part.loc[part["label"] == 1, "fake_type"].unique()):
                sub = pd.concat([reals, part[(part["label"] == 1) & (part["fake_type"] == ft)]])
                mt = compute_metrics(sub["label"].to_numpy(), sub[name].to_numpy(), n_boot=n_boot, ci_metrics=("auc",))
                entry["by_type"][ft] = {"auc": mt["auc"], "auc_ci": mt["auc_ci"], "n_fake": mt["n_fake"]}
            res[name] = entry
        out[cond] = res
    return out


def whole_videos(table: pd.DataFrame, scores: pd.DataFrame, n_boot: int) -> dict[str, Any]:
    """Whole-video level: a video (one kind of one source video, its clips concatenated) scores the mean of its
    clips' scores. AUC with CI per condition for the temporal detector and both fusions."""
    df = table.loc[scores.index, ["label", "fake_type", "cond", "source"]].join(scores)
    names = ("dct:mean", "temporal", "fused", "fused_small")
    out: dict[str, Any] = {}
    for cond in CONDITIONS:
        per = df[df["cond"] == cond].groupby(["source", "fake_type"])[["label", *names]].mean()
        out[cond] = {"n_real": int((per["label"] == 0).sum()), "n_fake": int((per["label"] == 1).sum())}
        for name in names:
            m = compute_metrics(per["label"].to_numpy(), per[name].to_numpy(), n_boot=n_boot, ci_metrics=("auc",))
            out[cond][name] = {"auc": m["auc"], "auc_ci": m["auc_ci"]}
    return out


def _fmt(e: dict[str, Any]) -> str:
    lo, hi = e["auc_ci"]
    return f"{e['auc']:.3f} [{lo:.3f}, {hi:.3f}]"


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Video benchmark: frame aggregation, temporal detector, fusion", "",
             f"Command: `{result['command']}` ({result['wall_s']:.0f} s wall for this invocation on a shared 2-core "
             "CPU; the clip dataset and the per-clip features are cached in --work, so a rerun reuses them: see "
             "the run log for the first run's times).", "",
             f"Dataset: {result['dataset']['clips']} clips ({result['dataset']['by_type']}) from "
             f"{result['dataset']['source_videos']} source videos ({result['dataset']['clip_seconds']} s clips, at most "
             f"{result['dataset']['max_clips']} per video, spread over "
             f"{'the whole video' if not result['dataset']['max_seconds'] else 'its first %s s' % result['dataset']['max_seconds']}). "
             f"Source videos shared across splits: {result['shared_sources']}. Scored clip-conditions with a face "
             f"track: {result['scored']} (left out: {result['left_out']}).", "",
             "Every score is a clip's (a 2 s video's) P(fake); AUC with a 95% stratified bootstrap CI. Image "
             "detectors: spectral and dct, trained on 64 px aligned crops of the training videos' frames "
             "(every 4th frame of each clip's face track, all three conditions).", ""]
    for proto, title in (("lovo", "Leave one source video out (every clip scored by models that never saw its video)"),
                         ("split", "The dataset's split (train / val for the fusion / test)")):
        res = result.get(proto)
        if not res or "metrics" not in res:
            lines += [f"## {title}", "", f"Not run: {res.get('skipped') if res else 'no result'}", ""]
            continue
        m = res["metrics"]
        lines += [f"## {title}", "",
                  "Reals / fakes per condition: " + ", ".join(f"{c}: {m[c]['n_real']} / {m[c]['n_fake']}" for c in CONDITIONS),
                  "", "AUC [95% CI] over all clips (one threshold for every video), then the mean within-video AUC "
                  "(each source video's fake clips against its own real clips):", "",
                  "| score | clean | H.264 CRF 23 | H.264 CRF 35 | within-video: clean / CRF 23 / CRF 35 |",
                  "|---|---|---|---|---|"]
        if min(m[c]["n_real"] for c in CONDITIONS) < 5:
            lines[-4:-4] = [f"**Too few real clips for a meaningful figure** (n_real = {m['none']['n_real']}); shown "
                            "for completeness.", ""]
        for name in SCORE_NAMES:
            lines.append(f"| {name} | " + " | ".join(_fmt(m[c][name]) for c in CONDITIONS) + " | "
                         + " / ".join(f"{m[c][name]['within_video_auc']:.3f}" for c in CONDITIONS) + " |")
        types = sorted(m["none"]["fused"]["by_type"])
        lines += ["", "Per fake type (all reals vs that type's fakes), AUC:", "",
                  "| score | condition | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]
        for name in ("spectral:mean", "dct:mean", "temporal", "fused", "fused_small"):
            for c in CONDITIONS:
                lines.append(f"| {name} | {c} | " + " | ".join(f"{m[c][name]['by_type'][t]['auc']:.3f}" for t in types) + " |")
        if "whole_videos" in res:
            w = res["whole_videos"]
            lines += ["", f"Whole videos (mean of a video's clip scores; {w['none']['n_real']} real / "
                      f"{w['none']['n_fake']} fake videos per condition), AUC [95% CI]:", "",
                      "| score | clean | H.264 CRF 23 | H.264 CRF 35 |", "|---|---|---|---|"]
            for name in ("dct:mean", "temporal", "fused", "fused_small"):
                lines.append(f"| {name} | " + " | ".join(_fmt(w[c][name]) for c in CONDITIONS) + " |")
        if "info" in res:
            lines += ["", f"```\n{json.dumps(res['info'], indent=1)}\n```"]
        lines.append("")
    lines += ["## Targets (issue 11)", ""] + [f"- {t}" for t in result["targets"]] + [""]
    return "\n".join(lines)


def targets(m: dict[str, Any], split: dict[str, Any] | None) -> list[str]:
    """The issue's targets, for both protocols (a point estimate at the bar is reported with its CI)."""
    def check(entry: dict[str, Any] | None, bar: float | None, text: str) -> str:
        if entry is None:
            return f"{text}: not measured"
        ci = f" [{entry['auc_ci'][0]:.3f}, {entry['auc_ci'][1]:.3f}]" if "auc_ci" in entry else ""
        if bar is None:
            return f"{text}: {entry['auc']:.3f}{ci}"
        return f"{text}: {entry['auc']:.3f}{ci} (target >= {bar}: {'met' if entry['auc'] >= bar else 'NOT met'})"
    out = []
    for name, res in (("leave-one-video-out", m), ("corpus split, test videos", split)):
        if res is None:
            out.append(f"{name}: not run")
            continue
        out += [check(res["none"]["fused"], 0.95, f"fused clip-level AUC, clean, {name}"),
                check(res["none"]["temporal"]["by_type"].get("faceswap_naive"), 0.80,
                      f"temporal alone on naive swaps, clean, {name}"),
                check(res["crf35"]["temporal"], 0.75, f"temporal alone, all fakes, after H.264 CRF 35, {name}"),
                check(res["none"]["temporal"]["by_type"].get("faceswap_smoothed"), None,
                      f"temporal alone on smoothed swaps, clean (meant to be hard; no target), {name}")]
    return out


def timeline(table: pd.DataFrame, scores: pd.DataFrame, path: Path) -> str:
    """Per-frame image scores of one real clip and its naive face swap (clean), with the clip-level scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = table.loc[scores.index].join(scores[["frames", "temporal", "fused"]])
    df = df[df["cond"] == "none"]
    real = df[df["label"] == 0].sort_values(["source", "clip_index"])
    pick = None
    for r in real.itertuples():
        fake = df[(df["fake_type"] == "faceswap_naive") & (df["source"] == r.source) & (df["clip_index"] == r.clip_index)]
        if len(fake):
            pick = (r, next(fake.itertuples()))
            break
    if pick is None:
        return "no real clip with a naive swap of the same clip"
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True, sharey=True)
    for ax, r in zip(axes, pick):
        frames = json.loads(r.frames)
        for name, values in frames.items():
            ax.plot(values, label=f"{name} P(fake) per frame")
        ax.axhline(r.temporal, color="k", ls="--", label=f"temporal (clip) {r.temporal:.2f}")
        ax.axhline(r.fused, color="r", ls=":", label=f"fused (clip) {r.fused:.2f}")
        ax.set_title(f"{r.sample_id} ({'fake: ' + r.fake_type if r.label else 'real'})", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("P(fake)")
        ax.legend(fontsize=7, loc="center right")
    axes[-1].set_xlabel("tracked frame of the clip")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"{pick[0].sample_id} vs {pick[1].sample_id}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/starter/manifest.parquet"))
    ap.add_argument("--work", type=Path, default=Path("runs/video"))
    ap.add_argument("--out", type=Path, default=Path("reports/video"))
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--max-seconds", type=float, default=0.0, help="seconds used per source video (0: all)")
    ap.add_argument("--max-clips", type=int, default=6, help="clips per source video (spread over it)")
    ap.add_argument("--split", default="corpus", help="corpus | videos (see generators.video_dataset)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    started = time.perf_counter()

    manifest = build_dataset(args)
    shared = shared_sources(manifest)
    print(f"source videos shared across splits: {shared}", flush=True)
    clips = clip_table(manifest)
    log(f"dataset: {len(clips)} clips from {clips['source'].nunique()} source videos: "
        f"{clips.groupby('fake_type').size().to_dict()}")
    table, crops, _ = extract_all(clips, dataset_root(manifest), args.work)
    log(f"features: {len(table)} clip-conditions with a face track")

    lovo = leave_one_video_out(table, crops)
    lovo_metrics = summarize(table, lovo, args.n_boot)
    keep = ["sample_id", "cond", "label", "fake_type", "source", "split"]
    table[keep].join(lovo.drop(columns=["frames"])).to_parquet(args.work / "lovo_scores.parquet")
    split_scores, split_info = split_protocol(table, crops, args.work / "models")
    split_res: dict[str, Any] = {"skipped": split_info.get("skipped")} if split_scores is None else {
        "metrics": summarize(table, split_scores, args.n_boot), "info": split_info}
    args.out.mkdir(parents=True, exist_ok=True)
    pair = timeline(table, lovo, args.out / "timeline.png")
    result = {
        "command": "python benchmarks/bench_video.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "wall_s": round(time.perf_counter() - started, 1),
        "dataset": {"clips": len(clips), "by_type": clips.groupby("fake_type").size().to_dict(),
                    "source_videos": int(clips["source"].nunique()), "clip_seconds": args.clip_seconds,
                    "max_clips": args.max_clips, "max_seconds": args.max_seconds, "split": args.split},
        "shared_sources": shared, "scored": len(table), "left_out": len(clips) * len(CONDITIONS) - len(table),
        "fusion_inputs": list(FUSION_INPUTS), "fusion_small": {"inputs": list(FUSION_SMALL), "C": FUSION_SMALL_C},
        "lovo": {"metrics": lovo_metrics, "whole_videos": whole_videos(table, lovo, args.n_boot)}, "split": split_res,
        "timeline": pair, "targets": targets(lovo_metrics, split_res.get("metrics")),
    }
    write_bytes_atomic(args.out / "video_bench.json", (json.dumps(result, indent=1, default=float) + "\n").encode())
    write_bytes_atomic(args.out / "video_bench.md", markdown(result).encode())
    m = lovo_metrics
    for c in CONDITIONS:
        log(f"[lovo {c}] " + "  ".join(f"{n} {m[c][n]['auc']:.3f} ({m[c][n]['within_video_auc']:.3f})"
                                       for n in ("spectral:mean", "dct:mean", "temporal", "fused", "fused_small")))
    for t in result["targets"]:
        print(t)
    print(f"source videos shared across splits: {shared}")
    log(f"wrote {args.out / 'video_bench.md'}, video_bench.json, timeline.png ({pair})")


if __name__ == "__main__":
    main()
