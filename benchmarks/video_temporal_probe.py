"""Leave-one-video-out figures of the video model's candidate settings, on clips already measured.

`forensics detect video-model` leaves WORK/clips.parquet: every clip-condition measured the scan's way (frame
mean, flicker features). This probe refits the video model on the training videos of that table under other
settings (the temporal detector's regularisation C, its feature set, which training videos it learns from) and
prints, per
setting, the pooled AUC of the frame mean, the temporal score and the fusion per condition, the share of fakes
each calls likely manipulated at its own worst-video band, and which video score `choose_video_score` would
ship; then the refitted model on the held-out test videos (clean AUC of its video score, the share of naive swap
clips and of real clips its band calls likely manipulated). Nothing is shipped or written but the JSON named by
--out.

    python benchmarks/video_temporal_probe.py --clips runs/video_model/clips.parquet \
        --C 1,0.1,0.01 --drop warp_per_texture,change_per_texture --without-videos carphone_pristine \
        --out reports/video/temporal_probe.json

Every setting is scored by the same leave-one-video-out protocol as the shipped model, so choosing among them
on these figures is itself a (small) fit to the four training videos: the held-out test videos, scored by the
shipped model in reports/video/video_model.md, are the check.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from forensics.metrics import roc_auc
from forensics.video.features import TRACK_FEATURES
from forensics.video.model import FRAMES_INPUT, FUSED, TEMPORAL_INPUT
from forensics.video.release import VideoModelConfig, fit_video_model, score_rows, split_small_faces


def pooled_aucs(lovo: pd.DataFrame) -> dict[str, dict[str, float]]:
    """score -> condition (and 'all') -> AUC over every clip of that condition."""
    out: dict[str, dict[str, float]] = {}
    for score in (FRAMES_INPUT, TEMPORAL_INPUT, FUSED):
        per = {c: round(roc_auc(p["label"].to_numpy(), p[score].to_numpy()), 4) for c, p in lovo.groupby("cond")}
        per["all"] = round(roc_auc(lovo["label"].to_numpy(), lovo[score].to_numpy()), 4)
        out[score] = per
    return out


def held_out_figures(model, rows: pd.DataFrame) -> dict[str, float]:
    """The refitted model on the test split's clips: its video score's clean AUC and the share of clean naive swap
    clips its band calls likely manipulated (the issue's figure)."""
    held = score_rows(model, rows)
    clean = held[held["cond"] == "none"]
    verdict = model.band.verdicts(clean[model.video_score].to_numpy())
    naive = (clean["fake_type"] == "faceswap_naive").to_numpy()
    reals = (clean["label"] == 0).to_numpy()
    return {"video_auc_clean": round(roc_auc(clean["label"].to_numpy(), clean[model.video_score].to_numpy()), 4),
            "naive_likely_clean": round(float((verdict[naive] == "likely manipulated").mean()), 4),
            "reals_likely_clean": round(float((verdict[reals] == "likely manipulated").mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=Path, default=Path("runs/video_model/clips.parquet"))
    ap.add_argument("--C", default="1,0.3,0.1,0.03", help="temporal detector regularisations to compare")
    ap.add_argument("--drop", default="", help="';'-separated feature groups to leave out, each ','-separated")
    ap.add_argument("--without-videos", default="", help="';'-separated groups of training videos to leave out")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    base = VideoModelConfig()
    table, small = split_small_faces(pd.read_parquet(args.clips), base.min_face_side)  # as the shipped model
    print(f"{len(small)} clip-conditions left out: face under {base.min_face_side:g} px")
    training = table[table["split"].isin(base.train_splits)].reset_index(drop=True)
    test = table[~table["split"].isin(base.train_splits)].reset_index(drop=True)
    settings = [(f"C={float(c):g}", replace(base, C=float(c)), ()) for c in args.C.split(",")]
    for group in filter(None, args.drop.split(";")):
        dropped = set(group.split(","))
        settings.append((f"without {group}", replace(base, features=tuple(f for f in base.features if f not in dropped)),
                         ()))
    for group in filter(None, args.without_videos.split(";")):
        settings.append((f"without videos {group}", base, tuple(group.split(","))))
    results = []
    for name, cfg, left_out in settings:
        rows = training[~training["source"].isin(left_out)].reset_index(drop=True)
        model, lovo = fit_video_model(rows, cfg)
        choice, aucs = model.record["choice"], pooled_aucs(lovo)
        held = held_out_figures(model, test) if len(test) else {}
        results.append({"setting": name, "C": cfg.C, "features": list(cfg.features), "videos_left_out": list(left_out),
                        "auc": aucs, "likely_rate": choice["lovo_likely_rate"], "video_score": choice["video_score"],
                        "decides": choice["decides"], "band": model.band.to_dict(), "held_out": held})
        row = "  ".join(f"{s} " + " ".join(f"{c}:{v:.3f}" for c, v in per.items()) for s, per in aucs.items())
        likely = " ".join(f"{s}:{v:.1%}" for s, v in choice["lovo_likely_rate"].items())
        print(f"{name}: AUC {row}\n    fakes likely manipulated at each score's band: {likely}"
              f" -> {choice['video_score']}, decides {choice['decides']}, band ({model.band.low:.3f}, "
              f"{model.band.high:.3f}]; held-out test videos: {held}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"clips": str(args.clips), "videos": sorted(training["source"].unique()),
                                        "all_features": list(TRACK_FEATURES), "results": results}, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
