"""`forensics demo`: the whole spine on the embedded starter data, in one command.

starter corpus -> the zoo's committed `small` checkpoints synthesize a labeled real+fake dataset -> the
detectors train and are scored (clean, perturbed, cross-generator) -> a Markdown/HTML report with plots.

This is the one place where `forensics` and `generators` meet (besides the zoo's own CLI): detectors never
import the zoo, the zoo only uses forensics' data layer.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import typer

CHECKPOINTS = Path(__file__).resolve().parents[2] / "generators" / "checkpoints"


@dataclass(frozen=True)
class DemoOptions:
    data: Path = Path("data/starter")  # the starter corpus (built if missing)
    work: Path = Path("runs/demo")  # synthesized dataset, benchmark outputs, fitted detectors
    reports: Path = Path("reports/demo")  # the committed report
    size: int = 64  # every image (real and fake) at this resolution
    fakes_per_generator: int = 600  # unconditional models; translation models make one fake per real
    seed: int = 0


def committed_checkpoints(root: Path = CHECKPOINTS) -> dict[str, Path]:
    """The zoo's shipped `small` checkpoints by generator name (a folder with model.json + model.safetensors)."""
    found = {}
    for card in sorted(root.glob("*/model.json")):
        if (card.parent / "model.safetensors").exists():
            found[json.loads(card.read_text())["generator"]] = card.parent
    return found


def add_faceswap_fakes(ckpt: Path, real_manifest: Path, dataset: Path, n: int, size: int, seed: int) -> int:
    """Swapped-face crops joined to the synthesized dataset at its resolution; returns the count added.

    The face swap makes 128 px crops of merged frames (aligned with the real crop's own matrix); they are
    resized by the very function that resized the reals, so resampling is never what tells them apart.
    """
    from forensics.data.manifest import merge_manifests, read_manifest, sha256_file, write_manifest
    from forensics.data.media import read_image, write_image
    from generators.data import resize_square
    from generators.faceswap_video import synthesize_faceswap_images

    staging = dataset.parent / "faceswap_staging"
    done = staging / "manifest.parquet"
    swapped = read_manifest(done) if done.exists() else synthesize_faceswap_images(ckpt, real_manifest, staging, n=n, seed=seed)
    fakes = swapped[(swapped["label"] == 1) & (swapped["media"] != "video")].copy()
    paths, hashes = [], []
    for rel in fakes["path"]:
        target = Path("fake") / "faceswap" / Path(rel).name
        write_image(dataset / target, resize_square(read_image(staging / rel), size))
        paths.append(target.as_posix())
        hashes.append(sha256_file(dataset / target))
    # Recorded in the same form as the zoo's synthesis records the reals' resize.
    post = [json.dumps({**json.loads(p), "resize": {"from": [int(w), int(h)], "to": [size, size],
                                                     "interp": "area" if size < min(w, h) else "cubic"}}, sort_keys=True)
            for p, w, h in zip(fakes["postproc"], fakes["width"], fakes["height"])]
    fakes = fakes.assign(path=paths, sha256=hashes, width=size, height=size, postproc=post)
    combined = read_manifest(dataset / "manifest.parquet")
    combined = merge_manifests([combined[combined["generator"] != "faceswap"], fakes])
    write_manifest(combined, dataset / "manifest.parquet")
    return len(fakes)


def run_demo(opts: DemoOptions, echo=typer.echo) -> Path:
    """Run the spine end to end; returns the report's Markdown path. Each stage resumes where it stopped."""
    from forensics.data.manifest import describe_manifest, read_manifest
    from forensics.data.starter import build_starter
    from forensics.evaluate import BenchConfig, run_benchmark
    from forensics.report import write_report
    from generators.synthesize import SynthOptions, synthesize

    started = time.perf_counter()
    stage = lambda name: echo(f"[{time.perf_counter() - started:6.1f}s] {name}")  # noqa: E731

    manifest = opts.data / "manifest.parquet"
    if not manifest.exists():
        stage(f"building the starter corpus into {opts.data}")
        build_starter(opts.data)
    ckpts = committed_checkpoints()
    faceswap = ckpts.pop("faceswap", None)
    if not ckpts:
        raise typer.BadParameter(f"no committed zoo checkpoints under {CHECKPOINTS}")
    stage(f"synthesizing with {', '.join(ckpts)} at {opts.size}px")
    dataset = opts.work / "dataset"
    synthesize(list(ckpts.values()), manifest, dataset,
               SynthOptions(n=opts.fakes_per_generator, size=opts.size, seed=opts.seed), progress=False)
    if faceswap is not None:
        stage("swapping faces in real frames (faceswap) and cropping them like the reals")
        add_faceswap_fakes(faceswap, manifest, dataset, opts.fakes_per_generator, opts.size, opts.seed)
    counts = describe_manifest(read_manifest(dataset / "manifest.parquet"))
    echo(f"         dataset: {counts['rows']} samples; by generator {counts['by_generator']}")
    stage("training and scoring detectors (spectral, dct, cnn; clean, perturbed, cross-generator)")
    # The CNN sees the 64 px crops upsampled to 128: its backbone downsamples 32x, and at 64 px the last stage
    # is a 2x2 map. At 128 px the demo's CNN goes from 0.73 to 0.88 mean cross-generator AUC (and from 0.95 to
    # 1.00 on JPEG-75), for four times the CNN's training time.
    config = BenchConfig(image_size=opts.size, seed=opts.seed, detector_params={"cnn": {"input_size": 128}})
    run_benchmark(dataset / "manifest.parquet", opts.work / "bench", config, log=lambda m: echo(f"         {m}"))
    stage(f"writing the report to {opts.reports}")
    report = write_report(opts.work / "bench", opts.reports, title="deepfake-forensics demo: the starter corpus and the zoo")
    stage(f"done: {report}")
    return report
