"""`forensics data ...` through the real typer app."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from forensics.cli import app
from forensics.data.media import write_image

runner = CliRunner()


def test_help_lists_the_data_commands() -> None:
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0
    for command in ("starter", "import", "describe"):
        assert command in result.output


def test_import_then_describe(tmp_path: Path) -> None:
    for who in ("ann", "ben"):
        for i in range(3):
            write_image(tmp_path / who / f"{i}.png", np.full((8, 8, 3), i * 40, np.uint8))
    (tmp_path / "ben" / "bad.jpg").write_bytes(b"\x89PNG\r\n\x1a\n")
    result = runner.invoke(app, ["data", "import", str(tmp_path), "--layout", "folder"])
    assert result.exit_code == 0, result.output
    assert "imported 6 samples, 1 failures" in result.output
    assert "bad.jpg: extension says jpeg but the content is png" in result.output
    described = runner.invoke(app, ["data", "describe", str(tmp_path / "manifest.parquet")])
    assert described.exit_code == 0
    assert "identity: ann=3, ben=3" in described.output


def test_describe_reports_a_broken_manifest(tmp_path: Path) -> None:
    (tmp_path / "m.parquet").write_bytes(b"junk")
    result = runner.invoke(app, ["data", "describe", str(tmp_path / "m.parquet")])
    assert result.exit_code == 2
    assert "cannot read manifest" in result.output and str(tmp_path / "m.parquet") in result.output
    missing = runner.invoke(app, ["data", "describe", str(tmp_path / "absent.parquet")])
    assert missing.exit_code == 2 and "absent.parquet" in missing.output
