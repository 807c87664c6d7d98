"""The manifest: one row per sample, recording what it is and, for a fake, exactly how it was made.

A manifest is a pandas DataFrame with the columns in `COLUMNS`, stored as Parquet (CSV when the file name
says so). The `path` column holds posix paths relative to the manifest's folder (the dataset root), so a
dataset folder can be moved or shared whole. Splits are made per `group_id` (an identity plus a segment of
video, or a fake's own group), never per frame: adjacent frames are near-duplicates and must not straddle
splits. A fake is always in its real source's split.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from forensics.data.media import write_bytes_atomic

# name -> (dtype, default). Order is the on-disk column order.
SCHEMA: dict[str, tuple[str, object]] = {
    "sample_id": ("string", None),  # required, unique
    "path": ("string", None),  # required, relative to the dataset root
    "sha256": ("string", ""),
    "label": ("int64", None),  # required: 0 real, 1 fake
    "media": ("string", "image"),  # image | video | frame
    "generator": ("string", "real"),
    "generator_config": ("string", "{}"),  # JSON
    "checkpoint_sha256": ("string", ""),
    "seed": ("int64", -1),
    "source_id": ("string", ""),  # the real sample a fake was made from
    "group_id": ("string", None),  # required: the unit of splitting
    "split": ("string", ""),  # train | val | test ("" = not assigned yet)
    "target": ("string", ""),  # target domain / identity of a translation
    "postproc": ("string", "{}"),  # JSON: resizing, compression... applied after generation
    "width": ("int64", -1),
    "height": ("int64", -1),
    "frame_idx": ("int64", -1),
    "video_id": ("string", ""),
    "identity": ("string", ""),
}
COLUMNS: tuple[str, ...] = tuple(SCHEMA)
REQUIRED = tuple(name for name, (_, default) in SCHEMA.items() if default is None)
MEDIA_KINDS = frozenset({"image", "video", "frame"})
SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.7, "val": 0.15, "test": 0.15}


class ManifestError(ValueError):
    """A manifest that breaks the schema or the split rules; the message lists every problem found."""


def new_row(**fields: object) -> dict[str, object]:
    """A manifest row with defaults filled in; unknown field names are refused."""
    unknown = set(fields) - set(SCHEMA)
    if unknown:
        raise ManifestError(f"unknown manifest fields: {sorted(unknown)}")
    row = {name: default for name, (_, default) in SCHEMA.items()}
    row.update(fields)
    for name in ("generator_config", "postproc"):
        if not isinstance(row[name], str):
            row[name] = json.dumps(row[name], sort_keys=True)
    return row


def to_frame(rows: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """Rows (dicts) -> a DataFrame with every schema column, in order, with the schema's dtypes."""
    df = pd.DataFrame(list(rows))
    return _conform(df)


def _conform(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for name, (dtype, default) in SCHEMA.items():
        if name not in df.columns:
            if default is None:
                continue  # validation reports it
            df[name] = default
        elif default is not None:
            df[name] = df[name].fillna(default)
        df[name] = df[name].astype(dtype)
    extra = [c for c in df.columns if c not in SCHEMA]
    return df[[c for c in COLUMNS if c in df.columns] + extra].reset_index(drop=True)


def empty_manifest() -> pd.DataFrame:
    return to_frame([])


def _problems(df: pd.DataFrame, root: Path | None) -> list[str]:
    problems: list[str] = []
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        return [f"missing columns: {missing}"]
    if df.empty:
        return problems
    for col in REQUIRED:
        blank = df[col].isna() | (df[col].astype(str) == "")
        if blank.any():
            problems.append(f"{int(blank.sum())} rows have an empty {col!r} (first: row {int(blank.idxmax())})")
    dup = df["sample_id"][df["sample_id"].duplicated()]
    if len(dup):
        problems.append(f"duplicate sample_id values: {sorted(dup.unique())[:5]}")
    bad_label = ~df["label"].isin([0, 1])
    if bad_label.any():
        problems.append(f"labels must be 0 (real) or 1 (fake); found {sorted(df.loc[bad_label, 'label'].unique())[:5]}")
    bad_media = ~df["media"].isin(MEDIA_KINDS)
    if bad_media.any():
        problems.append(f"media must be one of {sorted(MEDIA_KINDS)}; found {sorted(df.loc[bad_media, 'media'].unique())[:5]}")
    reals_named_fake = (df["label"] == 0) & (df["generator"] != "real")
    fakes_named_real = (df["label"] == 1) & (df["generator"] == "real")
    if reals_named_fake.any() or fakes_named_real.any():
        problems.append("label and generator disagree: reals must have generator 'real' and fakes another name")
    bad_split = ~df["split"].isin(("", *SPLITS))
    if bad_split.any():
        problems.append(f"split must be one of {SPLITS} or empty; found {sorted(df.loc[bad_split, 'split'].unique())[:5]}")
    assigned = df[df["split"] != ""]
    per_group = assigned.groupby("group_id")["split"].nunique()
    straddling = per_group[per_group > 1]
    if len(straddling):
        problems.append(f"{len(straddling)} group_id values appear in more than one split: {list(straddling.index[:5])}")
    problems.extend(_source_problems(df))
    problems.extend(_path_problems(df, root))
    return problems


def _source_problems(df: pd.DataFrame) -> list[str]:
    fakes = df[(df["label"] == 1) & (df["source_id"] != "")]
    if fakes.empty:
        return []
    split_of = dict(zip(df["sample_id"], df["split"]))
    missing = [s for s in fakes["source_id"] if s not in split_of]
    problems = []
    if missing:
        problems.append(f"{len(missing)} fakes name a source_id that is not in the manifest: {missing[:5]}")
    known = fakes[fakes["source_id"].isin(split_of.keys())]
    moved = known[known["split"] != known["source_id"].map(split_of)]
    if len(moved):
        problems.append(f"{len(moved)} fakes are not in their real source's split: {list(moved['sample_id'][:5])}")
    return problems


def _path_problems(df: pd.DataFrame, root: Path | None) -> list[str]:
    problems = []
    escaping = [p for p in df["path"] if PurePosixPath(p).is_absolute() or ".." in PurePosixPath(p).parts]
    if escaping:
        problems.append(f"{len(escaping)} paths escape the dataset root (absolute or '..'): {escaping[:3]}")
    if root is not None and not escaping:
        root_resolved = root.resolve()
        outside = [p for p in df["path"] if not (root_resolved / p).resolve().is_relative_to(root_resolved)]
        if outside:
            problems.append(f"{len(outside)} paths resolve outside the dataset root (symlinks?): {outside[:3]}")
    return problems


def validate_manifest(df: pd.DataFrame, root: str | os.PathLike | None = None) -> None:
    """Raise ManifestError listing every problem: schema, labels, splits, sources, paths."""
    problems = _problems(df, Path(root) if root is not None else None)
    if problems:
        raise ManifestError("invalid manifest:\n  - " + "\n  - ".join(problems))


def dataset_root(manifest_path: str | os.PathLike) -> Path:
    """The folder `path` values are relative to: the manifest's own folder."""
    return Path(manifest_path).resolve().parent


def resolve_paths(df: pd.DataFrame, root: str | os.PathLike) -> list[Path]:
    root = Path(root)
    return [root / p for p in df["path"]]


def relative_path(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """A file's manifest `path` value: posix, relative to the root, refusing files outside it."""
    rel = Path(path).resolve().relative_to(Path(root).resolve())
    return rel.as_posix()


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: manifest does not exist")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pyarrow/pandas raise many types for a damaged file
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ManifestError(f"{path}: missing columns: {missing}")
    try:
        return _conform(df)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{path}: a column has the wrong type ({exc})") from None


def write_manifest(df: pd.DataFrame, path: str | os.PathLike, validate: bool = True) -> None:
    """Validate, then write atomically (Parquet, or CSV when the name ends in .csv)."""
    path = Path(path)
    df = _conform(df)
    if validate:
        validate_manifest(df, dataset_root(path) if path.parent.exists() else None)
    if path.suffix == ".csv":
        data = df.to_csv(index=False).encode()
    else:
        data = df.to_parquet(index=False)
    write_bytes_atomic(path, data)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _unit_hash(text: str, seed: int) -> float:
    """A stable number in [0, 1) per (text, seed): same split on every machine and Python version."""
    h = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def assign_group_splits(
    df: pd.DataFrame,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Give every group a split, deterministically, aiming at `fractions` of the rows.

    Groups are ordered by a seeded hash and filled greedily into the split furthest below its target
    share, so the result is independent of row order and stable when unrelated groups are added. Fakes
    with a `source_id` follow their source; rows that already have a split keep it unless `overwrite`.
    """
    if abs(sum(fractions.values()) - 1.0) > 1e-6 or any(f < 0 for f in fractions.values()):
        raise ManifestError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}")
    df = _conform(df)
    if overwrite:
        df["split"] = ""
    sourced = (df["label"] == 1) & (df["source_id"] != "")
    free = df[~sourced]
    sizes = free.groupby("group_id").size()
    taken = free[free["split"] != ""].groupby("split").size().to_dict()
    done = set(free.loc[free["split"] != "", "group_id"])
    total = len(free)
    split_of_group = dict(free.loc[free["split"] != ""].groupby("group_id")["split"].first())
    for group in sorted((g for g in sizes.index if g not in done), key=lambda g: _unit_hash(g, seed)):
        deficit = {s: fractions[s] * total - taken.get(s, 0) for s in fractions}
        split = max(deficit, key=lambda s: (deficit[s], -list(fractions).index(s)))
        split_of_group[group] = split
        taken[split] = taken.get(split, 0) + int(sizes[group])
    unassigned = ~sourced & (df["split"] == "")
    df.loc[unassigned, "split"] = df.loc[unassigned, "group_id"].map(split_of_group)
    split_of_sample = dict(zip(df["sample_id"], df["split"]))
    df.loc[sourced, "split"] = df.loc[sourced, "source_id"].map(split_of_sample).fillna("")
    return df


def evenly_spaced(n: int, k: int, key: str, seed: int = 0) -> np.ndarray:
    """k distinct, evenly spaced positions among n (all of them when n <= k), starting at a seeded phase within
    the first stride, so the same (key, seed) always picks the same positions.  # -> [min(n, k)] int"""
    if n <= k:
        return np.arange(n)
    phase = _unit_hash(key, seed)  # in [0, 1): where in the first stride to start
    return np.floor((np.arange(k) + phase) * n / k).astype(int)


def subsample_frames(df: pd.DataFrame, per_video: int, seed: int = 0) -> pd.DataFrame:
    """Keep at most `per_video` evenly spaced frame rows of each video; every other row is kept.

    Adjacent frames are near-duplicates, so evenly spaced ones keep most of a long clip's variety in a few
    rows. The stride is frames/per_video with a seeded phase per video (same seed, same rows). Rows are only
    dropped, never changed: kept rows keep their split and group, every video keeps min(per_video, its
    frames) frames and its video row, and a fake made from a dropped row (`source_id`) is dropped with it.
    Meant for a real corpus before synthesis (e.g. the starter's ~7,700 frames for a CPU demo).
    """
    if per_video < 1:
        raise ValueError(f"per_video must be >= 1, got {per_video}")
    df = _conform(df)
    keep = pd.Series(True, index=df.index)
    frames = df[(df["media"] == "frame") & (df["video_id"] != "")]
    for video_id, part in frames.groupby("video_id", sort=True):
        n = len(part)
        if n <= per_video:
            continue
        ordered = part.sort_values(["frame_idx", "sample_id"], kind="stable").index  # [n]
        picks = evenly_spaced(n, per_video, str(video_id), seed)
        keep[ordered] = False
        keep[ordered[picks]] = True
    dropped = set(df.loc[~keep, "sample_id"])
    keep &= ~((df["label"] == 1) & df["source_id"].isin(dropped))
    return df[keep].reset_index(drop=True)


def merge_manifests(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate manifests (e.g. per-rank shards); identical duplicate rows collapse, conflicting ones fail."""
    frames = [_conform(f) for f in frames]
    if not frames:
        return empty_manifest()
    df = pd.concat(frames, ignore_index=True).drop_duplicates()
    dup = df["sample_id"][df["sample_id"].duplicated()]
    if len(dup):
        raise ManifestError(f"merge conflict: sample_ids with differing rows: {sorted(dup.unique())[:5]}")
    df = df.sort_values("sample_id", kind="stable").reset_index(drop=True)
    validate_manifest(df)
    return df


def describe_manifest(df: pd.DataFrame) -> dict[str, object]:
    """Counts that answer 'what is in this dataset': per split/label/generator/identity/media."""
    df = _conform(df)
    groups_per_split = df[df["split"] != ""].groupby("group_id")["split"].nunique()
    return {
        "rows": len(df),
        "by_split_label": {
            f"{split or '-'}/{'fake' if label else 'real'}": int(n)
            for (split, label), n in df.groupby(["split", "label"]).size().items()
        },
        "by_generator": {k: int(v) for k, v in df.groupby("generator").size().items()},
        "by_identity": {k or "-": int(v) for k, v in df.groupby("identity").size().items()},
        "by_media": {k: int(v) for k, v in df.groupby("media").size().items()},
        "groups": int(df["group_id"].nunique()),
        "groups_in_several_splits": int((groups_per_split > 1).sum()),
        "videos": int(df.loc[df["media"] == "video", "sample_id"].nunique()),
    }
