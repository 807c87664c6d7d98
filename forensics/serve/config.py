"""The server's options in one frozen record; the CLI fills it, tests build small ones."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_UPLOAD = 2 * 1024**3  # bytes: one file; a larger one is refused before it is stored
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for a bind or Host name that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    cases: Path  # the case folder: cases.sqlite3, evidence/, scans/
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # required (checked on every request) when host is not loopback
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    workers: int = 1  # scan worker processes (0: none, e.g. in API tests that never scan)
    model: Path | None = None  # bundle folder; None: the shipped default
    scan_defaults: dict[str, Any] = field(default_factory=dict)  # ScanSettings fields a new scan starts from
    import_root: Path | None = None  # server-side folder imports are limited to this tree when set

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.token:
            raise ValueError(f"binding to {self.host} (reachable from other machines) needs a token: pass --token "
                             "or let `forensics serve` generate one")
        if self.max_upload_bytes < 1:
            raise ValueError("max_upload_bytes must be >= 1")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")

    @property
    def db_path(self) -> Path:
        return self.cases / "cases.sqlite3"

    @property
    def evidence_dir(self) -> Path:
        return self.cases / "evidence"

    @property
    def scans_dir(self) -> Path:
        return self.cases / "scans"
