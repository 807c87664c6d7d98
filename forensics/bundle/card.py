"""A bundle's model card, written from the benchmark that trained it: data, per-generator AUC with CIs,
calibrated decisions on held-out reals clean and post-processed, leave-one-generator-out AUC, and the failure
modes those figures show. Every number comes from the benchmark's metrics.json."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from forensics.data.media import write_bytes_atomic

FPR_LIMIT = 0.10  # the promise for reals: at most 10% called "likely manipulated"
LOGO_LIMIT = 0.90


def _f(x: Any, digits: int = 3) -> str:
    try:
        return "–" if x is None or x != x else f"{float(x):.{digits}f}"
    except (TypeError, ValueError):
        return str(x)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def failure_modes(metrics: dict[str, Any], detector: str) -> list[str]:
    """The measured weaknesses of `detector`: perturbations that break the FPR promise, generators it misses
    when they were left out of training."""
    found = []
    for rec in metrics.get("calibrated_decisions", []):
        if rec["detector"] != detector:
            continue
        for key, who in (("fpr", "test reals"), ("fpr_unseen_identities", "reals of unseen people")):
            if rec.get(key) is not None and rec[key] == rec[key] and rec[key] > FPR_LIMIT:
                found.append(f"under `{rec['perturbation']}` it calls {rec[key]:.0%} of {who} likely manipulated "
                             f"(promise: <= {FPR_LIMIT:.0%})")
    for det, logo in metrics.get("leave_one_generator_out", {}).items():
        for g, m in logo["held_out"].items():
            if m["auc"] < LOGO_LIMIT:
                found.append(f"`{det}` trained without `{g}` reaches AUC {m['auc']:.3f} on it (< {LOGO_LIMIT})")
    return found


def model_card(metrics: dict[str, Any], title: str = "Model card: the default scan bundle") -> str:
    c = metrics["counts"]
    dets = list(dict.fromkeys(r["detector"] for r in metrics["results"]))
    headline = "fused" if "fused" in dets else dets[0]
    lines = [f"# {title}", "",
             "Written by `forensics detect bundle` from the benchmark that trained the bundle; every figure below is "
             "in that benchmark's `metrics.json`.", "",
             "## Training data", "",
             f"- manifest `{metrics['provenance']['manifest']}` (sha256 `{metrics['provenance']['manifest_sha256'][:16]}...`)",
             f"- generators: {', '.join(metrics['generators'])}",
             f"- faces: train {c['train']['n']} ({c['train']['real']} real / {c['train']['fake']} fake), "
             f"val {c['val']['n']}, test {c['test']['n']} ({c['test']['real']} real / {c['test']['fake']} fake)",
             f"- identities never seen in training, in the test split: {', '.join(metrics.get('unseen_identities', [])) or 'none'}",
             f"- images at {metrics['image_size'][0]} px; detectors: {', '.join(d for d in dets if d != 'fused')}; "
             f"calibration: {metrics['config'].get('calibration', 'platt')} on validation faces clean and under "
             f"{', '.join(metrics['config']['perturbations'])}", "",
             "## AUC per generator (clean test split, 95% bootstrap CI)", ""]
    rows = []
    for rec in metrics["results"]:
        if rec["train_generators"] != metrics["all_generators"] or rec["perturbation"] != "none":
            continue
        m = rec["metrics"]
        rows.append((rec["detector"],) + tuple(
            f"{_f(m[g]['auc'])} [{_f(m[g]['auc_ci'][0])}, {_f(m[g]['auc_ci'][1])}]" if g in m else "–"
            for g in ["all", *metrics["generators"]]))
    lines += _table(("detector", "all", *metrics["generators"]), rows) + ["", "## Decisions on the test split, clean and post-processed", "",
              "FPR: reals called *likely manipulated*; unseen-people FPR: the same on reals of people absent from "
              "training; TPR: fakes called *likely manipulated*; inconclusive: share sent to the analyst.", ""]
    rows = [(r["detector"], r["perturbation"], _f(r["ece"]), _f(r["fpr"]), _f(r["fpr_unseen_identities"]),
             _f(r["tpr"]), _f(r["inconclusive_real"]), _f(r["inconclusive_fake"]))
            for r in metrics.get("calibrated_decisions", [])]
    lines += _table(("detector", "perturbation", "ECE", "FPR", "unseen-people FPR", "TPR", "inconcl. real",
                     "inconcl. fake"), rows)
    logo = metrics.get("leave_one_generator_out", {})
    if logo:
        lines += ["", "## Leave one generator out (AUC on the generator never seen in training)", ""]
        gens = metrics["generators"]
        rows = [(det, *(_f(v["held_out"].get(g, {}).get("auc")) for g in gens), _f(v["mean_auc"]))
                for det, v in logo.items()]
        lines += _table(("detector", *gens, "mean"), rows)
    modes = failure_modes(metrics, headline)
    lines += ["", "## Known failure modes", ""]
    lines += [f"- {m}" for m in modes] or ["- none measured beyond the limits of the data below."]
    lines += ["- Trained on CPU-made fakes of a small zoo and a few dozen real people: manipulations from other "
              "tools (diffusion models, commercial face swaps, lip-sync) are not represented, and a *no sign* verdict "
              "on them means little.",
              "- Faces are scored after MTCNN alignment; faces smaller than the training crops' detail (below ~64 px) "
              "or heavily compressed are reported as inconclusive by the scan rather than trusted."]
    return "\n".join(lines) + "\n"


def write_model_card(path: str | Path, metrics: dict[str, Any]) -> None:
    write_bytes_atomic(Path(path), model_card(metrics).encode())
