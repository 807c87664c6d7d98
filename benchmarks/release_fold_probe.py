"""One identity fold of the release recipe with a chosen detector setting: a minutes-long probe of a recipe change
before spending an hour on `forensics detect release`.

The detector (the CNN unless `--detector` names another of the recipe's) trains as the release recipe's fold
model does (every working face outside the fold, minus the fakes that carry the held-out person: made into them,
or sampled from a GAN that learned them) and is measured three ways:
  * inside the held-out fold: AUC of that person's reals against each generator's fakes of them (does it detect
    manipulations of a person it never saw?);
  * on the test people and the unseen Poisson swaps: AUC per generator;
  * the shift: the held-out person's reals called fake at the threshold that calls 5% of the test reals fake
    (is a new person's whole face scored as fake?).

    python benchmarks/release_fold_probe.py --dataset runs/release3/dataset --identity pexels_woman \
        --params '{"online_blend": 0.5}' --out reports/release/probe/online_blend.json
    python benchmarks/release_fold_probe.py --dataset runs/release3/dataset --identity pexels_woman \
        --detector dct --drop-generators stylegan2 --out reports/release/probe/dct_no_stylegan2.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from forensics.data.manifest import read_manifest
    from forensics.detectors import create
    from forensics.detectors import list as detector_names
    from forensics.metrics import roc_auc
    from forensics.release.folds import carries
    from forensics.release.pipeline import ReleaseConfig, poisson_fakes, select_rows
    from forensics.release.train import load_crops

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True, help="a release dataset folder (OUT/dataset of "
                    "`forensics detect release`; built here from --data if missing, about 6 minutes)")
    ap.add_argument("--data", type=Path, default=Path("data/starter"), help="the full starter corpus")
    ap.add_argument("--identity", default="pexels_woman", help="the identity whose fold is held out")
    ap.add_argument("--detector", default="cnn", choices=[d for d in detector_names() if d != "temporal"],
                    help="one of the recipe's detectors, or another frame detector (trained like the linear ones)")
    ap.add_argument("--params", default="{}", help="JSON: detector parameters over the release recipe's")
    ap.add_argument("--drop-generators", default="", help="comma-separated generators whose fakes the probe "
                    "leaves out of training (an ablation: which fakes teach the shift?)")
    ap.add_argument("--epochs", type=int, default=ReleaseConfig().cnn_epochs)
    ap.add_argument("--out", type=Path, required=True, help="JSON figures")
    args = ap.parse_args(argv)

    cfg = ReleaseConfig(cnn_epochs=args.epochs)
    if not (args.dataset / "manifest.parquet").exists():
        from forensics.cli.demo import committed_checkpoints
        from forensics.release.dataset import build_release_dataset

        build_release_dataset(args.data, args.dataset, committed_checkpoints(), cfg.data)
    work, test, fold_identity = select_rows(read_manifest(args.dataset / "manifest.parquet"), cfg)
    fold = next(f for f, name in fold_identity.items() if name == args.identity)
    inside = (work["fold"] == fold).to_numpy()
    dropped = work["generator"].astype(str).isin([g for g in args.drop_generators.split(",") if g]).to_numpy()
    train = ~inside & ~dropped & ~carries(work["carries"], args.identity)
    recipe = cfg.detector_params()
    params = {**recipe.get(args.detector, recipe["dct"]), **json.loads(args.params)}
    images = load_crops(work, args.dataset)
    test_images = load_crops(test, args.dataset)
    swaps, swap_images = poisson_fakes(test, test_images, cfg.poisson_swaps, cfg.seed)

    t0 = time.perf_counter()
    model = create(args.detector, **params).fit(images[train], work["label"].to_numpy()[train])
    seconds = time.perf_counter() - t0

    def by_generator(rows, scores) -> dict[str, float]:
        real = (rows["label"] == 0).to_numpy()
        gens = rows["generator"].astype(str).to_numpy()
        return {g: round(roc_auc(np.r_[np.zeros(real.sum()), np.ones((gens == g).sum())],
                                 np.r_[scores[real], scores[gens == g]]), 4)
                for g in sorted(set(gens[~real]))}

    held_rows = work[inside]
    held = model.predict_proba(images[inside])
    test_scores = model.predict_proba(np.concatenate([test_images, swap_images]))
    import pandas as pd
    test_rows = pd.concat([test[["label", "generator", "identity"]], swaps[["label", "generator", "identity"]]],
                          ignore_index=True)
    test_real = (test_rows["label"] == 0).to_numpy()
    threshold = float(np.quantile(test_scores[test_real], 0.95))
    held_real = (held_rows["label"] == 0).to_numpy() & (held_rows["identity"] == args.identity).to_numpy()
    figures = {
        "identity": args.identity, "detector": args.detector, "params": params,
        "dropped_generators": sorted(set(work["generator"].astype(str)[dropped])),
        "train_faces": int(train.sum()), "train_seconds": round(seconds),
        "history": getattr(model, "history_", []),
        "held_out_auc_by_generator": by_generator(held_rows, held),
        "test_auc_by_generator": by_generator(test_rows, test_scores),
        "test_auc_all": round(roc_auc(test_rows["label"].to_numpy(), test_scores), 4),
        "held_out_reals_fpr_at_test_5pct": round(float((held[held_real] > threshold).mean()), 4),
        "held_out_reals_median_score": round(float(np.median(held[held_real])), 4),
        "test_reals_median_score": round(float(np.median(test_scores[test_real])), 4),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k not in ("history", "params")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
