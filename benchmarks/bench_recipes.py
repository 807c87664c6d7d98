"""Old recipe vs new recipe, on the same dataset and the same test split.

- old: the detectors as the demo trained them before issue #10: no self-blended fakes in training, CNN with the
  blur+JPEG preset, linear detectors without augmentation, and a decision at each model's threshold fitted on
  clean validation reals (5% FPR).
- new: the demo's benchmark: self-blends in training, the `postproc` chain on both classes for every detector,
  calibration on post-processed validation faces, the three-way band (a real counts as a false positive only
  when called *likely manipulated*), and the fused detector.

Both are measured on the test split: FPR on reals clean and under each perturbation, FPR on reals of people
absent from training, AUC per generator, and AUC on a manipulation neither recipe trained on (a classical
Poisson-blended face swap between test people, `generators.poisson_swap`).

    python benchmarks/bench_recipes.py --dataset runs/demo/dataset/manifest.parquet --new runs/demo/bench \
        --work runs/recipes --out reports/recipes
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forensics.augment import CLEAN, PERTURBATIONS  # noqa: E402
from forensics.bundle.model import FittedCalibration  # noqa: E402
from forensics.calibration import LIKELY_MANIPULATED  # noqa: E402
from forensics.evaluate import BenchConfig, load_images, perturbed, run_benchmark  # noqa: E402
from forensics.metrics import bootstrap_ci, roc_auc  # noqa: E402

OLD_CONFIG = BenchConfig(detectors=("spectral", "dct", "cnn"), image_size=64, cross_generator=False,
                         logo_detectors=(), detector_params={"cnn": {"input_size": 128, "augment": "blurjpeg0.5"}})


def old_manifest(dataset: Path) -> Path:
    """The dataset without its self-blended fakes, written beside it (paths stay relative to the same root)."""
    df = pd.read_parquet(dataset)
    path = dataset.with_name("manifest.noblend.parquet")
    df[df["generator"] != "blend"].to_parquet(path, index=False)
    return path


def load_models(bench: Path, names: list[str]) -> dict:
    import forensics.detectors as registry

    return {n: registry.load(bench / "models" / f"{n}__all") for n in names}


class OldRule:
    """Fake when the raw score exceeds the model's clean-reals threshold."""

    def __init__(self, models: dict) -> None:
        self.models = models

    def scores(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {n: m.predict_proba(images) for n, m in self.models.items()}

    def flagged(self, name: str, scores: np.ndarray) -> np.ndarray:
        return scores > self.models[name].threshold_


class NewRule:
    """Calibrated probabilities; a face is flagged when its verdict is *likely manipulated*; plus the fusion."""

    def __init__(self, models: dict, calibration: dict) -> None:
        self.models = models
        self.calibration = FittedCalibration.from_dict(calibration)

    def scores(self, images: np.ndarray) -> dict[str, np.ndarray]:
        scored = self.calibration.apply({n: m.predict_proba(images) for n, m in self.models.items()})
        return {**scored.calibrated, "fused": scored.fused}

    def flagged(self, name: str, scores: np.ndarray) -> np.ndarray:
        band = self.calibration.decision if name == "fused" else self.calibration.bands[name]
        return band.verdicts(scores) == LIKELY_MANIPULATED


def poisson_swaps(reals: np.ndarray, identities: np.ndarray, seed: int) -> np.ndarray:
    """One classical swap per real: another test person's face cloned into it.  # [N,S,S,3] -> [N,S,S,3]"""
    from generators.poisson_swap import poisson_swap

    rng = np.random.default_rng(seed)
    out = []
    for i, target in enumerate(reals):
        others = np.flatnonzero(identities != identities[i])
        out.append(poisson_swap(target, reals[rng.choice(others)]) if others.size else target)
    return np.stack(out)


def auc_ci(y: np.ndarray, s: np.ndarray, seed: int) -> dict:
    return {"auc": roc_auc(y, s), "ci": list(bootstrap_ci(y, s, "auc", n_boot=300, seed=seed))}


def measure(rule, test, unseen: set[str], swaps: np.ndarray, perturbations: tuple[str, ...], seed: int) -> dict:
    rows = test.rows
    labels = rows["label"].to_numpy()
    real = labels == 0
    gens = sorted(rows.loc[~real, "generator"].unique())
    clean = rule.scores(test.images)
    swap_scores = rule.scores(swaps)
    out = {}
    for name in clean:
        rec = {"auc_by_generator": {}, "fpr": {}, "fpr_unseen": {}}
        for g in gens:
            sel = real | (rows["generator"] == g).to_numpy()
            rec["auc_by_generator"][g] = auc_ci(labels[sel], clean[name][sel], seed)
        y = np.r_[np.zeros(real.sum()), np.ones(len(swaps))]
        rec["poisson_swap"] = auc_ci(y, np.r_[clean[name][real], swap_scores[name]], seed)
        out[name] = rec
    reals = test.images[real]
    real_rows = rows[real]
    unseen_mask = real_rows["identity"].isin(unseen).to_numpy()
    for pert in (CLEAN, *perturbations):
        scores = rule.scores(perturbed(reals, real_rows, pert, seed))
        for name, s in scores.items():
            flagged = rule.flagged(name, s)
            out[name]["fpr"][pert] = float(flagged.mean())
            out[name]["fpr_unseen"][pert] = float(flagged[unseen_mask].mean()) if unseen_mask.any() else None
    return out


def markdown(result: dict) -> str:
    perts = [CLEAN, *result["perturbations"]]
    lines = ["# Old recipe vs new recipe (same dataset, same test split)", "",
             f"Command: `{result['command']}`", "",
             f"Test split: {result['n_test_real']} reals ({result['n_unseen_real']} of people absent from training: "
             f"{', '.join(result['unseen']) or 'none'}), fakes of {', '.join(result['generators'])}; "
             f"{result['n_swaps']} classical Poisson face swaps made from the test reals (unseen by both recipes).", "",
             "## False-positive rate on test reals (old: score above the clean-reals threshold; new: *likely manipulated*)",
             "", "| recipe | detector | " + " | ".join(perts) + " | worst |", "|---|---|" + "---|" * (len(perts) + 1)]
    for recipe in ("old", "new"):
        for det, rec in result[recipe].items():
            vals = [rec["fpr"][p] for p in perts]
            lines.append(f"| {recipe} | {det} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {max(vals):.3f} |")
    lines += ["", "## Same, on reals of people absent from training", "",
              "| recipe | detector | " + " | ".join(perts) + " |", "|---|---|" + "---|" * len(perts)]
    for recipe in ("old", "new"):
        for det, rec in result[recipe].items():
            vals = [rec["fpr_unseen"][p] for p in perts]
            lines.append(f"| {recipe} | {det} | " + " | ".join("–" if v is None else f"{v:.3f}" for v in vals) + " |")
    gens = result["generators"]
    lines += ["", "## AUC per generator and on the unseen classical swap (95% CI)", "",
              "| recipe | detector | " + " | ".join(gens) + " | Poisson swap |", "|---|---|" + "---|" * (len(gens) + 1)]
    for recipe in ("old", "new"):
        for det, rec in result[recipe].items():
            cells = [rec["auc_by_generator"][g] for g in gens] + [rec["poisson_swap"]]
            lines.append(f"| {recipe} | {det} | " + " | ".join(
                f"{c['auc']:.3f} [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}]" for c in cells) + " |")
    lines += ["", "The old recipe never trained on `blend`: its blend column is an unseen manipulation for it."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, required=True, help="the demo's dataset manifest (with blend fakes)")
    ap.add_argument("--new", type=Path, required=True, help="the demo's benchmark folder (the new recipe)")
    ap.add_argument("--work", type=Path, default=Path("runs/recipes"))
    ap.add_argument("--out", type=Path, default=Path("reports/recipes"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    run_benchmark(old_manifest(args.dataset), args.work / "old", OLD_CONFIG, log=print)
    names = ["spectral", "dct", "cnn"]
    new_metrics = json.loads((args.new / "metrics.json").read_text())
    calibration = json.loads((args.new / "calibration.json").read_text())
    rules = {"old": OldRule(load_models(args.work / "old", names)),
             "new": NewRule(load_models(args.new, names), calibration)}
    df = pd.read_parquet(args.dataset)
    root = args.dataset.parent
    test = load_images(df[df["split"] == "test"], root, (64, 64))
    train_ids = set(df.loc[(df["split"] == "train") & (df["label"] == 0), "identity"].astype(str))
    real_rows = test.rows[test.rows["label"] == 0]
    unseen = sorted(set(real_rows["identity"].astype(str)) - train_ids)
    swaps = poisson_swaps(test.images[(test.rows["label"] == 0).to_numpy()], real_rows["identity"].to_numpy(), args.seed)
    perts = tuple(new_metrics["config"]["perturbations"]) or PERTURBATIONS
    result = {"command": "python benchmarks/bench_recipes.py " + " ".join(argv or sys.argv[1:]),
              "perturbations": list(perts), "generators": sorted(df.loc[df["label"] == 1, "generator"].unique()),
              "n_test_real": int(len(real_rows)), "unseen": unseen,
              "n_unseen_real": int(real_rows["identity"].isin(unseen).sum()), "n_swaps": int(len(swaps))}
    for recipe, rule in rules.items():
        result[recipe] = measure(rule, test, set(unseen), swaps, perts, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recipes.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "recipes.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
