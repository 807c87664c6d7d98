"""`forensics demo`: the whole spine on the embedded starter data, in one command.

starter corpus -> an evenly spaced selection of each video's frames -> the zoo's committed `small` checkpoints
and the training-free self-blend synthesize a labeled real+fake dataset -> the detectors train on the
post-processing chain, are calibrated on post-processed validation faces and scored (clean, perturbed, leave
one generator out) -> a Markdown/HTML report with plots -> a scan bundle -> `forensics scan` of held-out files.

This is the one place where `forensics` and `generators` meet (besides the zoo's own CLI): detectors never
import the zoo, the zoo only uses forensics' data layer.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from forensics.evaluate import BenchConfig

CHECKPOINTS = Path(__file__).resolve().parents[2] / "generators" / "checkpoints"


@dataclass(frozen=True)
class DemoOptions:
    data: Path = Path("data/starter")  # the starter corpus (built if missing)
    work: Path = Path("runs/demo")  # synthesized dataset, benchmark outputs, fitted detectors
    reports: Path = Path("runs/demo/reports")  # under runs/ (ignored): a demo run leaves the checkout clean
    size: int = 64  # every image (real and fake) at this resolution
    fakes_per_generator: int = 300  # per generator (translations and blends: at most one per real)
    frames_per_video: int = 100  # evenly spaced real frames kept per video (the full corpus has 7,701 frames)
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


def demo_reals(manifest: Path, frames_per_video: int, seed: int) -> Path:
    """The corpus with at most `frames_per_video` evenly spaced frames per video, written beside it (its paths stay
    relative to the corpus folder). Adjacent frames are near-duplicates: the selection keeps the variety."""
    from forensics.data.manifest import read_manifest, subsample_frames, write_manifest

    out = manifest.with_name("manifest.demo.parquet")
    write_manifest(subsample_frames(read_manifest(manifest), frames_per_video, seed), out)
    return out


def demo_bench_config(size: int, seed: int) -> BenchConfig:
    """The recommended recipe: every detector trains on the post-processing chain (both classes alike), the CNN
    sees the 64 px crops upsampled to 128 (its backbone downsamples 32x: at 64 px the last stage is a 2x2 map),
    calibration on post-processed validation faces; leave-one-generator-out models for the linear detectors (a
    CNN per left-out generator would multiply the demo's time; `forensics detect bench --logo all` runs it)."""
    from forensics.evaluate import BenchConfig

    return BenchConfig(
        image_size=size, seed=seed, cross_generator=False, logo_detectors=("spectral", "dct"),
        # patience 1: on the demo's few people the CNN's validation AUC peaks in the first epochs, then it learns
        # the training people (seen in the first run of this recipe: best epoch 1 of 3).
        detector_params={"cnn": {"input_size": 128, "augment": "postproc", "patience": 1},
                         "spectral": {"augment": "postproc"}, "dct": {"augment": "postproc"}})


def demo_scan_inputs(data: Path, faceswap_staging: Path, out: Path) -> list[Path]:
    """Held-out files for the closing scan: a real test-split video and still nobody trained on, a JPEG-50 copy
    of that still, and two whole frames whose face the face swap replaced (test-split sources)."""
    import cv2

    from forensics.augment import perturb
    from forensics.data.manifest import read_manifest
    from forensics.data.media import read_image, write_bytes_atomic
    from forensics.data.starter import ASSETS

    df = read_manifest(data / "manifest.parquet")
    test = df[(df["split"] == "test") & (df["label"] == 0)]
    video = test[test["media"] == "video"].sort_values("sample_id").iloc[0]
    stills = test[test["media"] == "image"].sort_values("sample_id")
    picks = [data / video["path"]]
    if len(stills):
        still = ASSETS / json.loads(stills.iloc[0]["postproc"])["source_file"]
        picks.append(still)
        jpeg, _ = perturb(read_image(still), "jpeg50")
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(jpeg, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        copy = out / f"{still.stem}_jpeg50.jpg"
        write_bytes_atomic(copy, buf.tobytes())
        picks.append(copy)
    held_out_videos = set(test["video_id"].astype(str))
    swapped = sorted(p for p in (faceswap_staging / "fake").rglob("*_frame.png")
                     if p.name.split("_f0")[0] in held_out_videos)
    return picks + swapped[:: max(1, len(swapped) // 2)][:2]


def scan_verdicts(scan_json: Path) -> list[str]:
    """One line per scanned file: its name, verdict and the verdict's reasons."""
    files = json.loads(Path(scan_json).read_text())["files"]
    return [f"{Path(f['path']).name}: {f['verdict']}" + (f" (reasons: {'; '.join(f['reasons'])})" if f["reasons"] else "")
            for f in files]


def run_demo(opts: DemoOptions, echo=typer.echo) -> Path:
    """Run the spine end to end; returns the report's Markdown path. Each stage resumes where it stopped."""
    from forensics.bundle.build import bundle_from_benchmark
    from forensics.data.manifest import describe_manifest, read_manifest
    from forensics.data.starter import StarterConfig, build_starter
    from forensics.evaluate import run_benchmark
    from forensics.report import write_report
    from forensics.scan.pipeline import default_bundle_dir, run_scan
    from forensics.scan.settings import ScanSettings
    from generators.synthesize import SynthOptions, synthesize

    started = time.perf_counter()
    stage = lambda name: echo(f"[{time.perf_counter() - started:6.1f}s] {name}")  # noqa: E731

    manifest = opts.data / "manifest.parquet"
    if not manifest.exists():
        stage(f"building the starter corpus into {opts.data} ({opts.frames_per_video} evenly spaced frames per "
              "video; `forensics data starter` builds every frame)")
        build_starter(opts.data, StarterConfig(max_frames_per_video=opts.frames_per_video))
    reals = demo_reals(manifest, opts.frames_per_video, opts.seed)
    counts = describe_manifest(read_manifest(reals))
    echo(f"         reals: {counts['by_split_label']} (at most {opts.frames_per_video} evenly spaced frames per video)")
    ckpts = committed_checkpoints()
    faceswap = ckpts.pop("faceswap", None)
    if not ckpts:
        raise typer.BadParameter(f"no committed zoo checkpoints under {CHECKPOINTS}")
    stage(f"synthesizing with {', '.join(ckpts)} and the self-blend at {opts.size}px")
    dataset = opts.work / "dataset"
    synthesize(list(ckpts.values()), reals, dataset,
               SynthOptions(n=opts.fakes_per_generator, size=opts.size, seed=opts.seed, training_free=("blend",)),
               progress=False)
    if faceswap is not None:
        stage("swapping faces in real frames (faceswap) and cropping them like the reals")
        add_faceswap_fakes(faceswap, reals, dataset, opts.fakes_per_generator, opts.size, opts.seed)
    counts = describe_manifest(read_manifest(dataset / "manifest.parquet"))
    echo(f"         dataset: {counts['rows']} samples; by generator {counts['by_generator']}")
    stage("training, calibrating and scoring detectors (spectral, dct, cnn; clean, perturbed, leave one generator out)")
    bench = opts.work / "bench"
    run_benchmark(dataset / "manifest.parquet", bench, demo_bench_config(opts.size, opts.seed),
                  log=lambda m: echo(f"         {m}"))
    stage(f"writing the report to {opts.reports}")
    report = write_report(bench, opts.reports, title="deepfake-forensics demo: the starter corpus and the zoo")
    bundle = bundle_from_benchmark(bench, opts.work / "bundle")
    stage(f"bundle: {bundle} (model card {bundle / 'MODEL_CARD.md'})")
    scan_out = opts.work / "scan"
    inputs = demo_scan_inputs(opts.data, opts.work / "faceswap_staging", opts.work / "scan_inputs")
    stage(f"scanning {len(inputs)} held-out files with that bundle: {', '.join(p.name for p in inputs)}")
    shutil.rmtree(scan_out, ignore_errors=True)  # a fresh scan each run (a scan folder refuses other settings)
    outcome = run_scan([str(p) for p in inputs], scan_out, bundle, ScanSettings(max_frames=150), progress=False,
                       log=lambda m: echo(f"         {m}"))
    for line in scan_verdicts(outcome.scan_json):
        echo(f"         {line}")
    shipped = default_bundle_dir()
    if (shipped / "bundle.json").is_file():  # what an analyst's plain `forensics scan` would say of the same files
        stage(f"the same files with the shipped release bundle ({shipped}; the demo's bundle is a minutes-long "
              "quick model, this one the release recipe's)")
        shutil.rmtree(scan_out.with_name("scan_shipped"), ignore_errors=True)
        shipped_outcome = run_scan([str(p) for p in inputs], scan_out.with_name("scan_shipped"), shipped,
                                   ScanSettings(max_frames=150), progress=False, log=lambda m: None)
        for line in scan_verdicts(shipped_outcome.scan_json):
            echo(f"         {line}")
    stage(f"done: {report}; scan report {outcome.report_html}")
    return report
