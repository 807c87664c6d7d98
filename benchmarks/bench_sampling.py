"""Sampling throughput of the `small` StyleGAN2 on this machine, as images/s and as a fraction of the dense
conv throughput measured in the same run.

    .venv/bin/python benchmarks/bench_sampling.py            # -> reports/throughput.md + reports/throughput.json

Model FLOPs per image come from torch.utils.flop_counter (convs, transposed convs, matmuls; 2 FLOPs per MAC).
The reference is a dense 3x3 conv at the model's own mid-network shape (128 -> 128 channels at 16x16, batch 32),
in channels_last (NHWC, about 2x faster than NCHW with oneDNN: the
fairest, i.e. hardest, reference), timed interleaved with the model so that load from other processes hits both alike; the other conv shapes of the
network are timed too and reported. Both sides report their fastest (least disturbed) run.
fraction = model FLOP/s / reference conv FLOP/s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from timing import count_flops, cpu_name, time_once  # benchmarks/timing.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "generators" / "checkpoints" / "stylegan2_small"
REFERENCE = (128, 16)  # channels, spatial size: the 16x16 block of `small`
OTHER_SHAPES = [(256, 4), (256, 8), (64, 32), (32, 64)]
TARGET_FRACTION = 0.60  # issue #3


def load_small() -> tuple[torch.nn.Module, str]:
    import generators
    from generators.checkpoint import load_generator

    if (CKPT / "model.json").exists():
        return load_generator(CKPT).model, "committed checkpoint"
    torch.manual_seed(0)
    return generators.create("stylegan2", "small"), "fresh init (no committed checkpoint)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", type=Path, default=ROOT / "reports")
    args = ap.parse_args()

    G, source = load_small()
    G.eval()
    n = args.batch
    res = G.resolution

    def sample() -> torch.Tensor:
        return G.sample(n, seed=0, noise_mode="random")

    conv_inputs = {}
    for c, s in [REFERENCE, *OTHER_SHAPES]:
        x = torch.randn(n, c, s, s).contiguous(memory_format=torch.channels_last)  # oneDNN's fastest layout here
        w = torch.randn(c, c, 3, 3)
        conv_inputs[(c, s)] = (x, w)

    def conv(c: int, s: int) -> Callable[[], torch.Tensor]:
        x, w = conv_inputs[(c, s)]
        return lambda: F.conv2d(x, w, padding=1)

    with torch.inference_mode():
        model_flops = count_flops(sample)
        conv_flops = {k: count_flops(conv(*k)) for k in conv_inputs}
        for _ in range(3):  # warm-up: oneDNN primitive creation, caches
            sample()
            for k in conv_inputs:
                conv(*k)()
        t_model: list[float] = []
        t_conv: dict[tuple[int, int], list[float]] = {k: [] for k in conv_inputs}
        for _ in range(args.repeats):  # interleaved so background load hits both alike
            t_model.append(time_once(sample))
            for k in conv_inputs:
                f = conv(*k)
                t_conv[k].extend(time_once(f) for _ in range(3))

    # One statistic for both sides: the least disturbed run (the minimum), as timeit recommends on a shared
    # machine. (Until 2026-11-23 the model took the median and the conv a best-of-3 median, which favoured the conv.)
    best_model = min(t_model)
    images_per_s = n / best_model
    model_flops_per_image = model_flops / n
    model_flops_per_s = model_flops / best_model
    conv_rates = {f"{c}ch@{s}x{s}": conv_flops[(c, s)] / min(t_conv[(c, s)]) for c, s in conv_inputs}
    ref_key = f"{REFERENCE[0]}ch@{REFERENCE[1]}x{REFERENCE[1]}"
    fraction = model_flops_per_s / conv_rates[ref_key]

    result = {
        "model": "stylegan2 small", "weights": source, "resolution": res, "batch": n, "noise_mode": "random",
        "images_per_s": round(images_per_s, 2),
        "model_gflops_per_image": round(model_flops_per_image / 1e9, 4),
        "model_gflop_per_s": round(model_flops_per_s / 1e9, 2),
        "reference_conv": f"dense 3x3 conv {ref_key}, batch {n}",
        "reference_conv_gflop_per_s": round(conv_rates[ref_key] / 1e9, 2),
        "fraction_of_conv_throughput": round(fraction, 3),
        "conv_gflop_per_s_by_shape": {k: round(v / 1e9, 2) for k, v in conv_rates.items()},
        "sample_seconds": {"min": round(best_model, 4), "median": round(statistics.median(t_model), 4),
                           "max": round(max(t_model), 4)},
        "machine": {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "command": "python benchmarks/bench_sampling.py",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in result["conv_gflop_per_s_by_shape"].items())
    md = f"""# Sampling throughput: StyleGAN2 `small`

Command: `{result['command']}` ({source}, {res} px, batch {n}, `torch.inference_mode`, noise mode random).

| measure | value |
|---|---|
| images/s | **{result['images_per_s']}** |
| model GFLOPs per image | {result['model_gflops_per_image']} |
| model GFLOP/s | {result['model_gflop_per_s']} |
| reference: {result['reference_conv']} | {result['reference_conv_gflop_per_s']} GFLOP/s |
| **fraction of conv throughput** | **{result['fraction_of_conv_throughput']:.1%}** |

Dense 3x3 conv throughput at the network's other shapes (same run, batch {n}):

| shape | GFLOP/s |
|---|---|
{rows}

Machine: {result['machine']['cpu']}, {result['machine']['logical_cpus']} logical CPUs, torch {result['machine']['torch']}
with {result['machine']['torch_threads']} threads, 1-min load average {result['machine']['load_average_1m']} at the end of
the run (the machine is shared; model and conv timings are interleaved so load affects both alike, and both
report their fastest run; the model's median batch took {result['sample_seconds']['median']} s, its fastest
{result['sample_seconds']['min']} s).
FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` (2 per multiply-add; elementwise work uncounted).

Target: at least {TARGET_FRACTION:.0%} of the reference conv's FLOP/s: **{"met" if fraction >= TARGET_FRACTION else "not met"}**.
What costs the rest, from `torch.profiler` on this model: the stride-2 transposed convs run at 40-75% of the
dense conv rate in oneDNN, and the elementwise passes (style scaling, demodulation, bias, noise, lrelu, the
[1,3,3,1] blur) each read and write a whole feature map.
"""
    (args.out / "throughput.md").write_text(md)
    print(json.dumps({k: result[k] for k in ("images_per_s", "model_gflops_per_image", "model_gflop_per_s",
                                             "reference_conv_gflop_per_s", "fraction_of_conv_throughput")}))
    print(json.dumps(result["conv_gflop_per_s_by_shape"]))


if __name__ == "__main__":
    main()
