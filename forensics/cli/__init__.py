"""The one typer app. Each command is a thin wrapper over a library function; heavy imports stay inside commands
so `forensics --help` is instant. Sub-apps live beside this file, one per area."""
from __future__ import annotations

from pathlib import Path

import typer

from forensics.cli.data import data_app
from forensics.cli.detect import detect_app
from forensics.cli.zoo import synth_command, zoo_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Deepfake forensics: data, zoo, detectors, reports.")
app.add_typer(data_app, name="data")
app.add_typer(detect_app, name="detect")
app.add_typer(zoo_app, name="zoo")
app.command("synth")(synth_command)


@app.command("demo")
def demo(data: Path = typer.Option(Path("data/starter"), help="Where the starter corpus is (built if missing).")) -> None:
    """The main job on the embedded default data: build the starter corpus and describe it."""
    from forensics.cli.data import print_description
    from forensics.data.manifest import describe_manifest, read_manifest
    from forensics.data.starter import build_starter

    manifest = data / "manifest.parquet"
    df = read_manifest(manifest) if manifest.exists() else build_starter(data, progress=lambda n: typer.echo(f"  {n}"))
    print_description(describe_manifest(df))


def main() -> None:
    app()
