"""Generator attribution report: which features work, how well the chosen attributor names the generator on the
test split (clean and perturbed), and how often it says "unknown" for a generator it never saw.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attribution.py \\
        --data /tmp/attr_work/dataset/manifest.parquet --out reports/attribution [--cnn DIR_OF_A_SAVED_CNN]

1. every candidate (feature set x training augmentation) is fitted on the train split and calibrated on val;
2. the recommended one is chosen on *validation* accuracy (mean of clean and each --perturb), never on test;
3. all candidates are scored on the test split, clean and under --perturb (accuracy with a bootstrap 95% CI);
4. open set: for each generator g, the recommended recipe (and the best of each other --augment preset) is
   refitted on
   `forensics.protocols.leave_one_generator_out(df, g)`'s train/val and scored on the whole test split, so g's
   fakes are unseen and the other classes seen: the unknown rates of both say whether "unknown" means something.
Writes `<out>/attribution.json`, `<out>/attribution.md` and confusion-matrix PNGs. `--save DIR` keeps the fitted
recommended attributor (safetensors + JSON).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from forensics.attribution import (
    GeneratorAttributor,
    attribution_metrics,
    evaluate_attributor,
    generator_labels,
    plot_confusion_matrix,
)
from forensics.data.manifest import dataset_root, read_manifest, sha256_file
from forensics.data.media import write_bytes_atomic
from forensics.detectors.base import versions
from forensics.evaluate import SplitData, load_images
from forensics.protocols import describe_protocol, fake_generators, leave_one_generator_out, mask_of


def command_line(argv: list[str]) -> str:
    """The command as run, with the --note text (shown in the report itself) replaced by a placeholder."""
    shown, skip = [], False
    for a in argv:
        if skip:
            shown.append("'<note>'")
            skip = False
        elif a == "--note":
            shown.append(a)
            skip = True
        elif a.startswith("--note="):
            shown.append("--note='<note>'")
        else:
            shown.append(shlex.quote(a))
    return "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attribution.py " + " ".join(shown)


def fit_candidate(features: str, augment: str, args, data: dict[str, SplitData], cnn: str | None,
                  train_mask: np.ndarray | None = None, val_mask: np.ndarray | None = None
                  ) -> tuple[GeneratorAttributor, float]:
    tr, va = data["train"], data["val"]
    tm = np.ones(len(tr.rows), bool) if train_mask is None else train_mask
    vm = np.ones(len(va.rows), bool) if val_mask is None else val_mask
    t0 = time.perf_counter()
    att = GeneratorAttributor(features=features, C=args.C, coverage=args.coverage, augment=augment,
                              cnn_detector=cnn if "cnn" in features else None, seed=args.seed)
    att.fit(tr.images[tm], generator_labels(tr.rows)[tm], va.images[vm], generator_labels(va.rows)[vm])
    return att, time.perf_counter() - t0


def evaluate_split(att: GeneratorAttributor, split: SplitData, args, n_boot: int) -> dict[str, dict[str, Any]]:
    return evaluate_attributor(att, split.images, generator_labels(split.rows),
                               split.rows["sample_id"].astype(str).tolist(), args.perturb, args.seed, n_boot)


def _pct(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _acc_ci(m: dict[str, Any]) -> str:
    lo, hi = m.get("accuracy_ci", [float("nan")] * 2)
    return f"{_pct(m['accuracy'])} [{_pct(lo)}, {_pct(hi)}]"


def confusion_table(m: dict[str, Any]) -> list[str]:
    conf = m["confusion"]
    lines = ["| true \\ predicted | " + " | ".join(conf["cols"]) + " | recall |",
             "|---|" + "---|" * (len(conf["cols"]) + 1)]
    for r, row in zip(conf["rows"], conf["counts"]):
        lines.append(f"| {r} | " + " | ".join(str(c) for c in row) + f" | {_pct(m['per_class_recall'][r])} |")
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    rec = result["recommended"]
    perts = ["none", *result["perturbations"]]
    out = ["# Generator attribution", "",
           f"Command: `{result['command']}`", "",
           f"Data: `{result['manifest']}` (sha256 {result['manifest_sha256'][:12]}), {result['image_size'][0]} px; "
           f"train {result['counts']['train']}, val {result['counts']['val']}, test {result['counts']['test']} "
           f"images; classes {', '.join(result['classes'])}.", "",
           *([result["note"], ""] if result.get("note") else []),
           "Each candidate is a multinomial logistic regression on the named features (`forensics.attribution`), "
           "fitted on the train split; its temperature and its two \"unknown\" thresholds are set on the val split "
           f"(coverage {result['coverage']}). The recommended recipe is the best on *validation* accuracy (mean "
           "over clean and " + ", ".join(result["perturbations"]) + "); test figures are reported for all. "
           "Accuracy counts \"unknown\" as wrong; 95% CIs are a bootstrap over test images.", "",
           "## Candidates", "",
           "| features | augment | val acc (clean / " + " / ".join(result["perturbations"]) + ") | "
           + " | ".join(f"test acc {p} [95% CI]" for p in perts) + " | unknown (clean) | fit s |",
           "|---|---|---|" + "---|" * len(perts) + "---|---|"]
    for c in result["candidates"]:
        val = " / ".join(_pct(c["val"][p]["accuracy"]) for p in perts)
        mark = " **(recommended)**" if c["name"] == rec else ""
        out.append(f"| {c['features']}{mark} | {c['augment']} | {val} | "
                   + " | ".join(_acc_ci(c["test"][p]) for p in perts)
                   + f" | {_pct(c['test']['none']['unknown_rate'])} | {c['fit_seconds']:.1f} |")
    best = next(c for c in result["candidates"] if c["name"] == rec)
    for p in perts:
        m = best["test"][p]
        out += ["", f"## Recommended ({rec}), test split, {'clean' if p == 'none' else p}", "",
                f"Accuracy {_acc_ci(m)}; among answered: {_pct(m['accuracy_answered'])}; unknown rate "
                f"{_pct(m['unknown_rate'])}.", "", *confusion_table(m), "",
                f"![confusion {p}]({best['plots'][p]})"]
    for name, per_gen in result.get("open_set", {}).items():
        out += ["", f"## Open set: leave one generator out ({name})", "",
                "The recipe refitted on `forensics.protocols.leave_one_generator_out` train/val without one "
                "generator, scored on the whole test split; \"unknown\" is the right answer for the held-out "
                "generator's fakes.", "",
                "| held out | its fakes called unknown | called real | seen classes called unknown | "
                "accuracy on seen classes |", "|---|---|---|---|---|"]
        for g, o in per_gen.items():
            out.append(f"| {g} | {_pct(o['unseen_unknown_rate'])} | {_pct(o['unseen_called_real'])} | "
                       f"{_pct(o['seen_unknown_rate'])} | {_pct(o['seen_accuracy'])} |")
        out.append(f"| mean | {_pct(np.mean([o['unseen_unknown_rate'] for o in per_gen.values()]))} | "
                   f"{_pct(np.mean([o['unseen_called_real'] for o in per_gen.values()]))} | "
                   f"{_pct(np.mean([o['seen_unknown_rate'] for o in per_gen.values()]))} | "
                   f"{_pct(np.mean([o['seen_accuracy'] for o in per_gen.values()]))} |")
    out += ["", f"Versions: {json.dumps(result['versions'])}; git {result['git_commit']}; "
                f"{result['seconds']:.0f} s in all.", ""]
    return "\n".join(out)


def open_set(df, data: dict[str, SplitData], features: str, augment: str, args, cnn: str | None,
             log) -> dict[str, Any]:
    out = {}
    test_true = generator_labels(data["test"].rows)
    for gen in fake_generators(df):
        split = leave_one_generator_out(df, gen)
        masks = {part: mask_of(data[part].rows, getattr(split, part)) for part in ("train", "val")}
        att, secs = fit_candidate(features, augment, args, data, cnn, masks["train"], masks["val"])
        pred = att.predict(data["test"].images)
        m = attribution_metrics(test_true, pred, att.classes_)
        held = test_true == gen
        seen = ~held
        seen_m = attribution_metrics(test_true[seen], pred[seen], att.classes_)
        out[gen] = {"protocol_counts": describe_protocol(split), "classes": att.classes_,
                    "unseen_unknown_rate": float((pred[held] == "unknown").mean()),
                    "unseen_called_real": float((pred[held] == "real").mean()),
                    "unseen_called": {c: int((pred[held] == c).sum()) for c in np.unique(pred[held])},
                    "seen_unknown_rate": seen_m["unknown_rate"], "seen_accuracy": seen_m["accuracy"],
                    "metrics": m, "fit_seconds": round(secs, 2)}
        log(f"  open set without {gen}: its fakes unknown {out[gen]['unseen_unknown_rate']:.3f} "
            f"(real {out[gen]['unseen_called_real']:.3f}); seen classes unknown {seen_m['unknown_rate']:.3f}, "
            f"accuracy {seen_m['accuracy']:.3f} ({secs:.1f}s)")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="manifest with train/val/test splits and fakes (unless --render)")
    ap.add_argument("--out", type=Path, default=Path("reports/attribution"))
    ap.add_argument("--features", default="dct,spectral,dct+spectral", help="comma-separated feature sets")
    ap.add_argument("--augment", default="none,postproc", help="comma-separated training augmentation presets")
    ap.add_argument("--cnn", default=None, help="saved CNNDetector dir: adds the 'cnn' and 'dct+cnn' candidates")
    ap.add_argument("--perturb", default="jpeg75", help="comma-separated test perturbations")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--C", type=float, default=0.05)
    ap.add_argument("--coverage", type=float, default=0.95)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-open-set", action="store_true", help="skip the leave-one-generator-out refits")
    ap.add_argument("--save", type=Path, default=None, help="save the recommended attributor here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="", help="Markdown paragraph on how the data and the CNN were made")
    ap.add_argument("--render", action="store_true",
                    help="only re-render <out>/attribution.md from <out>/attribution.json (with --note, replace it)")
    args = ap.parse_args(argv)
    if args.render:
        result = json.loads((args.out / "attribution.json").read_text())
        if args.note:
            result["note"] = args.note
            write_bytes_atomic(args.out / "attribution.json", (json.dumps(result, indent=2) + "\n").encode())
        write_bytes_atomic(args.out / "attribution.md", render_markdown(result).encode())
        print(f"rendered {args.out / 'attribution.md'}")
        return result
    if args.data is None:
        ap.error("--data is required (unless --render)")
    args.perturb = tuple(p for p in args.perturb.split(",") if p)
    t_start = time.perf_counter()
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    df = read_manifest(args.data)
    root = dataset_root(args.data)
    size = (args.size, args.size)
    data = {s: load_images(df[df["split"] == s], root, size) for s in ("train", "val", "test")}
    skipped = [x for d in data.values() for x in d.skipped]
    log(f"images {args.size}px: " + ", ".join(f"{s} {len(d.rows)}" for s, d in data.items())
        + f"; skipped {len(skipped)} (videos and unreadable files)")

    feature_sets = [f for f in args.features.split(",") if f]
    if args.cnn:
        feature_sets += [f for f in ("cnn", "dct+cnn") if f not in feature_sets]
    candidates, fitted = [], {}
    for features in feature_sets:
        for augment in [a for a in args.augment.split(",") if a]:
            name = f"{features}/{augment}"
            att, secs = fit_candidate(features, augment, args, data, args.cnn)
            val = evaluate_split(att, data["val"], args, 0)
            test = evaluate_split(att, data["test"], args, args.n_boot)
            candidates.append({"name": name, "features": features, "augment": augment, "params": att.get_params(),
                               "fit_seconds": round(secs, 2), "temperature": att.temperature_,
                               "threshold": att.threshold_, "atypicality_threshold": att.atypicality_threshold_,
                               "val": val, "test": test})
            fitted[name] = att
            log(f"  {name:24s} val acc " + " / ".join(f"{val[p]['accuracy']:.3f}" for p in val)
                + " | test acc " + " / ".join(f"{test[p]['accuracy']:.3f}" for p in test)
                + f" | unknown {test['none']['unknown_rate']:.3f} ({secs:.1f}s)")
    for c in candidates:
        c["val_score"] = float(np.mean([m["accuracy"] for m in c["val"].values()]))
    best = max(candidates, key=lambda c: c["val_score"])
    log(f"recommended: {best['name']} (mean validation accuracy {best['val_score']:.3f})")

    args.out.mkdir(parents=True, exist_ok=True)
    best["plots"] = {}
    for pert, m in best["test"].items():
        png = f"confusion_{pert}.png"
        plot_confusion_matrix(m, args.out / png, f"{best['name']}, test split, {'clean' if pert == 'none' else pert}")
        best["plots"][pert] = png
        log(f"test {pert}: accuracy {m['accuracy']:.3f} {m.get('accuracy_ci')}, unknown {m['unknown_rate']:.3f}")
        log(f"  confusion rows=true {json.dumps(m['confusion']['rows'])} cols={json.dumps(m['confusion']['cols'])}")
        for r, row in zip(m["confusion"]["rows"], m["confusion"]["counts"]):
            log(f"    {r:12s} {row}")
    if args.save:
        fitted[best["name"]].save(args.save)
        log(f"saved the recommended attributor to {args.save}")

    result = {
        "command": command_line(argv if argv is not None else sys.argv[1:]),
        "manifest": str(args.data), "manifest_sha256": sha256_file(args.data), "image_size": list(size),
        "counts": {s: len(d.rows) for s, d in data.items()}, "classes": fitted[best["name"]].classes_,
        "coverage": args.coverage, "perturbations": list(args.perturb), "seed": args.seed,
        "recommended": best["name"], "candidates": candidates, "skipped": skipped, "note": args.note,
    }
    if not args.no_open_set:
        # The recommended recipe, and the best of every other augmentation preset: augmentation widens each
        # class's spread, which is what the atypicality rule measures against.
        per_augment = {}
        for c in sorted(candidates, key=lambda c: -c["val_score"]):
            per_augment.setdefault(c["augment"], c)
        result["open_set"] = {}
        for c in per_augment.values():
            log(f"open set, {c['name']}:")
            result["open_set"][c["name"]] = open_set(df, data, c["features"], c["augment"], args, args.cnn, log)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    result.update(versions=versions(), git_commit=commit or None, seconds=round(time.perf_counter() - t_start, 1))
    write_bytes_atomic(args.out / "attribution.json", (json.dumps(result, indent=2) + "\n").encode())
    write_bytes_atomic(args.out / "attribution.md", render_markdown(result).encode())
    log(f"wrote {args.out / 'attribution.md'} and attribution.json ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
