"""`forensics zoo ...` and `forensics synth`: thin wrappers over generators.train / .synthesize / checkpoint.

Heavy imports (torch, the models) happen inside the commands so `forensics --help` stays instant."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer

zoo_app = typer.Typer(no_args_is_help=True, help="The generator zoo: list, train and sample generative models.")


@zoo_app.command("list")
def list_models() -> None:
    """Registered generators with their presets."""
    import generators

    for name in generators.list():
        spec = generators.get_spec(name)
        typer.echo(f"{name:12s} {spec.kind:13s} presets: {', '.join(spec.presets)}  -  {spec.summary}")


@zoo_app.command("train")
def train_command(
    name: str = typer.Argument(..., help="Registered generator, e.g. stylegan2."),
    data: Path = typer.Option(..., "--data", help="Manifest whose real train split is the training set."),
    config: str = typer.Option("small", "--config", help="Preset: tiny | small | paper."),
    steps: int = typer.Option(..., "--steps", help="Total optimisation steps (a resumed run continues to this)."),
    out: Path = typer.Option(..., "--out", help="Run folder: ckpt-*/ checkpoints, latest.json, log.jsonl."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run folder's last checkpoint."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    seed: int = typer.Option(0, "--seed", help="Training seed (init, data order, noise)."),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Steps between checkpoints."),
    identities: Optional[str] = typer.Option(None, "--identities",
                                             help="Comma-separated identities, for models trained on named people "
                                                  "(faceswap: A,B)."),
    domains: Optional[str] = typer.Option(None, "--domains", help="Comma-separated domains (values of "
                                          "--domain-column) for image-to-image models; default: the biggest."),
    domain_column: Optional[str] = typer.Option(None, "--domain-column",
                                                help="Manifest column whose values are the domains (default identity)."),
) -> None:
    """Train a generator; under `torchrun` it runs data-parallel (gloo on CPU, NCCL on GPU)."""
    from generators.train import TrainOptions, train

    cfg = _with_identities(name, config, identities) if identities else config
    if domains or domain_column:
        cfg = _with_domains(name, cfg, domains, domain_column)
    with _job_errors("zoo train"):
        result = train(name, cfg, data, TrainOptions(steps=steps, out=out, seed=seed, device=device,
                                                     checkpoint_every=checkpoint_every, resume=resume))
    typer.echo(f"{result.steps} steps, {result.wall_time_s:.0f} s; checkpoint {result.checkpoint}")


@contextmanager
def _job_errors(command: str) -> Iterator[None]:
    """A held output folder or a disk fault: one clear line on stderr and exit status 1, not a traceback."""
    from forensics.jobs import OutputLockedError, OutputWriteError

    try:
        yield
    except (OutputLockedError, OutputWriteError) as exc:
        typer.echo(f"forensics {command}: {exc}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _single_writer(out: Path) -> Iterator[None]:
    """OUT's lock for the synthesis pipelines that do not take it themselves (face swap, clips); under torchrun
    only rank 0 takes it."""
    import os

    from forensics.jobs import output_lock

    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    with output_lock(out):
        yield


def _with_identities(name: str, config: str, identities: str):
    """The preset with its `identities` field replaced; models without that field refuse the option."""
    import dataclasses

    import generators

    cfg = generators.resolve_config(name, config)
    if "identities" not in {f.name for f in dataclasses.fields(cfg)}:
        raise typer.BadParameter(f"{name} does not train on named identities", param_hint="--identities")
    try:
        return dataclasses.replace(cfg, identities=tuple(s.strip() for s in identities.split(",") if s.strip()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--identities") from None


def _with_domains(name: str, config, domains: Optional[str], column: Optional[str]):
    """The config with `domains` (and `num_domains`, where the model has it) / `domain_column` replaced."""
    import dataclasses

    import generators

    cfg = generators.resolve_config(name, config)
    fields = {f.name for f in dataclasses.fields(cfg)}
    if "domains" not in fields:
        raise typer.BadParameter(f"{name} does not translate between domains", param_hint="--domains")
    changes: dict = {}
    if domains:
        changes["domains"] = tuple(s.strip() for s in domains.split(",") if s.strip())
        if "num_domains" in fields:
            changes["num_domains"] = len(changes["domains"])
    if column:
        changes["domain_column"] = column
    try:
        return dataclasses.replace(cfg, **changes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--domains") from None


@zoo_app.command("sample")
def sample_command(
    ckpt: Path = typer.Argument(..., help="Checkpoint folder (model.safetensors + model.json)."),
    n: int = typer.Option(16, "--n", help="Number of images."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first image; image i uses seed + i."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNGs (and grid.png)."),
    psi: float = typer.Option(1.0, "--psi", help="Truncation psi (1 = none)."),
    noise_mode: str = typer.Option("random", "--noise-mode", help="random | const | none."),
    device: str = typer.Option("cpu", "--device", help="auto | cpu | cuda."),
) -> None:
    """Write n sample PNGs and a grid from a checkpoint; the same seed gives the same bytes."""
    from generators.synthesize import sample_to_folder

    paths = sample_to_folder(ckpt, n=n, seed=seed, out=out, psi=psi, noise_mode=noise_mode, device=device)
    typer.echo(f"wrote {len(paths)} images to {out}")


@zoo_app.command("quality")
def quality_command(
    ckpt: Path = typer.Argument(..., help="Checkpoint folder to evaluate."),
    data: Path = typer.Option(..., "--data", help="Real manifest (all its real images are the reference)."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Step-0 checkpoint to compare against."),
    n: int = typer.Option(512, "--n", help="Images per side."),
    seed: int = typer.Option(0, "--seed", help="Sampling and projection seed."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the figures as JSON here."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Also write a 8x8 sample grid PNG here."),
) -> None:
    """Offline quality: SWD on Laplacian pyramids and the radial log-spectrum distance (lower is better)."""
    import json

    from generators import quality

    if baseline is not None:
        result = quality.compare_to_baseline(ckpt, baseline, data, n=n, seed=seed)
        summary = {k: {"swd_x1e3": result[k]["swd_x1e3"]["mean"], "spectral_rms": result[k]["spectral"]["rms"]}
                   for k in ("step0", "trained")}
        summary["trained_beats_step0"] = result["trained_beats_step0"]
    else:
        result = quality.evaluate_checkpoint(ckpt, data, n=n, seed=seed)
        summary = {"swd_x1e3": result["swd_x1e3"]["mean"], "spectral_rms": result["spectral"]["rms"]}
    if out is not None:
        quality.write_json(result, out)
    if grid is not None:
        from generators.checkpoint import load_generator

        quality.write_grid(load_generator(ckpt).model.sample(64, seed=seed), grid, nrow=8)
    typer.echo(json.dumps(summary, indent=2))


def synth_command(
    ckpt: List[Path] = typer.Option([], "--ckpt", help="Checkpoint folder; repeat for several generators."),
    generator: List[str] = typer.Option([], "--generator", help="Zoo member made without a checkpoint: blend "
                                        "(self-blended reals with their masks); combines with --ckpt."),
    data: Path = typer.Option(..., "--data", help="Real manifest: its reals are copied, its split shares reused."),
    n: int = typer.Option(..., "--n", "--count", help="Fakes per checkpoint or --generator (--count: same, for "
                          "torchrun, whose "
                          "argument parser mistakes '--n' for an abbreviation of its own options)."),
    out: Path = typer.Option(..., "--out", help="Dataset folder: manifest.parquet, real/, fake/<generator>/."),
    size: Optional[int] = typer.Option(None, "--size", help="Resolution for reals and fakes (default: the model's)."),
    seed: int = typer.Option(0, "--seed", help="Seed of fake 0; fake i uses seed + i."),
    psi: float = typer.Option(1.0, "--psi", help="Truncation psi."),
    noise_mode: str = typer.Option("random", "--noise-mode", help="random | const | none."),
    batch: int = typer.Option(16, "--batch", help="Images per forward pass."),
    device: str = typer.Option("cpu", "--device", help="auto | cpu | cuda."),
    videos: Optional[str] = typer.Option(None, "--videos", help="Face swap only: comma-separated video_ids of the "
                                         "real manifest to swap frame by frame (fake MP4s + re-encoded reals)."),
    video_variant: List[str] = typer.Option(["naive"], "--video-variant",
                                            help="Face-swap video variant: naive | jittered | smoothed (repeatable)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Face-swap videos: frames per video."),
    clip_seconds: Optional[float] = typer.Option(None, "--clip-seconds", help="Clip dataset (generators.video_dataset): "
                                                 "cut --videos (ids or 'all') into clips of this length and fake them "
                                                 "with every --ckpt (faceswap, cyclegan, stargan_v2) frame by frame."),
    max_seconds: float = typer.Option(20.0, "--max-seconds", help="Clip dataset: seconds used per source video "
                                      "(0: all of it; --max-clips are spread over them)."),
    max_clips: int = typer.Option(10, "--max-clips", help="Clip dataset: clips per source video."),
    video_split: str = typer.Option("corpus", "--video-split", help="Clip dataset: corpus (the source video's split) "
                                    "| videos (reassigned per source video)."),
) -> None:
    """Synthesize a labeled real+fake dataset; resumable, and sharded across ranks under `torchrun`."""
    from generators.checkpoint import read_model_json
    from generators.synthesize import SynthOptions, synthesize_distributed

    if not ckpt and not generator:
        raise typer.BadParameter("name at least one --ckpt or --generator", param_hint="--ckpt")
    unknown = sorted(set(generator) - {"blend"})
    if unknown:
        raise typer.BadParameter(f"{unknown}: only 'blend' is made without a checkpoint; pass checkpoints with "
                                 "--ckpt", param_hint="--generator")
    if clip_seconds is not None:  # clips of real and fake video, split by source video
        from generators.video_dataset import VideoDatasetOptions, synthesize_video_dataset

        opts = VideoDatasetOptions(clip_seconds=clip_seconds, max_seconds=max_seconds or None, max_clips=max_clips,
                                   swap_variants=tuple(video_variant), split=video_split, seed=seed,
                                   blend="blend" in generator)
        vids = "all" if videos in (None, "all") else [v for v in videos.split(",") if v]
        with _job_errors("synth"), _single_writer(out):
            df = synthesize_video_dataset(ckpt, data, out, vids, opts, device, log=typer.echo)
        typer.echo(f"{len(df)} rows in {out / 'manifest.parquet'}: {df.groupby(['generator', 'media']).size().to_dict()}")
        return
    swaps = [c for c in ckpt if read_model_json(c)["generator"] == "faceswap"]
    if swaps and generator:
        raise typer.BadParameter("face-swap checkpoints make their own dataset; synthesize --generator into "
                                 "another --out", param_hint="--generator")
    if swaps:  # merged into frames (and videos): its own pipeline, see generators.faceswap_video
        if len(swaps) != len(ckpt):
            raise typer.BadParameter("face-swap checkpoints make their own dataset; synthesize them into "
                                     "another --out than the other generators", param_hint="--ckpt")
        from generators.faceswap_video import synthesize_faceswap

        with _job_errors("synth"), _single_writer(out):
            df = synthesize_faceswap(swaps, data, out, n, seed, [v for v in (videos or "").split(",") if v],
                                     video_variant, max_frames, device)
        typer.echo(f"{len(df)} rows in {out / 'manifest.parquet'}: "
                   f"{df.groupby(['generator', 'media']).size().to_dict() if len(df) else {}}")
        return
    if videos:
        raise typer.BadParameter("--videos needs a face-swap checkpoint", param_hint="--videos")
    with _job_errors("synth"):
        df = synthesize_distributed(ckpt, data, out, SynthOptions(n=n, size=size, seed=seed, psi=psi,
                                                                   noise_mode=noise_mode, batch=batch, device=device,
                                                                   training_free=tuple(dict.fromkeys(generator))))
    if df is not None:
        counts = df.groupby(["generator", "split"]).size().to_dict()
        typer.echo(f"{len(df)} rows in {out / 'manifest.parquet'}: {counts}")
