"""Import user datasets into a manifest: a plain folder of real media, the `0_real/1_fake` layout of
CNNDetection (Wang et al. 2020), and a FaceForensics++-style tree.

The manifest is written inside (or above) the dataset folder, since manifest paths are relative to the
manifest's own folder and may not escape it. Nothing is dropped silently: each importer returns the manifest,
the `(path, reason)` failures (media that cannot be used: undecodable, unreadable, a symlink, a name that is
not UTF-8) and the `(path, reason)` entries it ignored (hidden, not a media extension, links to folders).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forensics.data.manifest import (
    ManifestError,
    assign_group_splits,
    dataset_root,
    new_row,
    relative_path,
    sha256_file,
    to_frame,
    write_manifest,
)
from forensics.data.media import IMAGE_EXTS, VIDEO_EXTS, MediaError, media_kind, printable, probe_video, read_image

LAYOUTS = ("folder", "real-fake", "ffpp")
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass
class ImportResult:
    manifest: pd.DataFrame
    failures: list[tuple[str, str]] = field(default_factory=list)  # media files that could not be imported
    ignored: list[tuple[str, str]] = field(default_factory=list)  # hidden, another extension, a link to a folder


@dataclass
class _Walk:
    """What an import saw besides its rows: the files it could not use and the entries it ignored."""

    failures: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)


def _media_files(folder: Path, walk: _Walk) -> Iterator[Path]:
    """Every image/video under `folder`, in a stable order. Hidden entries, other extensions and symlinks to
    folders (not followed: no loops) are listed in `walk.ignored`; an unreadable folder in `walk.failures`."""

    def unreadable(exc: OSError) -> None:
        walk.failures.append((printable(exc.filename or folder), f"cannot list folder ({exc.strerror or exc})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        here = Path(dirpath)
        for name in sorted(dirnames):
            if name.startswith("."):
                walk.ignored.append((printable(here / name), "hidden folder"))
            elif (here / name).is_symlink():
                walk.ignored.append((printable(here / name), "symbolic link to a folder (not followed)"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink())
        for name in sorted(filenames):
            if name.startswith("."):
                walk.ignored.append((printable(here / name), "hidden file"))
            elif Path(name).suffix.lower() not in IMAGE_EXTS | VIDEO_EXTS:
                walk.ignored.append((printable(here / name), f"not a media extension ({Path(name).suffix or 'none'})"))
            else:
                yield here / name


def _read_size(path: Path, kind: str) -> tuple[int, int]:
    """(width, height), decoding the whole image (or a video's first frame): a file whose header is fine but
    whose pixels are not must fail here, not later in training."""
    if kind == "video":
        info = probe_video(path)
        return info.width, info.height
    rgb = read_image(path)  # [H,W,3]
    return int(rgb.shape[1]), int(rgb.shape[0])


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symlink is not imported: its target is outside the dataset root, or inside it (then the target is
    imported under its own name, and a second row for the same file would count it twice)."""
    if not path.is_symlink():
        return None
    real = Path(os.path.realpath(path))
    if real.is_relative_to(root.resolve()):
        return f"a symbolic link to {printable(real)}, a file of the dataset (imported under its own name)"
    return f"a symbolic link to {printable(real)}, outside the dataset root {printable(root)}"


def _sample_row(path: Path, root: Path, walk: _Walk, **fields: object) -> dict | None:
    """A manifest row for one file, or None (recorded in `walk.failures`) when the file is unusable."""
    shown = printable(path)
    try:
        kind = media_kind(path)
        width, height = _read_size(path, kind)
        link = _link_problem(path, root)
        if link:
            walk.failures.append((shown, link))
            return None
        rel = relative_path(path, root)
        rel.encode("utf-8")
        digest = sha256_file(path)
    except MediaError as exc:
        walk.failures.append((shown, exc.reason))
        return None
    except UnicodeEncodeError:
        walk.failures.append((shown, "the file name is not valid UTF-8 and cannot be stored in a manifest; rename it"))
        return None
    except OSError as exc:
        walk.failures.append((shown, f"cannot read ({exc.strerror or exc})"))
        return None
    fields.setdefault("sample_id", rel)
    return new_row(path=rel, sha256=digest, media=kind, width=width, height=height, **fields)


def _with_splits(rows: list[dict]) -> pd.DataFrame:
    """The rows as a manifest with group splits; no rows: an empty frame, which `import_dataset` refuses."""
    return assign_group_splits(to_frame(rows)) if rows else to_frame(rows)


def import_folder(folder: Path, root: Path) -> ImportResult:
    """Every image/video under `folder` is a real sample; identity = its parent folder's name.

    Each file is its own group (nothing is known about which files show the same scene).
    """
    walk = _Walk()
    rows = []
    for path in _media_files(folder, walk):
        identity = path.parent.name if path.parent != folder else ""
        row = _sample_row(path, root, walk, label=0, generator="real", identity=identity)
        if row:
            row["group_id"] = row["path"]
            row["video_id"] = row["sample_id"] if row["media"] == "video" else ""
            rows.append(row)
    return ImportResult(_with_splits(rows), walk.failures, walk.ignored)


def import_real_fake(folder: Path, root: Path) -> ImportResult:
    """CNNDetection layout: `[split/][generator/][category/]{0_real,1_fake}/*`.

    A leading train/val/test folder sets the split; the first folder after it names the generator of the
    fakes (reals stay 'real'), the rest is recorded as `target` (the object category).
    """
    walk = _Walk()
    rows = []
    for path in _media_files(folder, walk):
        parts = path.relative_to(folder).parts[:-1]
        if not parts or parts[-1] not in ("0_real", "1_fake"):
            walk.failures.append((printable(path), "not inside a 0_real or 1_fake folder"))
            continue
        label = 1 if parts[-1] == "1_fake" else 0
        rest = list(parts[:-1])
        split = SPLIT_NAMES.get(rest[0].lower(), "") if rest else ""
        if split:
            rest = rest[1:]
        generator = (rest[0] if rest else "fake") if label else "real"
        row = _sample_row(
            path, root, walk, label=label, generator=generator, split=split,
            target="/".join(rest[1:] if label else rest),
        )
        if row:
            row["group_id"] = row["path"]
            rows.append(row)
    df = to_frame(rows)
    if rows and (df["split"] == "").any():
        df = assign_group_splits(df)
    return ImportResult(df, walk.failures, walk.ignored)


_FFPP_FAKE = re.compile(r"^(?P<target>\d+)_(?P<source>\d+)$")


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def import_ffpp(folder: Path, root: Path) -> ImportResult:
    """FaceForensics++ tree: `original_sequences/<source>/<compression>/videos/XXX.mp4` (reals) and
    `manipulated_sequences/<method>/<compression>/videos/XXX_YYY.mp4` (fakes: YYY's face in XXX's video).

    A fake and both videos it was made from share one group (connected ids, as FF++'s own split pairs
    them), so no identity pair straddles splits. Compression levels (c0/c23/c40) are recorded in `postproc`.
    """
    walk = _Walk()
    entries = []
    for path in _media_files(folder, walk):
        parts = path.relative_to(folder).parts
        if media_kind(path) != "video" or len(parts) < 3 or parts[0] not in ("original_sequences", "manipulated_sequences"):
            walk.failures.append((printable(path), "not an FF++ video (expected {original,manipulated}_sequences/<name>/<compression>/videos/*.mp4)"))
            continue
        entries.append((path, parts))
    groups = _UnionFind()
    for path, parts in entries:
        m = _FFPP_FAKE.match(path.stem)
        if parts[0] == "manipulated_sequences" and m:
            groups.union(m["target"], m["source"])
        else:
            groups.find(path.stem)
    # Reals first, so every fake can name the sample id of the original video it was made in.
    entries.sort(key=lambda e: e[1][0] == "manipulated_sequences")
    real_ids: dict[tuple[str, str], str] = {}
    rows = []
    for path, parts in entries:
        compression = parts[2] if len(parts) > 4 else ""
        sample_id = f"ffpp:{parts[1]}:{compression}:{path.stem}"
        fields: dict[str, object] = {"label": 0, "generator": "real", "group_id": f"ffpp:{groups.find(path.stem)}"}
        if parts[0] == "manipulated_sequences":
            m = _FFPP_FAKE.match(path.stem)
            if not m:
                walk.failures.append((printable(path), "manipulated video name is not TARGET_SOURCE (e.g. 000_003.mp4)"))
                continue
            fields = {
                "label": 1,
                "generator": parts[1],
                "group_id": f"ffpp:{groups.find(m['target'])}",
                "source_id": real_ids.get((compression, m["target"]), ""),
                "target": m["source"],
            }
        row = _sample_row(
            path, root, walk, sample_id=sample_id, video_id=path.stem,
            postproc={"compression": compression} if compression else {}, **fields,
        )
        if row:
            rows.append(row)
            if row["label"] == 0:
                real_ids[(compression, path.stem)] = sample_id
    return ImportResult(_with_splits(rows), walk.failures, walk.ignored)


IMPORTERS: dict[str, Callable[[Path, Path], ImportResult]] = {
    "folder": import_folder,
    "real-fake": import_real_fake,
    "ffpp": import_ffpp,
}


def import_dataset(folder: str | os.PathLike, layout: str, out: str | os.PathLike | None = None) -> ImportResult:
    """Import `folder` with `layout` and write the manifest to `out` (default `folder/manifest.parquet`)."""
    folder = Path(folder).resolve()
    if layout not in IMPORTERS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if not folder.is_dir():
        raise MediaError(folder, "dataset folder does not exist")
    out = Path(out) if out is not None else folder / "manifest.parquet"
    root = dataset_root(out)
    if not folder.is_relative_to(root):
        raise ManifestError(
            f"{out}: the manifest must be written in {folder} or a folder above it, because manifest paths are "
            f"relative to the manifest's folder and may not leave it"
        )
    result = IMPORTERS[layout](folder, root)
    if result.manifest.empty:
        raise ManifestError(f"{folder}: no readable media found for layout {layout!r}")
    write_manifest(result.manifest, out)
    return result
