"""`forensics detect ...`: list, train, evaluate and apply detectors; run the benchmark and its report.

Each command is a thin wrapper over a library function (forensics.detectors, forensics.evaluate,
forensics.report); heavy imports stay inside the command bodies so `forensics --help` is instant.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

detect_app = typer.Typer(no_args_is_help=True, help="Detectors: train, evaluate, predict, benchmark + report.")


def _load_detector(model: Path, command: str):
    """A saved detector, or exit 2 with one line naming the file and the reason (a corrupt, pickled or lying
    checkpoint is refused by forensics.modelfiles before any tensor is used)."""
    import forensics.detectors as registry
    from forensics.data.media import printable
    from forensics.modelfiles import CheckpointError

    try:
        return registry.load(model)
    except (CheckpointError, OSError, TypeError) as exc:
        typer.echo(f"forensics detect {command}: {printable(str(exc))}", err=True)
        raise typer.Exit(2) from None


def _split_list(value: Optional[str]) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _params(name: str, params_json: Optional[str], augment: Optional[str], epochs: Optional[int],
            device: Optional[str]) -> dict:
    """Explicit hyperparameters from --params JSON plus the CNN shortcuts (--augment/--epochs/--device)."""
    params = json.loads(params_json) if params_json else {}
    if not isinstance(params, dict):
        raise typer.BadParameter("--params must be a JSON object")
    shortcuts = {"augment": augment, "epochs": epochs, "device": device}
    for key, value in shortcuts.items():
        if value is not None:
            if name != "cnn":
                raise typer.BadParameter(f"--{key} applies to the cnn detector only")
            params[key] = value
    return params


@detect_app.command("list")
def list_cmd() -> None:
    """List registered detectors and their hyperparameters with defaults."""
    import inspect

    import forensics.detectors as registry

    for name in registry.list():
        sig = inspect.signature(registry.get_class(name).__init__)
        args = ", ".join(f"{p.name}={p.default!r}" for p in sig.parameters.values() if p.name != "self")
        typer.echo(f"{name}: {args}")


@detect_app.command("train")
def train_cmd(
    name: str = typer.Argument(..., help="detector name (see `forensics detect list`)"),
    data: Path = typer.Option(..., "--data", help="manifest with train (and val) splits"),
    out: Path = typer.Option(..., "--out", help="directory for the saved detector"),
    generators: Optional[str] = typer.Option(None, help="comma-separated fake generators to train on (default all)"),
    augment: Optional[str] = typer.Option(None, help="cnn augmentation preset: none, flip, blurjpeg0.1, blurjpeg0.5, strong"),
    epochs: Optional[int] = typer.Option(None, help="cnn epochs"),
    device: Optional[str] = typer.Option(None, help="cnn device: auto, cpu, cuda"),
    params: Optional[str] = typer.Option(None, help='hyperparameters as JSON, e.g. \'{"C": 0.5}\''),
    image_size: Optional[int] = typer.Option(None, help="resize images to this square size"),
) -> None:
    """Train one detector on the manifest's train split (val split: early stopping and threshold)."""
    import forensics.detectors as registry
    from forensics.data.manifest import dataset_root, read_manifest
    from forensics.evaluate import load_images, subset

    df = read_manifest(data)
    root = dataset_root(data)
    all_gens = sorted(df.loc[df["label"] == 1, "generator"].astype(str).unique())
    gens = _split_list(generators) or all_gens
    unknown = set(gens) - set(all_gens)
    if unknown:
        raise typer.BadParameter(f"generators not in the manifest: {sorted(unknown)} (have {all_gens})")
    size = (image_size, image_size) if image_size else None
    train = load_images(df[df["split"] == "train"], root, size)
    val = load_images(df[df["split"] == "val"], root, tuple(train.images.shape[1:3]))
    for s in train.skipped + val.skipped:
        typer.echo(f"skipped {s['path']}: {s['error']}", err=True)
    det = registry.create(name, **_params(name, params, augment, epochs, device))
    x, y = subset(train, gens)
    vx, vy = subset(val, gens)
    det.fit(x, y, vx if len(vy) else None, vy if len(vy) else None)
    det.train_generators_ = ",".join(gens)
    det.save(out)
    typer.echo(f"saved {name} trained on {','.join(gens)} (n={len(y)}, threshold={det.threshold_:.4g}) to {out}")


@detect_app.command("eval")
def eval_cmd(
    model: Path = typer.Argument(..., help="saved detector directory"),
    data: Path = typer.Option(..., "--data", help="manifest"),
    out: Path = typer.Option(..., "--out", help="directory for scores.parquet/csv and metrics.json"),
    perturb: Optional[str] = typer.Option(None, help="comma-separated perturbations, e.g. jpeg75,blur1"),
    split: str = typer.Option("test", help="train, val, test or all"),
    n_boot: int = typer.Option(500, help="bootstrap replicates for CIs"),
    seed: int = typer.Option(0),
) -> None:
    """Score a saved detector on a manifest split, clean and perturbed; write scores and metrics."""
    from forensics.evaluate import evaluate_model

    metrics = evaluate_model(model, data, out, _split_list(perturb), split=split, n_boot=n_boot, seed=seed,
                             log=typer.echo)
    for r in metrics["results"]:
        m = r["metrics"]["all"]
        typer.echo(f"{r['perturbation']:>10}: AUC {m['auc']:.4f}  AP {m['ap']:.4f}  EER {m['eer']:.4f}  "
                   f"acc@thr {m.get('accuracy', float('nan')):.4f}")


@detect_app.command("predict")
def predict_cmd(
    model: Path = typer.Argument(..., help="saved detector directory"),
    paths: list[Path] = typer.Argument(..., help="image files"),
) -> None:
    """Print P(fake) and the verdict at the calibrated threshold for each image (bad files are reported).

    One line per file: `PATH<tab>P<tab>fake|real` on stdout, or `PATH<tab>error<tab>REASON` on stderr (a name's
    undecodable bytes printed as backslash escapes)."""
    from forensics.data.media import MediaError, printable, read_image

    det = _load_detector(model, "predict")
    for path in paths:
        try:
            img = read_image(path)
        except (MediaError, OSError) as exc:
            typer.echo(f"{printable(path)}\terror\t{printable(str(exc))}", err=True)
            continue
        p = float(det.predict_proba(img[None])[0])
        typer.echo(f"{printable(path)}\t{p:.6f}\t{'fake' if p > det.threshold_ else 'real'}")


@detect_app.command("predict-video")
def predict_video_cmd(
    model: Path = typer.Argument(..., help="saved temporal detector directory"),
    paths: list[Path] = typer.Argument(..., help="video files"),
    clip_seconds: float = typer.Option(2.0, help="clip length in seconds"),
    max_clips: Optional[int] = typer.Option(None, help="at most this many clips per video, spread over it"),
) -> None:
    """Temporal detector on videos: P(fake) per 2 s clip and face track (bad files are reported)."""
    from forensics.data.media import MediaError
    from forensics.video.scoring import score_video

    det = _load_detector(model, "predict-video")
    for path in paths:
        try:
            rows = score_video(path, det, clip_seconds=clip_seconds, max_clips=max_clips)
        except (MediaError, OSError) as exc:
            typer.echo(f"{path}\terror\t{exc}", err=True)
            continue
        for r in rows:
            p = "-" if r["p_fake"] is None else f"{r['p_fake']:.4f}"
            typer.echo(f"{path}\tclip {r['clip']} @ {r['start_s']:.1f}s\ttrack {r['track']}\t{p}\t{r['verdict']}")


@detect_app.command("bench")
def bench_cmd(
    data: Path = typer.Option(..., "--data", help="manifest with train/val/test splits"),
    out: Path = typer.Option(..., "--out", help="benchmark directory (scores, metrics, models, report)"),
    detectors: str = typer.Option("spectral,dct,cnn", help="comma-separated detectors"),
    perturb: str = typer.Option("jpeg95,jpeg75,jpeg50,jpeg30,blur1,resize0.5,noise", help="perturbations"),
    cross_detectors: Optional[str] = typer.Option(None, help="detectors that get per-generator models (default all)"),
    no_cross: bool = typer.Option(False, "--no-cross", help="skip the cross-generator matrix"),
    logo: Optional[str] = typer.Option(None, help="detectors that also get leave-one-generator-out models "
                                                  "(comma-separated, 'all', default none)"),
    calibration: str = typer.Option("platt", help="calibration on post-processed validation faces: platt, isotonic"),
    params: Optional[str] = typer.Option(None, help='per-detector hyperparameters as JSON: {"cnn": {"epochs": 4}}'),
    image_size: Optional[int] = typer.Option(None),
    max_train_per_class: Optional[int] = typer.Option(None, help="cap per (label, generator) for quick runs"),
    n_boot: int = typer.Option(500),
    seed: int = typer.Option(0),
    fresh: bool = typer.Option(False, "--fresh", help="retrain even if saved models exist"),
    html: bool = typer.Option(True, "--html/--no-html"),
    video: bool = typer.Option(False, "--video", help="--data is a clip dataset (forensics synth --clip-seconds): "
                               "score its clips, clean and H.264 CRF 23/35, with --model's shipped video model"),
    model: Optional[Path] = typer.Option(None, "--model", help="with --video: the bundle (default: the shipped one)"),
) -> None:
    """Run the benchmark (train, calibrate, score clean + perturbed, leave-one-generator-out, cross-generator) and
    write the report. With --video: a bundle's video model (frames + temporal flicker) on a clip dataset."""
    if video:
        _bench_video(data, out, model, n_boot, seed)
        return
    from forensics.evaluate import BenchConfig, run_benchmark
    from forensics.jobs import OutputLockedError, OutputWriteError, output_errors, output_lock
    from forensics.report import write_report

    dets = tuple(_split_list(detectors))
    per_det = json.loads(params) if params else {}
    config = BenchConfig(
        detectors=dets, detector_params=per_det, perturbations=tuple(_split_list(perturb)),
        cross_generator=not no_cross,
        cross_generator_detectors=tuple(_split_list(cross_detectors)) if cross_detectors else None,
        logo_detectors=None if logo == "all" else tuple(_split_list(logo)), calibration=calibration,
        image_size=image_size, max_train_per_class=max_train_per_class, n_boot=n_boot, seed=seed)
    try:  # the report is part of the job: one lock over both
        with output_lock(out, log=typer.echo), output_errors(out):
            run_benchmark(data, out, config, resume=not fresh, log=typer.echo)
            typer.echo(f"report: {write_report(out, html=html)}")
    except (OutputLockedError, OutputWriteError) as exc:
        typer.echo(f"forensics detect bench: {exc}", err=True)
        raise typer.Exit(1) from None


def _bench_video(data: Path, out: Path, model: Optional[Path], n_boot: int, seed: int) -> None:
    from forensics.bundle import BundleError
    from forensics.scan.pipeline import default_bundle_dir
    from forensics.video.release import bench_bundle_video
    from forensics.video.report import score_block, write_video_bench_report

    bundle = model or default_bundle_dir()
    try:
        video_model, scores = bench_bundle_video(bundle, data, out, log=typer.echo)
    except BundleError as exc:
        typer.echo(f"forensics detect bench --video: {exc}", err=True)
        raise typer.Exit(2) from None
    block = score_block(scores, video_model, n_boot, seed)
    command = f"forensics detect bench --video --data {data} --out {out} --model {bundle}"
    typer.echo(f"report: {write_video_bench_report(out, block, video_model, str(bundle), command)}")
    for score, per in block["auc"].items():
        typer.echo(f"{score}: " + ", ".join(f"{c} AUC {v['auc']}" for c, v in per.items()))


@detect_app.command("bundle")
def bundle_cmd(
    bench_dir: Path = typer.Argument(..., help="directory written by `forensics detect bench`"),
    out: Path = typer.Option(..., "--out", help="bundle folder to write (e.g. forensics/assets/bundle)"),
    detectors: Optional[str] = typer.Option(None, help="comma-separated detectors (default: all the bench calibrated)"),
) -> None:
    """Package a benchmark's all-generator models, calibration and fusion as a scan bundle with its model card."""
    from forensics.bundle import bundle_sha256
    from forensics.bundle.build import bundle_from_benchmark

    path = bundle_from_benchmark(bench_dir, out, _split_list(detectors) if detectors else None)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    typer.echo(f"bundle: {path} ({size / 1e6:.1f} MB, sha256 {bundle_sha256(path)[:16]}...)")


@detect_app.command("report")
def report_cmd(
    bench_dir: Path = typer.Argument(..., help="directory written by `forensics detect bench`"),
    out: Optional[Path] = typer.Option(None, help="report directory (default: the benchmark directory)"),
    html: bool = typer.Option(True, "--html/--no-html"),
) -> None:
    """Re-render the Markdown/HTML report and plots from a benchmark's scores and metrics."""
    from forensics.report import write_report

    typer.echo(f"report: {write_report(bench_dir, out, html=html)}")


@detect_app.command("release")
def release_cmd(
    data: Path = typer.Option(Path("data/starter"), "--data", help="the full starter corpus (built if missing)"),
    out: Path = typer.Option(Path("runs/release"), "--out", help="dataset, fold models, scores, bundle, report"),
    seeds: str = typer.Option("0,1,2", help="CNN training seeds of the final models (the first one ships)"),
    epochs: int = typer.Option(3, help="CNN epochs per model"),
    reals_per_identity: int = typer.Option(600, help="real crops per identity in the working set"),
    quick: bool = typer.Option(False, "--quick", help="a few minutes' smoke run: tiny dataset, 1 epoch, 2 seeds, "
                                                     "one perturbation (the figures mean nothing)"),
    readme: Path = typer.Option(None, "--readme", help="also write the summary table into this README, between "
                                "its release-summary markers"),
) -> None:
    """Train the default bundle for release: every starter crop and zoo member at 128 px, identity-fold
    out-of-fold calibration with a worst-identity band, fusion only where it wins, an OOD guard, 3 seeds.
    Resumable: rerun the same command after a kill. About 1-2 hours on 2 CPU cores."""
    from forensics.jobs import OutputLockedError, OutputWriteError, output_errors, output_lock
    from forensics.release.dataset import ReleaseDataConfig
    from forensics.release.pipeline import ReleaseConfig, run_release

    cfg = ReleaseConfig(seeds=tuple(int(s) for s in _split_list(seeds)), cnn_epochs=epochs,
                        reals_per_identity=reals_per_identity)
    if quick:
        cfg = ReleaseConfig(data=ReleaseDataConfig(zoo_fakes=6, blends=10, faceswaps=4), reals_per_identity=30,
                            twins_per_identity=10, test_reals_per_identity=30, poisson_swaps=10, seeds=(0, 1),
                            cnn_epochs=1, perturbations=("jpeg50",))
    try:
        with output_lock(out, log=typer.echo), output_errors(out):
            bundle = run_release(data, out, cfg, log=typer.echo, readme=readme)
    except (OutputLockedError, OutputWriteError) as exc:
        typer.echo(f"forensics detect release: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"bundle: {bundle}; to ship it: rm -rf forensics/assets/bundle && cp -r {bundle} forensics/assets/bundle")


@detect_app.command("video-model")
def video_model_cmd(
    bundle: Path = typer.Argument(..., help="the bundle to add the video model to (e.g. runs/release/bundle)"),
    data: Path = typer.Option(Path("data/starter"), "--data", help="the starter corpus whose real videos the clips "
                              "are made from (when --videos does not exist yet)"),
    videos: Path = typer.Option(Path("runs/video/dataset"), "--videos", help="the clip dataset (built if missing)"),
    work: Path = typer.Option(Path("runs/video_model"), "--work", help="per-clip measurements (a rerun resumes)"),
    report: Path = typer.Option(Path("reports/video"), "--report", help="where video_model.md/json go"),
    release: Optional[Path] = typer.Option(None, "--release", help="the bundle's release run folder (e.g. "
                                           "runs/release): score each training video's frames with the fold "
                                           "detectors that never saw its person, so the fusion is fitted out of "
                                           "sample"),
) -> None:
    """Train the bundle's video model: the temporal (flicker) detector and its fusion with the frame scores, with
    a video band fitted leave-one-source-video-out; every clip measured as the scan measures a video. Writes
    BUNDLE/temporal and names it in bundle.json. Measuring the 609 clip-conditions took 611 s on 2 cores (cached: a
    rerun takes seconds); building the clip dataset first took ~45 min beside another training job."""
    import time

    from forensics.video.release import build_clip_dataset, train_video_model
    from forensics.video.report import video_model_figures, write_video_model_report

    started = time.perf_counter()
    manifest = build_clip_dataset(data / "manifest.parquet", videos, log=typer.echo)
    model, table, lovo, held = train_video_model(bundle, manifest, work, log=typer.echo, release=release)
    figures = video_model_figures(lovo, held, model)
    command = (f"forensics detect video-model {bundle} --videos {videos} --work {work} --report {report}"
               + (f" --release {release}" if release is not None else ""))
    path = write_video_model_report(report, figures, table, command, time.perf_counter() - started)
    for name, t in figures["targets"].items():
        typer.echo(f"{name}: {t['value']} (target {t['target']}: {'met' if t['met'] else 'not met'})")
    typer.echo(f"video model: {bundle / 'temporal'}; figures: {path}")


@detect_app.command("export")
def export_cmd(
    bundle: Path = typer.Argument(..., help="model bundle folder (e.g. forensics/assets/bundle)"),
    onnx: bool = typer.Option(False, "--onnx", help="write ONNX files of its CNN, frequency detectors and mask head "
                              "into BUNDLE/onnx/ (with export.json: opset, versions, sha256 of each file)"),
) -> None:
    """Export a bundle's models for a faster runtime; `forensics scan` then uses them (`--runtime auto|onnx`).
    Each file is checked against the torch / numpy scores before it is kept. The bundle's hash changes."""
    from forensics.bundle import BundleError
    from forensics.data.media import printable

    if not onnx:
        raise typer.BadParameter("choose a format: --onnx")
    try:
        from forensics.runtime.export import export_bundle
        from forensics.runtime.session import describe

        export_bundle(bundle)
    except ImportError as exc:
        typer.echo(f"forensics detect export: needs onnx and onnxruntime ({exc})", err=True)
        raise typer.Exit(2) from None
    except (BundleError, OSError) as exc:
        typer.echo(f"forensics detect export: {printable(str(exc))}", err=True)
        raise typer.Exit(2) from None
    typer.echo(describe(bundle))
    typer.echo(f"wrote {bundle / 'onnx'}")
