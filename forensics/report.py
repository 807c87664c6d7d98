"""Benchmark report: Markdown (and optionally HTML) with matplotlib PNG plots, from the outputs of
`forensics.evaluate.run_benchmark` (`metrics.json` + `scores.parquet`).

The report is built once as a list of blocks (heading, paragraph, table, image, preformatted) and rendered
to both formats, so the two never disagree. Sections: headline table, per-generator AUC with CIs, the
cross-generator matrix, robustness to post-processing (JPEG-75 and the rest), ROC curves, saturation (where
fakes are still trivially separable), training record, skipped files and provenance.
"""
from __future__ import annotations

import html as html_lib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SATURATION_AUC = 0.99
CLEAN = "none"


@dataclass(frozen=True)
class Block:
    kind: str  # "h1" | "h2" | "p" | "table" | "img" | "pre"
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, (float, np.floating)) else str(x)


def _fmt_ci(m: dict[str, Any], key: str = "auc") -> str:
    ci = m.get(f"{key}_ci") or [float("nan"), float("nan")]
    return f"{_fmt(m.get(key))} [{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _video_blocks(vid: list[tuple[str, str, str, dict[str, Any]]], all_tag: str) -> list["Block"]:
    """The video-level table, or one sentence saying why there is none (a single class among the test videos)."""
    pooled = [(d, p, vm.get("all", {})) for d, t, p, vm in vid if t == all_tag]
    rows = tuple((d, p, str(m.get("n_real", "–")), str(m.get("n_fake", "–")), _fmt_ci(m))
                 for d, p, m in pooled if m.get("auc") is not None)
    if rows:
        return [Block("table", header=("detector", "perturbation", "real videos", "fake videos", "AUC [95% CI]"),
                      rows=rows)]
    counts = pooled[0][2] if pooled else {}
    return [Block("p", f"No video-level AUC: the test split holds {counts.get('n_real', 0)} real and "
                       f"{counts.get('n_fake', 0)} fake videos, and an AUC needs both.")]


# ------------------------------------------------------------------------------------------------ lookups


class Results:
    """Index over metrics.json: metrics of (detector, train set, perturbation[, generator])."""

    def __init__(self, metrics: dict[str, Any]) -> None:
        self.raw = metrics
        self.generators: list[str] = metrics["generators"]
        self.all_tag: str = metrics["all_generators"]
        self.detectors: list[str] = list(dict.fromkeys(r["detector"] for r in metrics["results"]))
        self.perturbations: list[str] = [CLEAN] + [p for p in metrics["config"]["perturbations"]]
        self._index = {(r["detector"], r["train_generators"], r["perturbation"]): r for r in metrics["results"]}

    def get(self, detector: str, perturbation: str = CLEAN, generator: str = "all",
            train: str | None = None) -> dict[str, Any] | None:
        rec = self._index.get((detector, train or self.all_tag, perturbation))
        return None if rec is None else rec["metrics"].get(generator)

    def auc(self, detector: str, perturbation: str = CLEAN, generator: str = "all") -> float:
        m = self.get(detector, perturbation, generator)
        return float("nan") if m is None else float(m["auc"])


# ------------------------------------------------------------------------------------------------ plots


def _savefig(fig, path: Path) -> None:
    """PNG rendered in memory, then written atomically: a killed report never leaves half a plot."""
    import io

    from forensics.data.media import write_bytes_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    write_bytes_atomic(path, buf.getvalue())


def plot_per_generator(res: Results, path: Path) -> None:
    """Grouped bars: AUC per generator (trained on all, clean) for each detector, with 95% CI whiskers."""
    import matplotlib.pyplot as plt

    gens = res.generators + (["all"] if len(res.generators) > 1 else [])
    width = 0.8 / max(1, len(res.detectors))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(gens) + 2), 3.4))
    for j, det in enumerate(res.detectors):
        vals, lo, hi = [], [], []
        for g in gens:
            m = res.get(det, CLEAN, g) or {}
            a = m.get("auc", np.nan)
            ci = m.get("auc_ci") or [np.nan, np.nan]
            vals.append(a)
            lo.append(max(0.0, a - ci[0]) if np.isfinite(ci[0]) else 0.0)
            hi.append(max(0.0, ci[1] - a) if np.isfinite(ci[1]) else 0.0)
        x = np.arange(len(gens)) + (j - (len(res.detectors) - 1) / 2) * width
        ax.bar(x, vals, width, yerr=[lo, hi], capsize=3, label=det)
    ax.set_xticks(np.arange(len(gens)), gens)
    ax.set_ylim(0.4, 1.02)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylabel("test AUC (95% CI)")
    ax.set_title("Per-generator AUC, trained on all generators")
    ax.legend(fontsize=8, loc="lower right")
    _savefig(fig, path)
    plt.close(fig)


def plot_cross_generator(res: Results, path: Path) -> None:
    """One heatmap per detector: rows = training generator, columns = test generator."""
    import matplotlib.pyplot as plt

    cross = res.raw["cross_generator"]
    dets = [d for d in res.detectors if d in cross]
    fig, axes = plt.subplots(1, len(dets), figsize=(3.9 * len(dets) + 1.0, 3.6), squeeze=False,
                             constrained_layout=True)
    for j, (ax, det) in enumerate(zip(axes[0], dets)):
        m = np.array(cross[det]["auc"], dtype=float)
        gens = cross[det]["generators"]
        im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="viridis")
        for i in range(m.shape[0]):
            for k in range(m.shape[1]):
                ax.text(k, i, _fmt(m[i, k], 2), ha="center", va="center", fontsize=8,
                        color="black" if m[i, k] > 0.6 else "white")
        ax.set_xticks(range(len(gens)), gens, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(gens)), gens if j == 0 else [""] * len(gens), fontsize=8)
        ax.set_xlabel("test generator")
        if j == 0:
            ax.set_ylabel("train generator")
        ax.set_title(f"{det}: off-diag {_fmt(cross[det]['mean_off_diagonal'], 3)}", fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="AUC")
    _savefig(fig, path)
    plt.close(fig)


def plot_robustness(res: Results, path: Path) -> None:
    """AUC (all generators pooled, model trained on all) under each post-processing."""
    import matplotlib.pyplot as plt

    perts = [p for p in res.perturbations if any(res.get(d, p) for d in res.detectors)]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(perts) + 2), 3.4))
    for det in res.detectors:
        ax.plot(range(len(perts)), [res.auc(det, p) for p in perts], marker="o", label=det)
    ax.set_xticks(range(len(perts)), perts, rotation=30, ha="right")
    ax.set_ylim(0.4, 1.02)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylabel("test AUC (all generators)")
    ax.set_title("Robustness to post-processing")
    ax.legend(fontsize=8)
    _savefig(fig, path)
    plt.close(fig)


def plot_roc(scores: pd.DataFrame, res: Results, path: Path) -> None:
    """ROC curves per detector on the clean test split (solid) and after JPEG-75 (dashed)."""
    import matplotlib.pyplot as plt

    from forensics.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, det in enumerate(res.detectors):
        for pert, ls in ((CLEAN, "-"), ("jpeg75", "--")):
            part = scores[(scores["detector"] == det) & (scores["train_generators"] == res.all_tag)
                          & (scores["perturbation"] == pert)]
            if part.empty or part["label"].nunique() < 2:
                continue
            fpr, tpr, _ = roc_curve(part["label"].to_numpy(), part["score"].to_numpy())
            label = f"{det} ({'clean' if pert == CLEAN else pert}) {_fmt(res.auc(det, pert), 3)}"
            ax.plot(fpr, tpr, ls=ls, color=colors[j % len(colors)], label=label)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set_xlabel("false-positive rate (reals flagged)")
    ax.set_ylabel("true-positive rate (fakes caught)")
    ax.set_title("ROC, trained on all generators")
    ax.legend(fontsize=7, loc="lower right")
    _savefig(fig, path)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ sections


def saturated_cells(res: Results, threshold: float = SATURATION_AUC) -> list[tuple[str, str]]:
    """(generator, perturbation) cells where every detector's AUC is >= threshold (models trained on all)."""
    cells = []
    for pert in res.perturbations:
        for gen in res.generators:
            aucs = [res.auc(d, pert, gen) for d in res.detectors]
            if aucs and all(np.isfinite(a) and a >= threshold for a in aucs):
                cells.append((gen, pert))
    return cells


def saturated_cross_cells(res: Results, threshold: float = SATURATION_AUC) -> list[tuple[str, str]]:
    """(train generator, test generator) off-diagonal cells where every cross-evaluated detector is >= threshold."""
    cross = res.raw.get("cross_generator", {})
    if not cross:
        return []
    gens = next(iter(cross.values()))["generators"]
    cells = []
    for i, tg in enumerate(gens):
        for k, sg in enumerate(gens):
            if i != k and all(c["auc"][i][k] >= threshold for c in cross.values()):
                cells.append((tg, sg))
    return cells


def build_blocks(metrics: dict[str, Any], scores: pd.DataFrame, out_dir: Path, title: str) -> list[Block]:
    res = Results(metrics)
    B: list[Block] = [Block("h1", title)]
    counts = metrics["counts"]
    B.append(Block("p", (
        f"Detectors {', '.join(res.detectors)} on {metrics['image_size'][0]}x{metrics['image_size'][1]} images; "
        f"generators: {', '.join(res.generators)}. Test split: {counts['test']['real']} reals, "
        f"{counts['test']['fake']} fakes (train {counts['train']['n']}, val {counts['val']['n']}). "
        "AUCs carry 95% stratified bootstrap CIs. The headline's accuracies use each model's raw threshold (a "
        f"{_target_fpr(metrics)} false-positive rate on clean validation reals); the calibrated three-way "
        "decisions the scan uses are in their own section.")))

    # Headline
    cross = metrics.get("cross_generator", {})
    header = ("detector", "AUC [95% CI]", "AP", "EER", "TPR@FPR1%", "TPR@FPR5%", "acc@thr", "real acc", "fake acc",
              "log-loss", "JPEG-75 AUC", "cross-gen off-diag AUC")
    rows = []
    for det in res.detectors:
        m = res.get(det) or {}
        j = res.get(det, "jpeg75") or {}
        rows.append((det, _fmt_ci(m), _fmt(m.get("ap")), _fmt(m.get("eer")), _fmt(m.get("tpr@fpr1%")),
                     _fmt(m.get("tpr@fpr5%")), _fmt(m.get("accuracy")), _fmt(m.get("real_accuracy")),
                     _fmt(m.get("fake_accuracy")), _fmt(m.get("log_loss")), _fmt(j.get("auc")),
                     _fmt(cross.get(det, {}).get("mean_off_diagonal"))))
    B += [Block("h2", "Headline (trained on all generators, clean test split)"), Block("table", header=header, rows=tuple(rows))]

    # Per generator
    plot_per_generator(res, out_dir / "per_generator_auc.png")
    header = ("detector",) + tuple(res.generators)
    rows = tuple((det,) + tuple(_fmt_ci(res.get(det, CLEAN, g) or {}) for g in res.generators) for det in res.detectors)
    B += [Block("h2", "Per-generator AUC"),
          Block("p", "Each generator's test fakes against all test reals; model trained on every generator."),
          Block("table", header=header, rows=rows), Block("img", "per_generator_auc.png", )]

    # Cross generator
    B.append(Block("h2", "Cross-generator matrix"))
    if cross:
        plot_cross_generator(res, out_dir / "cross_generator.png")
        B.append(Block("p", "Rows: the generator a model was trained on (with the training reals); columns: the "
                            "generator whose test fakes it must tell from the test reals. Off-diagonal cells measure "
                            "generalisation to an unseen generator."))
        for det, c in cross.items():
            rows = tuple((tg,) + tuple(_fmt(v) for v in row) for tg, row in zip(c["generators"], c["auc"]))
            B += [Block("p", f"**{det}**: mean off-diagonal AUC {_fmt(c['mean_off_diagonal'])}, "
                             f"mean diagonal {_fmt(c['mean_diagonal'])}."),
                  Block("table", header=("train \\ test",) + tuple(c["generators"]), rows=rows)]
        B.append(Block("img", "cross_generator.png"))
    else:
        why = ("the leave-one-generator-out table below replaces it as the generalisation headline"
               if metrics.get("leave_one_generator_out") else
               "needs at least two generators and `cross_generator` enabled")
        B.append(Block("p", f"Not computed ({why})."))

    # Robustness
    perts = [p for p in res.perturbations if any(res.get(d, p) for d in res.detectors)]
    if len(perts) > 1:
        plot_robustness(res, out_dir / "robustness.png")
        rows = tuple((det,) + tuple(_fmt(res.auc(det, p)) for p in perts) for det in res.detectors)
        B += [Block("h2", "Robustness to post-processing"),
              Block("p", "AUC on all generators' test fakes vs test reals after each deterministic perturbation "
                         "(model trained on clean data with its own augmentation). JPEG-75 is the headline column."),
              Block("table", header=("detector",) + tuple(perts), rows=rows), Block("img", "robustness.png")]
        rows = []
        for det in res.detectors:
            for p in perts:
                m = res.get(det, p) or {}
                rows.append((det, p, _fmt(m.get("accuracy")), _fmt(m.get("real_accuracy")),
                             _fmt(m.get("fake_accuracy")), _fmt(m.get("fpr_at_threshold"))))
        B += [Block("p", "Decisions at each model's raw threshold, fitted on clean validation reals only (post-processing "
                         "shifts scores, so this threshold may not hold its false-positive rate; the calibrated "
                         "decisions below are what the scan uses):"),
              Block("table", header=("detector", "perturbation", "acc", "real acc", "fake acc", "FPR on reals"),
                    rows=tuple(rows))]

    B += _calibrated_blocks(metrics) + _logo_blocks(metrics)

    plot_roc(scores, res, out_dir / "roc.png")
    B += [Block("h2", "ROC curves"), Block("img", "roc.png")]

    # Saturation
    B += [Block("h2", "Saturation: where fakes are still trivially separable")] + _saturation_blocks(res)

    # Video level
    vid = [(r["detector"], r["train_generators"], r["perturbation"], r["video_metrics"])
           for r in metrics["results"] if r.get("video_metrics")]
    if vid:
        B += [Block("h2", "Video level (mean of frame scores per video_id)")] + _video_blocks(vid, res.all_tag)

    B += _attribution_blocks(metrics)

    # Training record
    rows = []
    for key, rec in metrics.get("training", {}).items():
        rows.append((key, _fmt(rec.get("seconds"), 1), str(rec.get("n_train", "–")), _fmt(rec.get("threshold"), 4),
                     str(rec.get("threshold_source", "–")), str(rec.get("best_epoch", "–")),
                     "resumed" if rec.get("resumed") else ""))
    B += [Block("h2", "Training record"),
          Block("table", header=("model", "seconds", "n train", "threshold", "calibrated on", "best epoch", ""),
                rows=tuple(rows))]

    skipped = metrics.get("skipped", [])
    B.append(Block("h2", "Skipped files"))
    if skipped:
        rows = tuple((s["sample_id"], s["path"], s["error"]) for s in skipped[:50])
        B.append(Block("table", header=("sample_id", "path", "reason"), rows=rows))
        if len(skipped) > 50:
            B.append(Block("p", f"... and {len(skipped) - 50} more (see metrics.json)."))
    else:
        B.append(Block("p", "None: every manifest row was read."))

    B += [Block("h2", "Provenance"), Block("pre", json.dumps(metrics["provenance"], indent=2, sort_keys=True)),
          Block("p", "Configuration:"), Block("pre", json.dumps(metrics["config"], indent=2, sort_keys=True))]
    return B


def _calibrated_blocks(metrics: dict[str, Any]) -> list[Block]:
    """The three-way decisions after calibration on post-processed validation faces, per perturbation."""
    recs = metrics.get("calibrated_decisions")
    if not recs:
        return []
    order = {p: i for i, p in enumerate([CLEAN, *metrics["config"]["perturbations"]])}
    recs = sorted(recs, key=lambda r: (r["detector"], order.get(r["perturbation"], len(order))))
    rows = tuple((r["detector"], r["perturbation"], _fmt(r["ece"]), _fmt(r["fpr"]), _fmt(r["fpr_unseen_identities"]),
                  _fmt(r["tpr"]), _fmt(r["fnr"]), _fmt(r["inconclusive_real"]), _fmt(r["inconclusive_fake"]))
                 for r in recs)
    unseen = ", ".join(metrics.get("unseen_identities", [])) or "none in this test split"
    return [Block("h2", "Calibrated decisions (what an analyst reads)"),
            Block("p", "Each detector's score is calibrated (" + metrics["config"].get("calibration", "platt") +
                  ") on validation faces clean and under every perturbation, then cut into *likely manipulated* / "
                  "*inconclusive* / *no sign of manipulation* by a band that keeps 5% of validation reals above it "
                  "and 5% of validation fakes below it; `fused` stacks the detectors' calibrated probabilities. "
                  "FPR = reals called likely manipulated; unseen-people FPR = the same on reals of people absent "
                  f"from training ({unseen}); FNR = fakes called no sign; ECE = expected calibration error."),
            Block("table", header=("detector", "perturbation", "ECE", "FPR", "unseen-people FPR", "TPR", "FNR",
                                   "inconclusive (real)", "inconclusive (fake)"), rows=rows)]


def _attribution_blocks(metrics: dict[str, Any]) -> list[Block]:
    """Which generator made each test fake (or real / unknown): recall per class and the confusion matrix."""
    att = metrics.get("attribution")
    if not att:
        return []
    ci = att.get("accuracy_ci")
    conf = att["confusion"]
    rows = tuple((r, *(str(c) for c in counts), _fmt(att["per_class_recall"].get(r)))
                 for r, counts in zip(conf["rows"], conf["counts"]))
    return [Block("h2", "Generator attribution"),
            Block("p", "A multinomial head on DCT + spectrum features (trained through the `postproc` chain) names "
                       "the generator of each test face, or *real*, or *unknown* when it is not confident: accuracy "
                       f"{_fmt(att['accuracy'])}" + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "") +
                       f", unknown rate {_fmt(att['unknown_rate'])}. Rows: true class; columns: answer."),
            Block("table", header=("true class", *conf["cols"], "recall"), rows=rows)]


def _logo_blocks(metrics: dict[str, Any]) -> list[Block]:
    """Leave one generator out: the generalisation headline (the model never saw the generator it is tested on)."""
    logo = metrics.get("leave_one_generator_out")
    if not logo:
        return []
    gens = metrics["generators"]
    rows = tuple((det, *(_fmt_ci(v["held_out"][g]) if g in v["held_out"] else "–" for g in gens), _fmt(v["mean_auc"]))
                 for det, v in logo.items())
    return [Block("h2", "Leave one generator out"),
            Block("p", "One model per generator, trained on the reals and every *other* generator's fakes, tested on "
                       "the left-out generator's test fakes against all test reals (AUC, 95% CI)."),
            Block("table", header=("detector", *gens, "mean"), rows=rows)]


def _target_fpr(metrics: dict[str, Any]) -> str:
    """The detectors' calibration target(s), e.g. "5%" (hyperparameter `target_fpr`, default 5%)."""
    params = metrics["config"].get("detector_params", {})
    fprs = {params.get(d, {}).get("target_fpr", 0.05) for d in metrics["config"]["detectors"]}
    return "/".join(f"{f:.0%}" for f in sorted(fprs))


def _saturation_blocks(res: Results) -> list[Block]:
    cells = saturated_cells(res)
    cross_cells = saturated_cross_cells(res)
    out = [Block("p", f"A cell is saturated when every detector reaches AUC ≥ {SATURATION_AUC}: there the benchmark "
                      "no longer separates detectors and the fakes carry an easy, detector-agnostic trace.")]
    if not cells and not cross_cells:
        out.append(Block("p", "No saturated cell: for every generator and post-processing at least one detector "
                              f"stays below {SATURATION_AUC}."))
        return out
    by_gen: dict[str, list[str]] = {}
    for gen, pert in cells:
        by_gen.setdefault(gen, []).append("clean" if pert == CLEAN else pert)
    for gen, perts in by_gen.items():
        out.append(Block("p", f"**{gen}** fakes are still trivially separable (every detector ≥ {SATURATION_AUC}) "
                              f"under: {', '.join(perts)}."))
    if cross_cells:
        out.append(Block("p", "Cross-generator transfer is saturated (every detector ≥ "
                              f"{SATURATION_AUC}) for train → test: "
                              + ", ".join(f"{a} → {b}" for a, b in cross_cells) + "."))
    rows = tuple((g,) + tuple("**sat**" if (g, p) in cells else _fmt(min(res.auc(d, p, g) for d in res.detectors))
                              for p in res.perturbations) for g in res.generators)
    out += [Block("p", "Lowest AUC across detectors per cell (sat = every detector ≥ threshold):"),
            Block("table", header=("generator",) + tuple(res.perturbations), rows=rows)]
    return out


# ------------------------------------------------------------------------------------------------ rendering


def render_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            lines += [f"# {b.text}", ""]
        elif b.kind == "h2":
            lines += [f"## {b.text}", ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(b.header) + " |")
            lines.append("|" + "|".join("---" for _ in b.header) + "|")
            lines += ["| " + " | ".join(r) + " |" for r in b.rows]
            lines.append("")
        elif b.kind == "img":
            lines += [f"![{b.text}]({b.text})", ""]
        elif b.kind == "pre":
            lines += ["```", b.text, "```", ""]
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    parts = html_lib.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def render_html(blocks: list[Block]) -> str:
    body: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{html_lib.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{_inline_html(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{html_lib.escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "img":
            body.append(f'<p><img src="{html_lib.escape(b.text)}" alt="{html_lib.escape(b.text)}"></p>')
        elif b.kind == "pre":
            body.append(f"<pre>{html_lib.escape(b.text)}</pre>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
             "font-size:13px}th{background:#f3f3f3}pre{background:#f7f7f7;padding:0.6em;font-size:12px}"
             "img{max-width:100%}")
    title = html_lib.escape(next((b.text for b in blocks if b.kind == "h1"), "report"))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def write_report(bench_dir: str | Path, out_dir: str | Path | None = None, html: bool = True,
                 title: str = "Deepfake detection benchmark") -> Path:
    """Render `report.md` (+ `report.html`) and PNG plots for a benchmark directory; returns the .md path."""
    import matplotlib

    from forensics.data.media import write_bytes_atomic
    from forensics.evaluate import read_scores

    matplotlib.use("Agg")
    bench_dir = Path(bench_dir)
    out_dir = Path(out_dir) if out_dir else bench_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = json.loads((bench_dir / "metrics.json").read_text())
    scores = read_scores(bench_dir)
    blocks = build_blocks(metrics, scores, out_dir, title)
    md_path = out_dir / "report.md"
    write_bytes_atomic(md_path, render_markdown(blocks).encode())
    if html:
        write_bytes_atomic(out_dir / "report.html", render_html(blocks).encode())
    return md_path
