"""Out-of-fold frame scores for the video model's training videos.

The bundle's image detectors trained on frames of the very videos the video model learns from, so on those
clips the frame score is in sample: stacked on it, the fusion learns to trust frames more than they deserve on a
stranger's video (bundle v3: frame-mean AUC 0.872 on the training videos, 0.712 on the held-out test videos).

A release run (`forensics detect release`) leaves one detector set per identity fold, each trained without that
person (RUN/models/foldK, the fold named per identity in RUN/metrics.json). A copy of the bundle carrying fold K's
detectors scores the frames of that person's videos as the shipped bundle scores a person it never saw: the
same calibration, scorer, face alignment and band, only the detectors' weights differ. The copies are *fold
bundles*, written under the video model's work folder; they are measurement tools, never shipped.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from forensics.data.media import write_bytes_atomic

FOLD_RECORD = "fold.json"  # in each fold bundle: which release fold and identity it stands for
_NOT_COPIED = ("onnx", "temporal")  # an ONNX export of the shipped weights would score in their place


def fold_of_identity(release_dir: str | Path) -> dict[str, int]:
    """identity -> the release fold that held it out, from RUN/metrics.json's leave-one-identity-out block."""
    path = Path(release_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no release metrics (run forensics detect release first)")
    loio = json.loads(path.read_text()).get("loio")
    if not isinstance(loio, dict) or not loio:
        raise ValueError(f"{path}: no 'loio' block naming each identity's fold")
    return {str(identity): int(block["fold"]) for identity, block in loio.items()}


def video_identities(clips: pd.DataFrame, manifest: pd.DataFrame) -> dict[str, str]:
    """source video -> the identity of its real frames in the clip dataset's manifest (clips: `clip_table`)."""
    reals = manifest[(manifest["label"] == 0) & manifest["identity"].notna() & (manifest["identity"] != "")]
    by_group = reals.drop_duplicates("group_id").set_index("group_id")["identity"].astype(str)
    return {source: by_group[f"video:{source}"] for source in clips["source"].unique() if f"video:{source}" in by_group}


def write_fold_bundle(bundle_dir: str | Path, release_dir: str | Path, fold: int, identity: str,
                      out: str | Path) -> Path:
    """A copy of the bundle whose detectors are release fold `fold`'s (trained without `identity`). Rewritten
    whole each time, so a fold bundle never mixes two runs' files. -> its folder"""
    bundle_dir, out = Path(bundle_dir), Path(out)
    models = Path(release_dir) / "models" / f"fold{fold}"
    meta = json.loads((bundle_dir / "bundle.json").read_text())
    names = [entry["name"] for entry in meta["detectors"]]
    missing = [n for n in names if not (models / n / "config.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{models}: no fold detectors {missing} (the release run's fold {fold})")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(bundle_dir, out, ignore=lambda folder, _: _NOT_COPIED if Path(folder) == bundle_dir else ())
    for entry in meta["detectors"]:
        shutil.rmtree(out / entry["path"])
        shutil.copytree(models / entry["name"], out / entry["path"])
    meta.pop("temporal", None)
    write_bytes_atomic(out / "bundle.json", (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    record = {"fold": fold, "identity": identity, "detectors_from": str(models), "bundle_from": str(bundle_dir)}
    write_bytes_atomic(out / FOLD_RECORD, (json.dumps(record, indent=2) + "\n").encode())
    return out


def frame_bundles(bundle_dir: str | Path, release_dir: str | Path, identities: Mapping[str, str],
                  work: str | Path) -> dict[str, Path]:
    """source video -> the fold bundle that never saw its person, for every video whose identity a release fold
    held out (the others are left to the shipped bundle)."""
    folds = fold_of_identity(release_dir)
    written: dict[str, Path] = {}
    out: dict[str, Path] = {}
    for source, identity in sorted(identities.items()):
        if identity not in folds:
            continue
        if identity not in written:
            written[identity] = write_fold_bundle(bundle_dir, release_dir, folds[identity], identity,
                                                  Path(work) / "fold_bundles" / identity)
        out[source] = written[identity]
    return out
