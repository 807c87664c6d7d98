"""Leave-one-video-out figures of the video model's candidate settings, on clips already measured.

`forensics detect video-model` leaves WORK/clips.parquet: every clip-condition measured the scan's way (frame
mean, flicker features). This probe refits the video model's leave-one-video-out step on the training videos of
that table under other settings (the temporal detector's regularisation C, its feature set) and prints, per
setting, the pooled AUC of the frame mean, the temporal score and the fusion per condition, the share of fakes
each calls likely manipulated at its own worst-video band, and which video score `choose_video_score` would
ship. Nothing is shipped or written but the JSON named by --out.

    python benchmarks/video_temporal_probe.py --clips runs/video_model/clips.parquet \
        --C 1,0.3,0.1,0.03 --out reports/video/temporal_probe.json

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
from forensics.video.release import VideoModelConfig, choose_video_score, leave_one_video_out


def pooled_aucs(lovo: pd.DataFrame) -> dict[str, dict[str, float]]:
    """score -> condition (and 'all') -> AUC over every clip of that condition."""
    out: dict[str, dict[str, float]] = {}
    for score in (FRAMES_INPUT, TEMPORAL_INPUT, FUSED):
        per = {c: round(roc_auc(p["label"].to_numpy(), p[score].to_numpy()), 4) for c, p in lovo.groupby("cond")}
        per["all"] = round(roc_auc(lovo["label"].to_numpy(), lovo[score].to_numpy()), 4)
        out[score] = per
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=Path, default=Path("runs/video_model/clips.parquet"))
    ap.add_argument("--C", default="1,0.3,0.1,0.03", help="temporal detector regularisations to compare")
    ap.add_argument("--drop", default="", help="';'-separated feature groups to leave out, each ','-separated")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    table = pd.read_parquet(args.clips)
    base = VideoModelConfig()
    training = table[table["split"].isin(base.train_splits)].reset_index(drop=True)
    settings = [("C", float(c), base.features) for c in args.C.split(",")]
    for group in filter(None, args.drop.split(";")):
        dropped = set(group.split(","))
        settings.append((f"without {group}", base.C, tuple(f for f in base.features if f not in dropped)))
    results = []
    for name, C, features in settings:
        cfg = replace(base, C=C, features=features)
        lovo = leave_one_video_out(training, cfg)
        aucs, choice = pooled_aucs(lovo), choose_video_score(lovo)
        results.append({"setting": name if name != "C" else f"C={C:g}", "C": C, "features": list(features),
                        "auc": aucs, "likely_rate": choice["lovo_likely_rate"], "video_score": choice["video_score"],
                        "decides": choice["decides"]})
        row = "  ".join(f"{s} " + " ".join(f"{c}:{v:.3f}" for c, v in per.items()) for s, per in aucs.items())
        likely = " ".join(f"{s}:{v:.1%}" for s, v in choice["lovo_likely_rate"].items())
        print(f"{results[-1]['setting']}: AUC {row}\n    fakes likely manipulated at each score's band: {likely}"
              f" -> {choice['video_score']}, decides {choice['decides']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"clips": str(args.clips), "videos": sorted(training["source"].unique()),
                                        "all_features": list(TRACK_FEATURES), "results": results}, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
