"""Figures of a bundle's video model from its leave-one-video-out scores: AUC per score and condition, per fake
type, per split of the source video, and what the shipped band decides (per-video FPR, per-type TPR)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensics.video.model import FRAMES_INPUT, TEMPORAL_INPUT, VideoModel

SCORES = (FRAMES_INPUT, TEMPORAL_INPUT, "fused")
TARGETS = {"fused_auc_clean": 0.95, "temporal_auc_crf35": 0.75, "naive_swap_likely": 0.80}


def _auc(part: pd.DataFrame, score: str, n_boot: int, seed: int) -> dict[str, Any]:
    from forensics.metrics import compute_metrics

    y = part["label"].to_numpy()
    if len(np.unique(y)) < 2:
        return {"auc": None, "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
    m = compute_metrics(y, part[score].to_numpy(), n_boot=n_boot, seed=seed, ci_metrics=("auc",))
    return {"auc": round(m["auc"], 4), "ci": [round(v, 4) for v in m["auc_ci"]], "n_real": m["n_real"],
            "n_fake": m["n_fake"]}


def video_model_figures(lovo: pd.DataFrame, model: VideoModel, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    conds = sorted(lovo["cond"].unique(), key=lambda c: (c != "none", c))
    reals = lovo[lovo["label"] == 0]
    figures: dict[str, Any] = {
        "auc": {s: {c: _auc(lovo[lovo["cond"] == c], s, n_boot, seed) for c in conds} for s in SCORES},
        "auc_by_fake_type": {s: {c: {t: _auc(pd.concat([reals[reals["cond"] == c], part[part["cond"] == c]]), s, 0, seed)["auc"]
                                     for t, part in lovo[lovo["label"] == 1].groupby("fake_type")}
                                 for c in conds} for s in SCORES},
        "auc_by_split": {split: {s: _auc(part, s, 0, seed)["auc"] for s in SCORES}
                         for split, part in lovo.groupby("split")},
        "band": model.band.to_dict(),
    }
    verdict = model.band.verdicts(lovo["fused"].to_numpy())
    lovo = lovo.assign(likely=verdict == "likely manipulated", clean=verdict == "no sign")
    figures["fpr_by_video"] = {v: {c: round(float(p[p["cond"] == c]["likely"].mean()), 4) for c in conds}
                               for v, p in lovo[lovo["label"] == 0].groupby("source")}
    figures["likely_by_fake_type"] = {t: {c: round(float(p[p["cond"] == c]["likely"].mean()), 4) for c in conds}
                                      for t, p in lovo[lovo["label"] == 1].groupby("fake_type")}
    figures["no_sign_by_fake_type"] = {t: {c: round(float(p[p["cond"] == c]["clean"].mean()), 4) for c in conds}
                                       for t, p in lovo[lovo["label"] == 1].groupby("fake_type")}
    naive = lovo[(lovo["label"] == 1) & (lovo["fake_type"] == "faceswap_naive")]
    figures["targets"] = {
        "fused_auc_clean": {"target": TARGETS["fused_auc_clean"], "value": figures["auc"]["fused"]["none"]["auc"]},
        "temporal_auc_crf35": {"target": TARGETS["temporal_auc_crf35"],
                               "value": figures["auc"][TEMPORAL_INPUT].get("crf35", {}).get("auc")},
        "naive_swap_likely": {"target": TARGETS["naive_swap_likely"],
                              "value": round(float(naive["likely"].mean()), 4) if len(naive) else None},
    }
    for t in figures["targets"].values():
        t["met"] = t["value"] is not None and t["value"] >= t["target"]
    figures["weights"] = {"fusion": model.fusion.weights(), "temporal": model.temporal.weights()}
    return figures


def _fmt(a: dict[str, Any]) -> str:
    return "n/a" if a.get("auc") is None else f"{a['auc']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]"


def write_video_model_report(out: str | Path, figures: dict[str, Any], table: pd.DataFrame, command: str,
                             wall_s: float) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "video_model.json").write_text(json.dumps({"command": command, "wall_s": round(wall_s, 1), **figures},
                                                     indent=2, sort_keys=True) + "\n")
    conds = list(next(iter(figures["auc"].values())).keys())
    lines = ["# The bundle's video model: frames + temporal flicker, leave one source video out", "",
             f"Command: `{command}` ({wall_s:.0f} s wall on this machine).", "",
             f"{table['sample_id'].nunique()} clips from {table['source'].nunique()} source videos "
             f"({dict(table.drop_duplicates('sample_id')['fake_type'].value_counts().sort_index())}), each measured as "
             f"the scan measures a video: its tracker (detection every {figures.get('every', 10)} frames), the bundle's "
             "per-frame scores, the flicker features of the track's 2 s segment. Every clip is scored by a temporal "
             "detector and a fusion that never saw its source video; the band is fitted on those scores.", "",
             "| score | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    for s, per in figures["auc"].items():
        lines.append(f"| {s} | " + " | ".join(_fmt(per[c]) for c in conds) + " |")
    lines += ["", "AUC per fake type (all reals of the condition against that type):", ""]
    types = sorted(next(iter(figures["auc_by_fake_type"]["fused"].values())).keys())
    lines += ["| score | condition | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]
    for s, per in figures["auc_by_fake_type"].items():
        for c, row in per.items():
            lines.append(f"| {s} | {c} | " + " | ".join("n/a" if row.get(t) is None else f"{row[t]:.3f}" for t in types) + " |")
    lines += ["", "By the corpus split of the source video (the bundle's image detectors trained on frames of the "
              "train and val videos, so only test videos give an out-of-sample frame score), AUC over all conditions:",
              "", "| split | " + " | ".join(SCORES) + " |", "|---|" + "---|" * len(SCORES)]
    for split, row in figures["auc_by_split"].items():
        lines.append(f"| {split} | " + " | ".join("n/a" if row[s] is None else f"{row[s]:.3f}" for s in SCORES) + " |")
    band = figures["band"]
    lines += ["", f"The video band: no sign <= {band['low']:.4f} < inconclusive <= {band['high']:.4f} < likely "
              "manipulated. Real clips called likely manipulated, per source video:", "",
              "| source video | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    for v, row in figures["fpr_by_video"].items():
        lines.append(f"| {v} | " + " | ".join(f"{row[c]:.1%}" for c in conds) + " |")
    lines += ["", "Fake clips called likely manipulated (and, in brackets, no sign), per fake type:", "",
              "| fake type | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    for t, row in figures["likely_by_fake_type"].items():
        lines.append(f"| {t} | " + " | ".join(f"{row[c]:.1%} ({figures['no_sign_by_fake_type'][t][c]:.1%})"
                                              for c in conds) + " |")
    lines += ["", "Targets (issue #19): " + "; ".join(
        f"{k} {v['value']} (target {v['target']}: {'met' if v['met'] else 'not met'})"
        for k, v in figures["targets"].items()) + ".", "",
        f"Fusion weights (standardised): {figures['weights']['fusion']}. Temporal detector weights: "
        f"{figures['weights']['temporal']}.", ""]
    (out / "video_model.md").write_text("\n".join(lines))
    return out / "video_model.md"
