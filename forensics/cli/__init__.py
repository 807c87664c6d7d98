"""The one typer app. Each command is a thin wrapper over a library function; heavy imports stay inside commands
so `forensics --help` is instant. Sub-apps live beside this file, one per area."""
from __future__ import annotations

import typer

from forensics.cli.data import data_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Deepfake forensics: data, zoo, detectors, reports.")
app.add_typer(data_app, name="data")


def main() -> None:
    app()
