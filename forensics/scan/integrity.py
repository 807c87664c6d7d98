"""Evidence integrity: what each input was before and after the scan, and the scan's chain-of-custody block.

Inputs are only ever opened for reading (`open(path, "rb")`, Pillow and FFmpeg readers); the scan proves it
did not change them by hashing each file before it is decoded and again after it was analysed, and by
comparing size and modification time. A difference is an error in that file's report.
"""
from __future__ import annotations

import getpass
import os
import platform
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from forensics.data.manifest import sha256_file

# Packages whose versions shape a scan's numbers or its report (recorded in every custody block).
CUSTODY_PACKAGES = ("deepfake-forensics", "numpy", "torch", "torchvision", "facenet-pytorch", "timm",
                    "scikit-learn", "opencv-python-headless", "pillow", "safetensors", "matplotlib", "jinja2",
                    "jsonschema", "onnxruntime")


@dataclass(frozen=True)
class FileState:
    """A file's identity at one moment: content hash and the metadata a write would change."""

    sha256: str
    size: int
    mtime_ns: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_state(path: str | os.PathLike) -> FileState:
    """Hash (read-only) and stat a file. Stat is taken before hashing so a write during hashing shows up later."""
    st = os.stat(path)
    return FileState(sha256=sha256_file(path), size=int(st.st_size), mtime_ns=int(st.st_mtime_ns))


def integrity_errors(path: str | os.PathLike, before: FileState, after: FileState) -> list[str]:
    """What changed between two states of the same file, as report errors (empty: untouched)."""
    errors = []
    if before.sha256 != after.sha256:
        errors.append(f"{path}: content changed during the scan (sha256 {before.sha256} before, {after.sha256} after)")
    if before.size != after.size:
        errors.append(f"{path}: size changed during the scan ({before.size} -> {after.size} bytes)")
    if before.mtime_ns != after.mtime_ns:
        errors.append(f"{path}: modification time changed during the scan")
    return errors


def utc_now() -> str:
    """ISO 8601 UTC timestamp with microseconds, e.g. 2026-11-30T10:44:16.123456Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in CUSTODY_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def host_record() -> dict[str, Any]:
    """Where the scan ran. The user name is the login of the process (what an audit trail asks for)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "user": user}


def session_record(rank: int, world: int, resumed: bool) -> dict[str, Any]:
    """One run of the scan command (a resumed scan has several; a sharded one has one per rank 0 run)."""
    return {"started_utc": utc_now(), "finished_utc": None, "host": host_record(), "pid": os.getpid(),
            "rank": rank, "world_size": world, "resumed": resumed, "command": list(sys.argv)}


def model_record(bundle: Any) -> dict[str, Any]:
    """The model bundle's identity: path, one sha256 over all its files, format and what it holds."""
    meta = bundle.meta
    return {"path": str(Path(bundle.root).absolute()), "sha256": bundle.sha256, "format": meta.get("format"),
            "detectors": sorted(bundle.detectors), "face": meta.get("face"),
            "decision": bundle.decision.to_dict(), "calibration_set": meta.get("calibration_set"),
            "note": meta.get("note"), "runtime": getattr(bundle, "runtime", "torch"),
            "model_card": str(Path(bundle.root).absolute() / "MODEL_CARD.md")
            if (Path(bundle.root) / "MODEL_CARD.md").is_file() else None}
