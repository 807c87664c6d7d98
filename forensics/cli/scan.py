"""`forensics scan PATH... --out DIR`: the analyst's command, a thin wrapper over `forensics.scan.pipeline`.

Exit status: 0 when every file was analysed (or skipped as not media), 1 when any file failed, 2 when the scan
could not start (bad option, no model bundle, an output folder holding another scan).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def scan_command(
    paths: List[str] = typer.Argument(..., help="Files, folders (recursive) and globs (quote them) to scan."),
    out: Path = typer.Option(..., "--out", help="Folder for report.html, scan.json, summary.csv and pictures."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model bundle folder (default: the shipped "
                                         "forensics/assets/bundle)."),
    every: int = typer.Option(10, "--every", min=1, help="Videos: run face detection on every K-th frame, track "
                              "in between."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Videos: analyse at most the first "
                                             "N frames."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted scan in --out (files already "
                                "done are kept, the rest analysed)."),
    min_face: int = typer.Option(40, "--min-face", min=1, help="Faces smaller than this (px) get no verdict."),
    detect_side: int = typer.Option(480, "--detect-side", min=32, help="Long side (px) of the copy face "
                                    "detection sees (never so small that a --min-face face is missed)."),
    device: str = typer.Option("cpu", "--device", help="Face detector device: cpu | cuda | auto."),
    evidence: bool = typer.Option(True, "--evidence/--no-evidence", help="Metadata, JPEG history, Content "
                                  "Credentials, Grad-CAM/noise/mask maps, spectra and the agreement table."),
    runtime: str = typer.Option("auto", "--runtime", help="What scores the faces: torch, onnx (the bundle's "
                                "files from `forensics detect export --onnx`), or auto (onnx when present)."),
    all_maps: bool = typer.Option(False, "--all-maps", help="Grad-CAM and error-level maps for every face and file "
                                  "(default: only those not clearly clean)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Scan photos and videos for signs of face manipulation: a self-contained report.html, scan.json, summary.csv."""
    from forensics.jobs.atomic import OutputWriteError
    from forensics.scan.pipeline import ScanSetupError, run_scan
    from forensics.scan.settings import ScanSettings

    try:
        settings = ScanSettings(every=every, max_frames=max_frames, min_face=min_face, detect_side=detect_side,
                                device=device, evidence=evidence, runtime=runtime, all_maps=all_maps)
        outcome = run_scan(paths, out, model, settings, resume=resume, progress=progress, log=typer.echo)
    except (ScanSetupError, ValueError, OutputWriteError) as exc:  # OutputWriteError: disk full, read-only out
        typer.echo(f"forensics scan: {exc}", err=True)
        raise typer.Exit(2) from None
    if outcome is None:  # a torchrun rank other than 0: rank 0 reports
        return
    typer.echo(f"{outcome.files} file(s): {outcome.analysed} analysed, {outcome.failed} failed, "
               f"{outcome.skipped} skipped")
    typer.echo(f"report: {outcome.report_html}")
    typer.echo(f"scan.json: {outcome.scan_json}  summary.csv: {outcome.summary_csv}")
    if outcome.failed:
        raise typer.Exit(1)
