"""Figures of a bundle's video model from its leave-one-video-out scores: AUC per score and condition, per fake
type, per split of the source video, and what the shipped band decides (per-video FPR, per-type TPR)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensics.video.model import FRAMES_INPUT, FUSED, TEMPORAL_INPUT, VideoModel

SCORES = (FRAMES_INPUT, TEMPORAL_INPUT, FUSED)
TARGETS = {"fused_auc_clean": 0.95, "temporal_auc_crf35": 0.75, "naive_swap_likely": 0.80}


def _auc(part: pd.DataFrame, score: str, n_boot: int, seed: int) -> dict[str, Any]:
    from forensics.metrics import compute_metrics

    y = part["label"].to_numpy()
    if len(np.unique(y)) < 2:
        return {"auc": None, "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
    m = compute_metrics(y, part[score].to_numpy(), n_boot=n_boot, seed=seed, ci_metrics=("auc",))
    return {"auc": round(m["auc"], 4), "ci": [round(v, 4) for v in m["auc_ci"]], "n_real": m["n_real"],
            "n_fake": m["n_fake"]}


def score_block(scores: pd.DataFrame, model: VideoModel, n_boot: int, seed: int) -> dict[str, Any]:
    """AUC per score and condition (with CI), per fake type, per split; the band's decisions per video and type."""
    conds = sorted(scores["cond"].unique(), key=lambda c: (c != "none", c))
    reals, fakes = scores[scores["label"] == 0], scores[scores["label"] == 1]
    verdict = model.band.verdicts(scores[model.video_score].to_numpy())
    decided = scores.assign(likely=verdict == "likely manipulated", clean=verdict == "no sign")
    rate = lambda part, col: {c: round(float(part[part["cond"] == c][col].mean()), 4) for c in conds}  # noqa: E731
    return {
        "conditions": conds,
        "auc": {s: {c: _auc(scores[scores["cond"] == c], s, n_boot, seed) for c in conds} for s in SCORES},
        "auc_by_fake_type": {s: {c: {t: _auc(pd.concat([reals[reals["cond"] == c], part[part["cond"] == c]]), s, 0,
                                             seed)["auc"] for t, part in fakes.groupby("fake_type")}
                                 for c in conds} for s in SCORES},
        "fpr_by_video": {v: rate(p, "likely") for v, p in decided[decided["label"] == 0].groupby("source")},
        "likely_by_fake_type": {t: rate(p, "likely") for t, p in decided[decided["label"] == 1].groupby("fake_type")},
        "no_sign_by_fake_type": {t: rate(p, "clean") for t, p in decided[decided["label"] == 1].groupby("fake_type")},
        "videos": sorted(scores["source"].unique()),
        # each video's fakes against its own reals, averaged: what a score does when its level may shift by video
        "within_video_auc": {s: round(float(np.mean([_auc(p, s, 0, seed)["auc"] for _, p in scores.groupby("source")
                                                     if p["label"].nunique() == 2])), 4) for s in SCORES},
    }


def video_model_figures(lovo: pd.DataFrame, held: pd.DataFrame, model: VideoModel, n_boot: int = 1000,
                        seed: int = 0) -> dict[str, Any]:
    """Figures of the training videos' leave-one-video-out scores and of the held-out videos' shipped scores."""
    figures: dict[str, Any] = {"lovo": score_block(lovo, model, n_boot, seed), "band": model.band.to_dict(),
                               "every": model.every, "segment_seconds": model.segment_seconds,
                               "video_score": model.video_score}
    if len(held):
        figures["held_out"] = score_block(held, model, n_boot, seed)
    naive = figures.get("held_out", figures["lovo"])["likely_by_fake_type"].get("faceswap_naive", {})
    figures["targets"] = {
        "fused_auc_clean_lovo": {"target": TARGETS["fused_auc_clean"],
                                 "value": figures["lovo"]["auc"][FUSED]["none"]["auc"]},
        "temporal_auc_crf35_lovo": {"target": TARGETS["temporal_auc_crf35"],
                                    "value": figures["lovo"]["auc"][TEMPORAL_INPUT].get("crf35", {}).get("auc")},
        "naive_swap_likely_held_out": {"target": TARGETS["naive_swap_likely"], "value": naive.get("none")},
    }
    for t in figures["targets"].values():
        t["met"] = t["value"] is not None and t["value"] >= t["target"]
    figures["weights"] = {"fusion": model.fusion.weights(), "temporal": model.temporal.weights()}
    figures["decides"] = {"decides": model.decides, **(model.record.get("choice") or {})}
    figures["frames_from"] = model.record.get("frames_from") or {}
    figures["min_face_side"] = model.min_face_side
    figures["left_out_small_faces"] = model.record.get("left_out_small_faces") or {}
    return figures


def _shared_people(table: pd.DataFrame, figures: dict[str, Any]) -> str:
    """A sentence naming the held-out videos whose person the models did learn from another video ('' if none)."""
    if "identity" not in table:
        return ""
    people = table.drop_duplicates("source").set_index("source")["identity"]
    trained = set(people.reindex(figures["lovo"]["videos"]).dropna())
    shared = [f"{v} ({people[v]})" for v in figures["held_out"]["videos"] if people.get(v) in trained]
    return (f" The person of {', '.join(shared)} is also in a training video: those figures measure a new video "
            "of a known person, not a stranger." if shared else "")


def _frames_sentence(frames_from: dict[str, str]) -> str:
    """How the training videos' frame scores were made: out of fold (release fold detectors) or in sample."""
    oof = sorted(v for v, how in frames_from.items() if how.startswith("out of fold"))
    if oof and len(oof) == len(frames_from):
        return ("Their frames are scored out of fold: each video's by the release run's fold detectors that never "
                "saw its person (`--release`), under the bundle's calibration, so the frame score is as out of "
                "sample as the temporal one.")
    sentence = ("The bundle's image detectors did train on frames of these videos, so the frame score is not out of "
                "sample here")
    return sentence + (f" (except {', '.join(oof)}: scored out of fold)." if oof else ".")


def _small_faces_sentence(figures: dict[str, Any]) -> str:
    """Which clips the face-size guard kept out of training and scoring ('' without a guard)."""
    side = figures.get("min_face_side") or 0
    if not side:
        return ""
    left = figures.get("left_out_small_faces") or {}
    what = ", ".join(f"{v}: {n}" for v, n in sorted(left.items())) if left else "none"
    return (f"Faces under {side:g} px would be upscaled into the flicker window, out of the features' calibration: "
            f"such segments get no temporal score in a scan (the frames decide) and are left out here. "
            f"Clip-conditions left out, per source video: {what}.")


def _video_score_name(score: str) -> str:
    return "the fused score" if score == FUSED else "the temporal score alone"


def _fmt(a: dict[str, Any]) -> str:
    return "n/a" if a.get("auc") is None else f"{a['auc']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]"


def _block_lines(block: dict[str, Any]) -> list[str]:
    conds = block["conditions"]
    lines = ["AUC [95% CI] over every clip (one threshold for all videos), and the mean within-video AUC (each "
             "video's fakes against its own reals, all conditions):", "",
             "| score | " + " | ".join(conds) + " | within-video |", "|---|" + "---|" * (len(conds) + 1)]
    lines += [f"| {s} | " + " | ".join(_fmt(per[c]) for c in conds) + f" | {block['within_video_auc'][s]:.3f} |"
              for s, per in block["auc"].items()]
    types = sorted(next(iter(block["auc_by_fake_type"][FUSED].values())).keys())
    lines += ["", "AUC per fake type (all reals of the condition against that type):", "",
              "| score | condition | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]
    for s, per in block["auc_by_fake_type"].items():
        for c, row in per.items():
            lines.append(f"| {s} | {c} | " + " | ".join("n/a" if row.get(t) is None else f"{row[t]:.3f}"
                                                         for t in types) + " |")
    lines += ["", "Real clips called *likely manipulated* by the shipped video band, per source video:", "",
              "| source video | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    lines += [f"| {v} | " + " | ".join(f"{row[c]:.1%}" for c in conds) + " |" for v, row in block["fpr_by_video"].items()]
    lines += ["", "Fake clips called *likely manipulated* (in brackets: *no sign*), per fake type:", "",
              "| fake type | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    lines += [f"| {t} | " + " | ".join(f"{row[c]:.1%} ({block['no_sign_by_fake_type'][t][c]:.1%})" for c in conds)
              + " |" for t, row in block["likely_by_fake_type"].items()]
    return lines


def write_video_model_report(out: str | Path, figures: dict[str, Any], table: pd.DataFrame, command: str,
                             wall_s: float) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "video_model.json").write_text(json.dumps({"command": command, "wall_s": round(wall_s, 1), **figures},
                                                     indent=2, sort_keys=True) + "\n")
    band = figures["band"]
    clips = table.drop_duplicates("sample_id")
    lines = ["# The bundle's video model: frames + temporal flicker", "",
             f"Command: `{command}` ({wall_s:.0f} s wall on this machine; clip measurements already cached in the "
             "work folder are read, not recomputed: the first run measures about 1 clip-condition a second).", "",
             f"{len(clips)} clips of 2 s from {clips['source'].nunique()} source videos "
             f"({clips.groupby('fake_type').size().to_dict()}), clean and after H.264 CRF 23 / CRF 35, each measured "
             f"as the scan measures a video: its tracker (MTCNN every {figures['every']} frames), the bundle's per-frame "
             f"scores, the flicker features of the track's {figures['segment_seconds']} s segment. The fused score "
             "combines the segment's mean frame probability with the temporal (flicker) probability. The video "
             f"score, the one the band judges, is **{_video_score_name(figures.get('video_score', FUSED))}** (the "
             "candidate that won leave one video out, below); the band on it: "
             f"no sign <= {band['low']:.4f} < inconclusive <= {band['high']:.4f} < likely manipulated.", "",
             _small_faces_sentence(figures), "",
             f"## Leave one source video out (training videos: {', '.join(figures['lovo']['videos'])})", "",
             "Every clip scored by a temporal detector and a fusion that never saw its source video; the band is "
             "fitted on these scores to bound the worst video's false-positive rate. "
             + _frames_sentence(figures.get("frames_from", {})), "",
             *_block_lines(figures["lovo"])]
    if "held_out" in figures:
        lines += ["", f"## Held-out test videos ({', '.join(figures['held_out']['videos'])}): the shipped models", "",
                  "Source videos of the corpus's test split: neither the bundle's image detectors nor the video "
                  "model saw them or any fake made from them." + _shared_people(table, figures), "",
                  *_block_lines(figures["held_out"])]
    d = figures["decides"]
    lines += ["", f"**Does the video score decide a track's verdict? {'Yes' if d['decides'] else 'No'}**: "
              f"{d.get('why', '')}. " + ("" if d["decides"] else "The scan shows the temporal and video scores per "
                                         "track and segment, but judges the track on its frames."),
              ""]
    lines += ["", "Targets (issue #19): " + "; ".join(
        f"{k} {v['value']} (target {v['target']}: {'met' if v['met'] else 'not met'})"
        for k, v in figures["targets"].items()) + ".", "",
        f"Fusion weights (standardised): {figures['weights']['fusion']}. Temporal detector weights: "
        f"{figures['weights']['temporal']}.", ""]
    (out / "video_model.md").write_text("\n".join(lines))
    return out / "video_model.md"


def write_video_bench_report(out: str | Path, block: dict[str, Any], model: VideoModel, bundle: str,
                             command: str) -> Path:
    """A bundle's shipped video model on a clip dataset (`forensics detect bench --video`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "video_bench.json").write_text(json.dumps({"command": command, "bundle": bundle, **block,
                                                      "band": model.band.to_dict()}, indent=2, sort_keys=True) + "\n")
    lines = ["# Video benchmark of a bundle's shipped video model", "", f"Command: `{command}`.", "",
             f"Bundle `{bundle}`; video band no sign <= {model.band.low:.4f} < inconclusive <= {model.band.high:.4f}. "
             f"Clips of {', '.join(block['videos'])}, measured as the scan measures a video; nothing is fitted here "
             "(clips of the videos the model trained on are in-sample).", "", *_block_lines(block), ""]
    (out / "video_bench.md").write_text("\n".join(lines))
    return out / "video_bench.md"
