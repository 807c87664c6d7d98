"""Train the predicted-manipulation-mask head on self-blends of the starter corpus's train split, measure it on
held-out people, and (with --decide) pick which measured run ships into the bundle and write the report.

    OMP_NUM_THREADS=1 nohup nice .venv/bin/python benchmarks/train_mask_head.py --run runs/mask_head_bce \
        --loss bce --p-fake 0.4 > runs/mask_head_bce.log 2>&1 &
    .venv/bin/python benchmarks/train_mask_head.py --decide runs/mask_head runs/mask_head_bce ...

Training resumes from the run folder (one checkpoint per epoch); rerunning after it finished only re-measures.
Measured: IoU of the thresholded mask (p > 0.5) against the blend's truth (weight > 0) on blends of test-split
reals (people the head never saw), clean and under JPEG 75/50; the predicted area on test reals (false paint)
and how well area alone tells blends from reals (area AUC); the area rule of the scan's signal, fixed on
validation reals and its false-alarm rate on test reals; IoU on Poisson face swaps (an unseen manipulation); a
face-shape-only baseline; and the cost of `predict` per face. A run writes reports/evidence/mask_head.<run>.json
and .png; --decide (the first run named is the shipped head) ships a trial only if `beats` allows, writes
forensics/assets/bundle/mask_head/ and reports/evidence/mask_head.{md,json,png}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from forensics.evidence.mask_model import PRESETS, save_mask_net  # noqa: E402
from forensics.evidence.mask_train import (LOSSES, TrainConfig, bootstrap_mean_ci, iou,  # noqa: E402
                                           predict_masks, real_crops, train_mask_net)

PIXEL_THRESHOLD = 0.5  # a pixel is "predicted blended" when p > 0.5
CONDITIONS = ("none", "jpeg75", "jpeg50")
REAL_QUANTILE = 0.99  # the area rule: above the 99th percentile of validation reals' areas (all conditions pooled)


def perturbed(images: np.ndarray, name: str) -> np.ndarray:
    from forensics.augment import perturb_batch

    return perturb_batch(images, name)[0] if name != "none" else images


def make_blends(crops: np.ndarray, landmarks: np.ndarray, first_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blend i of crop i with seed first_seed + i; the truth is weight > 0. [N,S,S,3] uint8, [N,S,S] bool"""
    from forensics.evidence.mask_train import blend_example

    pairs = [blend_example(c, lm, first_seed + i) for i, (c, lm) in enumerate(zip(crops, landmarks))]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]) > 0


def make_poisson(crops: np.ndarray, groups: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Poisson swaps (generators.poisson_swap) of each test crop with a crop of another group; the truth is the
    swap's own region (the template face hull, eroded as poisson_swap erodes it: the pixels it may change)."""
    import cv2

    from forensics.data.faces import template_points
    from generators.merge import face_region_mask
    from generators.poisson_swap import poisson_swap

    rng = np.random.default_rng(seed)
    size = crops.shape[1]
    region = face_region_mask(template_points(size, 0.25), size)
    region = cv2.erode((region * 255).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    fakes, truths = [], []
    for i in range(len(crops)):
        others = [j for j in range(len(crops)) if groups[j] != groups[i]]
        j = int(others[int(rng.integers(len(others)))]) if others else (i + 1) % len(crops)
        fakes.append(poisson_swap(crops[i], crops[j]))
        truths.append(region)
    return np.stack(fakes), np.stack(truths)


def iou_summary(values: np.ndarray, seed: int) -> dict:
    lo, hi = bootstrap_mean_ci(values, seed=seed)
    return {"n": int(values.size), "mean": round(float(values.mean()), 4), "median": round(float(np.median(values)), 4),
            "ci95": [round(lo, 4), round(hi, 4)], "share_above_0.5": round(float((values > 0.5).mean()), 4)}


def pixel_auc(probs: np.ndarray, truth: np.ndarray, seed: int, n: int = 200_000) -> float:
    from sklearn.metrics import roc_auc_score

    p, t = probs.reshape(-1), truth.reshape(-1)
    idx = np.random.default_rng(seed).choice(p.size, size=min(n, p.size), replace=False)
    return round(float(roc_auc_score(t[idx], p[idx])), 4)


def area_auc(fake_areas: np.ndarray, real_areas: np.ndarray) -> float:
    """How well the predicted area alone tells a blend from a real face (image-level ROC AUC)."""
    from forensics.metrics import roc_auc

    labels = np.r_[np.ones(len(fake_areas)), np.zeros(len(real_areas))]
    return round(float(roc_auc(labels, np.r_[fake_areas, real_areas])), 4)


def area(probs: np.ndarray) -> np.ndarray:
    return (probs > PIXEL_THRESHOLD).mean(axis=(1, 2))


def time_predict(net, crops: np.ndarray) -> dict:
    """CPU ms per face of predict_masks at batch 1 and batch 32, one thread (median of repeats). CPU time, not
    wall time: the machine is shared, and CPU time is what the scan will pay."""
    import torch

    torch.set_num_threads(1)
    predict_masks(net, crops[:2])  # warm-up
    one = []
    for i in range(10):
        t = time.process_time()
        predict_masks(net, crops[i:i + 1])
        one.append(time.process_time() - t)
    batch = []
    for _ in range(3):
        t = time.process_time()
        predict_masks(net, crops[:32])
        batch.append((time.process_time() - t) / 32)
    return {"threads": 1, "clock": "process CPU time", "batch1_ms": round(1000 * float(np.median(one)), 2),
            "batch32_ms_per_face": round(1000 * float(np.median(batch)), 2)}


def grid(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, str]], path: Path) -> None:
    """image | true mask | predicted mask over the image, one row per example, its caption on the image tile."""
    import cv2

    from forensics.data.media import write_image
    from forensics.evidence.overlay import colorize, overlay_rgb

    out = []
    for image, truth, probs, caption in rows:
        tile = image.copy()
        cv2.putText(tile, caption, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        gap = np.full((image.shape[0], 2, 3), 255, np.uint8)
        out.append(np.concatenate([tile, gap, colorize(truth.astype(np.float32)), gap, overlay_rgb(image, probs)], 1))
        out.append(np.full((2, out[-1].shape[1], 3), 255, np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.concatenate(out[:-1], 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=Path("data/starter/manifest.parquet"))
    parser.add_argument("--run", type=Path, default=Path("runs/mask_head"))
    parser.add_argument("--report", type=Path, default=Path("reports/evidence/mask_head"))
    parser.add_argument("--bundle", type=Path, default=Path("forensics/assets/bundle/mask_head"))
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    parser.add_argument("--per-group", type=int, default=400, help="train reals per source video/photo")
    parser.add_argument("--eval-per-group", type=int, default=150, help="val/test reals per source video/photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss", choices=LOSSES, default=TrainConfig.loss)
    parser.add_argument("--p-fake", type=float, default=TrainConfig.p_fake, help="share of blends per batch")
    parser.add_argument("--train-only", action="store_true", help="train (or resume), measure nothing")
    parser.add_argument("--decide", type=Path, nargs="+", metavar="RUN",
                        help="no training: compare measured runs (the first is the shipped head), ship the "
                             "one the ship rule picks and write the report")
    args = parser.parse_args()
    if args.decide:
        decide(args.decide, args.report, args.bundle)
        return

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    net_config = PRESETS["small"]
    train_config = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, loss=args.loss,
                               p_fake=args.p_fake)
    crops, landmarks, groups = real_crops(args.manifest, "train", args.per_group, args.seed, net_config.size)
    print(f"train: {len(crops)} real crops from {len(set(groups))} groups", flush=True)
    net, state = train_mask_net(args.run, crops, landmarks, net_config, train_config,
                                log=lambda s: print(s, flush=True))
    del crops, landmarks
    if not args.train_only:
        evaluate(net, args, state)


def run_files(report: Path, run: Path) -> tuple[Path, Path]:
    """Where one run's figures and grid go: <report>.<run name>.json / .png."""
    return (report.parent / f"{report.name}.{run.name}.json", report.parent / f"{report.name}.{run.name}.png")


SHIP_RULE = ("paints held-out reals less (mean area, clean), separates blends from reals better by area (area "
             "AUC, clean and JPEG 50), and keeps the held-out blend IoU (clean) within the shipped head's 95% CI "
             "or above.")


def beats(trial: dict, shipped: dict) -> list[str]:
    """Why `trial` may not replace `shipped` (empty: it may): a trial ships only if it SHIP_RULE."""
    why = []
    if not trial["reals"]["none"]["mean_area"] < shipped["reals"]["none"]["mean_area"]:
        why.append("reals' mean area not lower")
    for cond in ("none", "jpeg50"):
        if not trial["blends"][cond]["area_auc_vs_reals"] > shipped["blends"][cond]["area_auc_vs_reals"]:
            why.append(f"area AUC ({cond}) not higher")
    if trial["blends"]["none"]["mean"] < shipped["blends"]["none"]["ci95"][0]:
        why.append("IoU below the shipped head's 95% CI")
    return why


def decide(runs: list[Path], report: Path, bundle: Path) -> None:
    """Read each run's measured figures, keep the shipped head (runs[0]) unless a trial beats it on every count
    (the best such trial by clean area AUC otherwise), write it into the bundle with its own area rule and
    write the report comparing all runs."""
    import shutil

    from forensics.evidence.mask_model import load_mask_net

    docs = {}
    for run in runs:
        path = run_files(report, run)[0]
        if not path.is_file():
            raise SystemExit(f"{path}: missing; measure {run} first (train_mask_head.py --run {run} ...)")
        docs[run.name] = json.loads(path.read_text())
    base = runs[0].name
    verdicts = {name: beats(doc, docs[base]) for name, doc in docs.items() if name != base}
    winners = sorted((n for n, why in verdicts.items() if not why),
                     key=lambda n: -docs[n]["blends"]["none"]["area_auc_vs_reals"])
    chosen = winners[0] if winners else base
    for name, why in verdicts.items():
        print(f"{name} vs {base}: " + ("beats it on every count" if not why else "; ".join(why)), flush=True)
    net, config, _ = load_mask_net(Path(next(r for r in runs if r.name == chosen)) / "net")
    save_mask_net(bundle, net, config, extra=docs[chosen]["bundle"])
    print(f"shipped {chosen} into {bundle}", flush=True)
    shutil.copyfile(run_files(report, Path(chosen))[1], report.with_suffix(".png"))
    summary = {"shipped": chosen, "baseline": base, "ship_rule": SHIP_RULE,
               "verdicts": verdicts, "runs": docs}
    report.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    report.with_suffix(".md").write_text(comparison_markdown(summary, runs))
    print(f"wrote {report}.md/.json/.png", flush=True)


def evaluate(net, args: argparse.Namespace, state: dict) -> dict:
    """Every figure of the report, printed, and the report files written. Returns the JSON document."""
    from forensics.data.faces import template_points
    from generators.merge import face_region_mask

    seed = args.seed
    val, val_lm, val_groups = real_crops(args.manifest, "val", args.eval_per_group, seed + 1)
    test, test_lm, test_groups = real_crops(args.manifest, "test", args.eval_per_group, seed + 2)
    print(f"val reals: {len(val)} crops, {len(set(val_groups))} groups; test reals: {len(test)} crops, "
          f"{len(set(test_groups))} groups ({', '.join(sorted(set(test_groups)))})", flush=True)

    # the area rule, from validation reals only
    val_areas = np.concatenate([area(predict_masks(net, perturbed(val, c))) for c in CONDITIONS])
    area_threshold = float(np.quantile(val_areas, REAL_QUANTILE))
    print(f"area rule: predicted area > {area_threshold:.4f} (the {100 * REAL_QUANTILE:.0f}th percentile of "
          f"{val_areas.size} validation-real areas, conditions {', '.join(CONDITIONS)} pooled)", flush=True)

    fakes, truth = make_blends(test, test_lm, first_seed=10_000_000 + seed)
    shape_prior = face_region_mask(template_points(test.shape[1], 0.25), test.shape[1]) > 0
    prior_iou = iou(np.broadcast_to(shape_prior, truth.shape), truth)
    doc: dict = {"truth_rule": "blend weight > 0", "pixel_threshold": PIXEL_THRESHOLD,
                 "test_groups": sorted(set(test_groups)), "blends": {}, "reals": {}, "poisson": {},
                 "shape_prior_iou": iou_summary(prior_iou, seed),
                 "truth_area_mean": round(float(truth.mean()), 4)}
    examples = []
    for cond in CONDITIONS:
        probs = predict_masks(net, perturbed(fakes, cond))
        values = iou(probs > PIXEL_THRESHOLD, truth)
        real_probs = predict_masks(net, perturbed(test, cond))
        real_area = area(real_probs)
        doc["blends"][cond] = {**iou_summary(values, seed), "pixel_auc": pixel_auc(probs, truth, seed),
                               "detected_by_area_rule": round(float((area(probs) > area_threshold).mean()), 4),
                               "mean_area": round(float(area(probs).mean()), 4),
                               "area_auc_vs_reals": area_auc(area(probs), real_area)}
        doc["reals"][cond] = {"n": int(len(test)), "mean_area": round(float(real_area.mean()), 4),
                              "median_area": round(float(np.median(real_area)), 4),
                              "p95_area": round(float(np.quantile(real_area, 0.95)), 4),
                              "false_alarm": round(float((real_area > area_threshold).mean()), 4)}
        print(f"{cond:>6}: blends IoU mean {doc['blends'][cond]['mean']:.3f} {doc['blends'][cond]['ci95']} median "
              f"{doc['blends'][cond]['median']:.3f}, pixel AUC {doc['blends'][cond]['pixel_auc']:.3f}, flagged "
              f"{doc['blends'][cond]['detected_by_area_rule']:.3f}, area AUC blends vs reals "
              f"{doc['blends'][cond]['area_auc_vs_reals']:.3f}; reals mean area {real_area.mean():.4f}, "
              f"false alarm {doc['reals'][cond]['false_alarm']:.3f}", flush=True)
        if cond == "none":
            pick = np.random.default_rng(seed).permutation(len(fakes))
            examples += [(fakes[i], truth[i], probs[i], f"blend IoU {values[i]:.2f}") for i in pick[:5]]
            examples += [(test[i], np.zeros_like(truth[i]), real_probs[i], f"real, area {real_area[i]:.2f}")
                         for i in pick[5:6]]
    print(f"shape-only baseline (the template face hull painted on every face): IoU mean "
          f"{doc['shape_prior_iou']['mean']:.3f}", flush=True)

    swaps, swap_truth = make_poisson(test, test_groups, seed + 3)
    for cond in ("none", "jpeg75"):
        probs = predict_masks(net, perturbed(swaps, cond))
        values = iou(probs > PIXEL_THRESHOLD, swap_truth)
        doc["poisson"][cond] = {**iou_summary(values, seed), "pixel_auc": pixel_auc(probs, swap_truth, seed),
                                "detected_by_area_rule": round(float((area(probs) > area_threshold).mean()), 4),
                                "mean_area": round(float(area(probs).mean()), 4)}
        print(f"poisson swap {cond}: IoU mean {doc['poisson'][cond]['mean']:.3f} {doc['poisson'][cond]['ci95']}, "
              f"flagged {doc['poisson'][cond]['detected_by_area_rule']:.3f}", flush=True)
        if cond == "none":
            examples += [(swaps[i], swap_truth[i], probs[i], f"poisson IoU {values[i]:.2f}") for i in range(2)]

    doc["timing"] = time_predict(net, test)
    print(f"predict: {doc['timing']['batch1_ms']} ms per face at batch 1, {doc['timing']['batch32_ms_per_face']} "
          f"ms per face at batch 32 (CPU time, one thread, 128 px)", flush=True)
    doc["area_rule"] = {"area_threshold": round(area_threshold, 6), "quantile": REAL_QUANTILE,
                        "fitted_on": f"{val_areas.size} validation-real areas ({', '.join(CONDITIONS)})",
                        "val_false_alarm": round(float((val_areas > area_threshold).mean()), 4),
                        "test_false_alarm": doc["reals"]["none"]["false_alarm"]}
    doc["training"] = {"steps": state["step"], "seconds": state["seconds"], "record": state["record"],
                       "epochs": state["epochs"]}
    doc["bundle"] = {"rule": {"pixel_threshold": PIXEL_THRESHOLD, "area_threshold": round(area_threshold, 6),
                              "real_false_alarm": doc["reals"]["none"]["false_alarm"],
                              "heldout_iou": doc["blends"]["none"]["mean"]},
                     "truth_rule": "blend weight > 0", "report": "reports/evidence/mask_head.md",
                     "training": {"steps": state["step"], "record": state["record"]}}
    doc["iou_over_outline"] = round(doc["blends"]["none"]["mean"] - doc["shape_prior_iou"]["mean"], 4)
    doc["run"] = str(args.run)
    json_path, png_path = run_files(args.report, args.run)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    grid(examples, png_path)
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"IoU over the outline baseline: {doc['iou_over_outline']:+.3f}; wrote {json_path} and {png_path}",
          flush=True)
    return doc


def comparison_markdown(summary: dict, runs: list[Path]) -> str:
    """The report: how to remake it, every run side by side, the ship decision, then the shipped head's details."""
    docs, chosen, base = summary["runs"], summary["shipped"], summary["baseline"]
    lines = [
        "# Predicted manipulation mask (Face X-ray style head)", "",
        "Made by `benchmarks/train_mask_head.py` (every number below is printed by it; full figures in "
        "mask_head.json and mask_head.<run>.json). Each run is trained and measured, then compared:", "", "```"]
    for name, doc in docs.items():
        train = doc["training"]["record"]["train"]
        lines.append(f"OMP_NUM_THREADS=1 nohup nice .venv/bin/python benchmarks/train_mask_head.py --run {doc['run']} "
                     f"--loss {train.get('loss', 'bce+dice')} --p-fake {train['p_fake']} > {doc['run']}.log 2>&1 &")
    lines += [f".venv/bin/python benchmarks/train_mask_head.py --decide {' '.join(str(r) for r in runs)}", "```", "",
              "Every run: efficientnet-lite0 trunk + decoder, 128 px, the same train-split reals, held-out blends "
              "and reals of test-split people, the area rule re-derived from validation reals (99th percentile, "
              "clean + JPEG 75/50). `p_fake`: the share of blends per batch (the rest are reals with an empty "
              "mask). IoU over outline: mean IoU minus the 'paint the template face hull on every face' "
              "baseline's.", "",
              "| run | loss | p_fake | blends IoU (clean) [95% CI] | IoU over outline | reals: mean area clean "
              "/ JPEG 50 | blends: mean area clean | area AUC blends vs reals clean / JPEG 50 | area rule | "
              "blends flagged clean / JPEG 50 | test reals false alarm | predict ms/face (batch 1) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, doc in docs.items():
        train, b, r = doc["training"]["record"]["train"], doc["blends"], doc["reals"]
        lines.append(
            f"| {name}{' (shipped)' if name == chosen else ''} | {train.get('loss', 'bce+dice')} | {train['p_fake']} "
            f"| {b['none']['mean']:.3f} [{b['none']['ci95'][0]:.3f}, {b['none']['ci95'][1]:.3f}] "
            f"| {doc['iou_over_outline']:+.3f} | {r['none']['mean_area']:.4f} / {r['jpeg50']['mean_area']:.4f} "
            f"| {b['none']['mean_area']:.4f} | {b['none']['area_auc_vs_reals']:.3f} / "
            f"{b['jpeg50']['area_auc_vs_reals']:.3f} | > {doc['area_rule']['area_threshold']:.4f} "
            f"| {b['none']['detected_by_area_rule']:.3f} / {b['jpeg50']['detected_by_area_rule']:.3f} "
            f"| {r['none']['false_alarm']:.3f} | {doc['timing']['batch1_ms']} |")
    lines += ["", "Every run has the same network, so `predict` costs the same; the spread of its ms column is the shared "
              "machine's load while each run was measured (CPU time, one thread).", "",
              f"**Ship rule**: a trial replaces the shipped head ({base}) only if it {summary['ship_rule']}", ""]
    for name, why in summary["verdicts"].items():
        lines.append(f"- {name}: " + ("beats it on every count." if not why else "kept out: " + "; ".join(why) + "."))
    lines += ["", f"**Shipped: {chosen}.**", "", f"## The shipped head ({chosen}) in detail", ""]
    return "\n".join(lines) + "\n" + markdown(docs[chosen])


def markdown(doc: dict) -> str:
    """One run's detailed tables (blends and reals by condition, area rule, Poisson swaps, cost)."""
    b, r, p, rule = doc["blends"], doc["reals"], doc["poisson"], doc["area_rule"]
    lines = [
        "The head predicts, per pixel of a 128 px aligned face, whether a self-blend touched it. Truth: the "
        "blend weight > 0; prediction: p > 0.5. Evaluated on blends of **test-split** reals (people never seen in "
        f"training: {', '.join(doc['test_groups'])}). Reals were trained on with an all-zero mask.", "",
        "| condition | blends: mean IoU [95% CI] | median IoU | share IoU > 0.5 | pixel AUC | blends: mean area "
        "| reals: mean area | area AUC blends vs reals | flagged by area rule | reals: false alarm |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for cond in CONDITIONS:
        lines.append(f"| {cond} | {b[cond]['mean']:.3f} [{b[cond]['ci95'][0]:.3f}, {b[cond]['ci95'][1]:.3f}] | "
                     f"{b[cond]['median']:.3f} | {b[cond]['share_above_0.5']:.3f} | {b[cond]['pixel_auc']:.3f} | "
                     f"{b[cond]['mean_area']:.4f} | {r[cond]['mean_area']:.4f} | {b[cond]['area_auc_vs_reals']:.3f} | "
                     f"{b[cond]['detected_by_area_rule']:.3f} | {r[cond]['false_alarm']:.3f} |")
    lines += [
        "", f"n = {b['none']['n']} blends and {r['none']['n']} reals per condition; the true mask covers "
        f"{doc['truth_area_mean']:.3f} of the crop on average.", "",
        f"**Shape-only baseline**: painting the template face hull on every face gives mean IoU "
        f"{doc['shape_prior_iou']['mean']:.3f} against the same truths. Blend masks are face-shaped and aligned "
        "crops put the face in one place, so most of the IoU is in *where* a face is; what the head adds is "
        "*whether* it was blended (the area rule and the reals' false paint below), plus the mask's deformations.",
        "", "### Area rule (the scan's signal)", "",
        f"A face's section suggests manipulation when its predicted area exceeds {rule['area_threshold']:.4f} of "
        f"the crop: the {100 * rule['quantile']:.0f}th percentile of {rule['fitted_on']}. Measured false-alarm "
        f"rate: {rule['val_false_alarm']:.3f} on validation reals (where it was fitted), "
        f"{rule['test_false_alarm']:.3f} on clean test reals (unseen people; JPEG rows above).", "",
        "### Unseen manipulation: Poisson face swap", "",
        "`generators.poisson_swap` (a test face cloned onto another test person's crop; truth: the swap's eroded "
        "face hull, the only pixels it may change):", "",
        "| condition | mean IoU [95% CI] | median | pixel AUC | mean area | flagged by area rule |",
        "|---|---|---|---|---|---|"]
    for cond, v in p.items():
        lines.append(f"| {cond} | {v['mean']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] | {v['median']:.3f} | "
                     f"{v['pixel_auc']:.3f} | {v['mean_area']:.4f} | {v['detected_by_area_rule']:.3f} |")
    t, tr = doc["timing"], doc["training"]
    lines += [
        "", "### Cost", "",
        f"`MaskHead.predict`: {t['batch1_ms']} ms per face at batch 1, {t['batch32_ms_per_face']} ms per face at "
        "batch 32 (CPU time, one thread, 128 px).", "",
        f"Training: {tr['steps']} steps of {tr['record']['train']['batch']} faces ({tr['seconds']:.0f} s wall on a "
        f"shared CPU, one thread), loss {tr['record']['train'].get('loss', 'bce+dice')}, p_fake "
        f"{tr['record']['train']['p_fake']}, on {tr['record']['crops']} train-split reals; last epoch loss "
        f"{tr['epochs'][-1]['loss']:.4f} (first {tr['epochs'][0]['loss']:.4f}).", "",
        "![image | true mask | predicted mask](mask_head.png)", "",
        "Grid: held-out blends, one held-out real and two Poisson swaps; image | true mask | predicted mask over "
        "the image.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
