"""Image-to-image models of the zoo (CycleGAN, StarGAN v2): quality before vs after training, sample grids, and
translation throughput on this machine.

    # quality of a checkpoint vs its step-0 baseline, plus grids -> reports/zoo/<name>_small_quality.{json,md}, *_grid*.png
    .venv/bin/python benchmarks/bench_translation.py quality --ckpt generators/checkpoints/cyclegan_small \
        --baseline runs/cyclegan_small/ckpt-00000000 --data data/starter/manifest.parquet
    # throughput of the committed small checkpoints -> reports/translation_throughput.{json,md}
    .venv/bin/python benchmarks/bench_translation.py throughput

Quality: `generators.translation.evaluate_translator` (SWD and spectral distance of translations vs real images of
their target domains, cycle L1, accuracy of a small domain classifier trained on real train images).
Throughput follows benchmarks/bench_sampling.py: FLOPs from torch.utils.flop_counter, a dense 3x3 conv at the
model's bottleneck shape (channels_last) as the reference, model and conv timed interleaved.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from timing import count_flops, cpu_name, time_once  # benchmarks/timing.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
CKPTS = {"cyclegan": ROOT / "generators" / "checkpoints" / "cyclegan_small",
         "stargan_v2": ROOT / "generators" / "checkpoints" / "stargan_v2_small"}


def _fmt(q: dict) -> dict:
    return {"swd_x1e3_mean": q["swd_x1e3"]["mean"], "spectral_rms": q["spectral"]["rms"], "cycle_l1": q["cycle_l1"],
            "domain_accuracy": q["domain_accuracy"], "per_target": q["domain_accuracy_per_target"]}


def quality(args: argparse.Namespace) -> None:
    from generators.checkpoint import load_generator
    from generators.translation import (evaluate_translator, fit_domain_classifier, load_domain_images,
                                        model_domains, translation_grid)

    torch.manual_seed(0)
    after = load_generator(args.ckpt)
    before = load_generator(args.baseline) if args.baseline else None
    names, column = model_domains(after.model)
    train = load_domain_images(args.data, after.model.resolution, column, names, splits=("train",))
    clf = fit_domain_classifier(train.images, train.domain, len(names), seed=args.seed)  # one judge for both
    result: dict = {"generator": after.name, "checkpoint": str(args.ckpt), "checkpoint_sha256": after.sha256,
                    "train_steps": after.train_steps, "data": str(args.data), "per_domain": args.per_domain,
                    "after": evaluate_translator(after.model, args.data, clf, args.per_domain, args.seed)}
    if before is not None:
        result["baseline"] = str(args.baseline)
        result["before"] = evaluate_translator(before.model, args.data, clf, args.per_domain, args.seed)
    prefix = args.out / f"{after.name}_small"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    grids = [translation_grid(after.model, args.data, f"{prefix}_grid.png", seed=args.seed)]
    if "reference" in getattr(after.model, "style_modes", ()):
        grids.append(translation_grid(after.model, args.data, f"{prefix}_grid_reference.png", seed=args.seed,
                                      mode="reference"))
    if before is not None:
        grids.append(translation_grid(before.model, args.data, f"{prefix}_grid_step0.png", seed=args.seed))
    result["grids"] = [Path(g).name for g in grids]  # beside this JSON
    result["command"] = ("python benchmarks/bench_translation.py quality --ckpt " + str(args.ckpt)
                         + (f" --baseline {args.baseline}" if args.baseline else "") + f" --data {args.data}")
    Path(f"{prefix}_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = []
    for key in ("before", "after"):
        if key in result:
            f = _fmt(result[key])
            rows.append(f"| {key} | {f['swd_x1e3_mean']} | {f['spectral_rms']} | {f['cycle_l1']} | "
                        f"{f['domain_accuracy']:.1%} | {f['per_target']} |")
    a = result["after"]
    u = a["untranslated_sources"]
    rows.append(f"| untranslated sources (reference) | {u['swd_x1e3']} | {u['spectral_rms']} | - | "
                f"{u['classified_as_target']:.1%} | |")
    md = f"""# {after.name} `small`: translation quality

Checkpoint `{args.ckpt}` ({after.train_steps} steps; sha256 `{after.sha256[:12]}`), domains {a['domains']}
(column `{column}`), {a['n_translations']} translations ({args.per_domain} real sources per domain into every other
domain), step-0 baseline `{args.baseline}`.

| weights | SWD x1e3 (lower better) | spectral RMS (lower better) | cycle L1 | classified as target | per target |
|---|---|---|---|---|---|
{chr(10).join(rows)}

The domain classifier (a 4-conv CNN) is trained on the real train images only; its accuracy on held-out reals
is {a['classifier_heldout_real_accuracy']} (n = {a['classifier_heldout_n']}; the starter's carphone_man has no
held-out frames). Identities in the starter corpus differ in background and colour as much as in the face, so
"classified as target" rewards taking on the target's overall look. SWD/spectral compare translations to real
images of their target domains; cycle L1 is mean |x - back(translate(x))| in [-1, 1] units.

Grids: {', '.join(f'`{g}`' for g in result['grids'])} (first column: real source; then one column per domain).

Command: `{result['command']}`
"""
    Path(f"{prefix}_quality.md").write_text(md)
    print(json.dumps({k: _fmt(result[k]) for k in ("before", "after") if k in result}, indent=1))


def _load(name: str) -> tuple[torch.nn.Module, str]:
    import generators
    from generators.checkpoint import load_generator

    if (CKPTS[name] / "model.json").exists():
        return load_generator(CKPTS[name]).model, "committed checkpoint"
    torch.manual_seed(0)
    return generators.create(name, "small"), "fresh init (no committed checkpoint)"


def throughput(args: argparse.Namespace) -> None:
    results = {}
    n = args.batch
    for name, ref_shape in (("cyclegan", None), ("stargan_v2", None)):
        model, source = _load(name)
        model.eval()
        res = model.resolution
        x = torch.rand(n, 3, res, res, generator=torch.Generator().manual_seed(0)) * 2 - 1
        if name == "cyclegan":
            ch = model.config.ngf * 4  # the residual trunk at R/4

            def run() -> torch.Tensor:
                return model.translate(x, target=1)
        else:
            ch = min(model.config.base_dim * 2 ** (model.config.resolution.bit_length() - 5),
                     model.config.max_conv_dim)  # the bottleneck at 16x16

            def run() -> torch.Tensor:
                return model.translate(x, target=1, seed=list(range(n)))
        ref_shape = (ch, 16)
        xr = torch.randn(n, ch, 16, 16).contiguous(memory_format=torch.channels_last)
        wr = torch.randn(ch, ch, 3, 3)

        def conv() -> torch.Tensor:
            return F.conv2d(xr, wr, padding=1)

        with torch.inference_mode():
            model_flops, conv_flops = count_flops(run), count_flops(conv)
            for _ in range(2):
                run()
                conv()
            t_model, t_conv = [], []
            for _ in range(args.repeats):
                t_model.append(time_once(run))
                t_conv.append(min(time_once(conv) for _ in range(3)))
        med = statistics.median(t_model)
        conv_rate = conv_flops / statistics.median(t_conv)
        results[name] = {
            "weights": source, "resolution": res, "batch": n, "images_per_s": round(n / med, 2),
            "model_gflops_per_image": round(model_flops / n / 1e9, 4),
            "model_gflop_per_s": round(model_flops / med / 1e9, 2),
            "reference_conv": f"dense 3x3 conv {ref_shape[0]}ch@16x16, batch {n}, channels_last",
            "reference_conv_gflop_per_s": round(conv_rate / 1e9, 2),
            "fraction_of_conv_throughput": round(model_flops / med / conv_rate, 3),
            "translate_seconds": {"median": round(med, 4), "min": round(min(t_model), 4), "max": round(max(t_model), 4)},
        }
    machine = {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "torch": torch.__version__, "load_average_1m": round(os.getloadavg()[0], 2)}
    out = {"models": results, "machine": machine, "command": "python benchmarks/bench_translation.py throughput"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "translation_throughput.json").write_text(json.dumps(out, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v['weights']} | {v['images_per_s']} | {v['model_gflops_per_image']} | "
                     f"{v['model_gflop_per_s']} | {v['reference_conv']}: {v['reference_conv_gflop_per_s']} | "
                     f"**{v['fraction_of_conv_throughput']:.1%}** |" for k, v in results.items())
    md = f"""# Translation throughput: CycleGAN and StarGAN v2 `small` (64 px)

Command: `{out['command']}` (batch {n}, `torch.inference_mode`; StarGAN v2 latent-guided, CycleGAN A->B).

| model | weights | images/s | GFLOPs/image | model GFLOP/s | reference conv GFLOP/s | fraction of conv |
|---|---|---|---|---|---|---|
{rows}

Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, torch {machine['torch']} with
{machine['torch_threads']} threads, 1-min load average {machine['load_average_1m']} at the end (shared machine; model
and reference conv are timed interleaved so load hits both alike). FLOPs from `torch.utils.flop_counter`
(2 per multiply-add; InstanceNorm/AdaIN and other elementwise work uncounted, which is why these
normalisation-heavy models sit lower than a pure conv stack).
"""
    (args.out / "translation_throughput.md").write_text(md)
    print(json.dumps({k: {m: v[m] for m in ("images_per_s", "model_gflops_per_image", "fraction_of_conv_throughput")}
                      for k, v in results.items()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--ckpt", type=Path, required=True)
    q.add_argument("--baseline", type=Path, default=None)
    q.add_argument("--data", type=Path, default=Path("data/starter/manifest.parquet"))
    q.add_argument("--per-domain", type=int, default=48)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", type=Path, default=ROOT / "reports" / "zoo")
    t = sub.add_parser("throughput")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--repeats", type=int, default=7)
    t.add_argument("--out", type=Path, default=ROOT / "reports")
    args = ap.parse_args()
    quality(args) if args.cmd == "quality" else throughput(args)


if __name__ == "__main__":
    main()
