"""The one typer app. Each command is a thin wrapper over a library function; heavy imports stay inside commands
so `forensics --help` is instant. Sub-apps live beside this file, one per area."""
from __future__ import annotations

from pathlib import Path

import typer

from forensics.cli.data import data_app
from forensics.cli.detect import detect_app
from forensics.cli.scan import scan_command
from forensics.cli.serve import serve_command
from forensics.cli.zoo import synth_command, zoo_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Deepfake forensics: data, zoo, detectors, reports.")
app.add_typer(data_app, name="data")
app.add_typer(detect_app, name="detect")
app.add_typer(zoo_app, name="zoo")
app.command("synth")(synth_command)
app.command("scan")(scan_command)
app.command("serve")(serve_command)


@app.command("demo")
def demo(
    data: Path = typer.Option(Path("data/starter"), help="The starter corpus (built if missing)."),
    work: Path = typer.Option(Path("runs/demo"), help="Synthesized dataset, benchmark outputs and fitted detectors."),
    reports: Path = typer.Option(Path("runs/demo/reports"), help="Where the Markdown/HTML report and plots go "
                                 "(under runs/: the demo leaves the checkout clean)."),
    fakes: int = typer.Option(300, help="Fakes per generator (translations and blends: at most one per real)."),
    frames_per_video: int = typer.Option(100, help="Evenly spaced real frames kept per video."),
) -> None:
    """The main job on the embedded data: starter corpus -> zoo fakes -> calibrated detectors -> AUC report ->
    scan bundle -> a scan of held-out files."""
    from forensics.cli.demo import DemoOptions, run_demo

    run_demo(DemoOptions(data=data, work=work, reports=reports, fakes_per_generator=fakes,
                         frames_per_video=frames_per_video))


def main() -> None:
    app()
