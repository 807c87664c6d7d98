"""Checks on a bundle folder before anything in it is read: it stays inside itself.

A bundle is a folder somebody else may have made. Its `bundle.json` names detector folders by relative path and
its files may be symlinks; either could send the loader anywhere on the analyst's disk (`../../etc`, a link to
another model). Every path the loader follows must resolve inside the bundle, and every symlink in the bundle
must lead to a place inside it. Checking the folder tree once also bounds how much of it there is to read.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from forensics.bundle.model import BundleError

MAX_BUNDLE_ENTRIES = 10_000  # files + folders; the shipped bundle has 11


def _resolved(path: Path) -> Path | None:
    """`path` with every symlink followed, or None for a loop or an unreadable link."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None


def is_inside(root: Path, path: Path) -> bool:
    """Whether `path`, with its symlinks followed, is `root` or lies under it (root already resolved)."""
    target = _resolved(path)
    return target is not None and (target == root or root in target.parents)


def check_bundle_tree(root: str | Path) -> Path:
    """Refuse a bundle holding a symlink that leads out of it (or nowhere), or absurdly many entries.
    Returns the resolved root."""
    root = Path(root)
    real_root = _resolved(root)
    if real_root is None:
        raise BundleError(f"{root}: cannot resolve the bundle folder (symlink loop?)")
    count = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            count += 1
            if count > MAX_BUNDLE_ENTRIES:
                raise BundleError(f"{root}: more than {MAX_BUNDLE_ENTRIES} files and folders; not a model bundle")
            path = Path(folder) / name
            if path.is_symlink() and not is_inside(real_root, path):
                raise BundleError(f"{path}: a symlink leading out of the bundle ({os.readlink(path)!r}); refused")
    return real_root


def detector_folder(root: str | Path, entry: Any, source: str | Path) -> tuple[str, Path]:
    """(name, folder) of one `detectors` entry of bundle.json, refused unless it is an object with a string name
    and a relative path that stays inside the bundle."""
    root = Path(root)
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("path"), str):
        raise BundleError(f"{source}: each detectors entry needs a string name and path, got {entry!r:.200}")
    rel = entry["path"]
    real_root = _resolved(root)
    folder = root / rel
    inside = real_root is not None and is_inside(real_root, folder) and _resolved(folder) != real_root
    if Path(rel).is_absolute() or not inside:
        raise BundleError(f"{source}: detector path {rel!r} leaves the bundle")
    return entry["name"], folder
