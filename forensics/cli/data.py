"""`forensics data ...`: build the starter corpus, import user datasets, describe manifests."""
from __future__ import annotations

import typer

data_app = typer.Typer(no_args_is_help=True, help="Real data: the starter corpus, importers, manifest summaries.")
