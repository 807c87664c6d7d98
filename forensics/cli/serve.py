"""`forensics serve`: the local web app for analysts (forensics.serve), a thin wrapper that builds its config and
runs it under uvicorn."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs a token."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port."),
    cases: Path = typer.Option(Path("cases"), "--cases", help="Case folder: cases.sqlite3, evidence/, scans/."),
    token: Optional[str] = typer.Option(None, "--token", envvar="FORENSICS_SERVE_TOKEN", help="Required on every "
                                        "request (generated and printed when --host is not loopback)."),
    workers: int = typer.Option(1, "--workers", min=0, help="Scan worker processes (scans run one per worker)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model bundle (default: the shipped one)."),
    max_upload_mb: int = typer.Option(2048, "--max-upload-mb", min=1, help="Largest file accepted, MiB."),
    evidence: bool = typer.Option(True, "--evidence/--no-evidence", help="Default for new scans."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Default for new scans: analyse at "
                                             "most the first N frames of each video."),
    import_root: Optional[Path] = typer.Option(None, "--import-root", help="Allow server-side folder imports only "
                                               "under this folder."),
) -> None:
    """A local web app over the scan: cases in SQLite, uploads, live progress, verdicts, compare, export."""
    import secrets

    import uvicorn

    from forensics.serve.app import guarded_app
    from forensics.serve.config import ServeConfig, is_loopback

    generated = False
    if token is None and not is_loopback(host):
        token, generated = secrets.token_urlsafe(24), True
    defaults = {"evidence": evidence, **({"max_frames": max_frames} if max_frames else {})}
    try:
        config = ServeConfig(cases=cases, host=host, port=port, token=token, max_upload_bytes=max_upload_mb << 20,
                             workers=workers, model=model, scan_defaults=defaults, import_root=import_root)
        app = guarded_app(config)
    except (ValueError, RuntimeError, OSError) as exc:
        typer.echo(f"forensics serve: {exc}", err=True)
        raise typer.Exit(2) from None
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):  # every interface: name this machine rather than the wildcard
        import socket

        shown = socket.gethostname()
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    typer.echo(f"forensics serve: {url}  (cases: {cases.absolute()}, {workers} scan worker(s)"
               + (", token generated: keep it secret" if generated else "") + ")", err=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
