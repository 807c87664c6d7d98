"""Importers on small generated trees: plain folders, CNNDetection's 0_real/1_fake, FaceForensics++."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forensics.data.importers import import_dataset
from forensics.data.manifest import ManifestError, read_manifest, validate_manifest
from forensics.data.media import write_image, write_video


def _img(path: Path, value: int = 100) -> None:
    write_image(path, np.full((16, 16, 3), value, np.uint8))


def _vid(path: Path, n: int = 3) -> None:
    write_video(path, [np.full((32, 32, 3), 40 * i, np.uint8) for i in range(n)], fps=5)


def test_folder_layout_with_a_broken_file(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    _img(root / "alice" / "1.png")
    _img(root / "alice" / "2.png")
    _img(root / "bob" / "1.png")
    _vid(root / "bob" / "clip.mp4")
    (root / "bob" / "broken.png").write_bytes(b"")
    (root / "notes.txt").write_text("ignored: not media")
    result = import_dataset(root, "folder")
    df = read_manifest(root / "manifest.parquet")
    validate_manifest(df, root)
    assert sorted(df.path) == ["alice/1.png", "alice/2.png", "bob/1.png", "bob/clip.mp4"]
    assert dict(zip(df.path, df.identity))["bob/clip.mp4"] == "bob"
    assert set(df.media) == {"image", "video"} and (df.label == 0).all()
    assert result.failures == [(str(root / "bob" / "broken.png"), "file is empty (0 bytes)")]


def test_cnndetection_layout(tmp_path: Path) -> None:
    root = tmp_path / "cnndet"
    for i in range(2):
        _img(root / "train" / "car" / "0_real" / f"{i}.png")
        _img(root / "train" / "car" / "1_fake" / f"{i}.png")
        _img(root / "test" / "stylegan" / "car" / "1_fake" / f"{i}.png")
        _img(root / "test" / "stylegan" / "car" / "0_real" / f"{i}.png")
        _img(root / "test" / "whichfaceisreal" / "1_fake" / f"{i}.png")
    df = import_dataset(root, "real-fake").manifest
    fakes = df[df.label == 1]
    assert set(zip(fakes.split, fakes.generator)) == {("train", "car"), ("test", "stylegan"), ("test", "whichfaceisreal")}
    assert set(df.loc[(df.label == 1) & (df.generator == "stylegan"), "target"]) == {"car"}
    assert set(df.loc[df.label == 0, "generator"]) == {"real"}
    assert (df.loc[df.path.str.startswith("train/"), "split"] == "train").all()


def test_cnndetection_without_split_folders_gets_group_splits(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for i in range(20):
        _img(root / "0_real" / f"{i}.png")
        _img(root / "1_fake" / f"{i}.png")
    df = import_dataset(root, "real-fake").manifest
    assert set(df.split) == {"train", "val", "test"}


def test_ffpp_layout_groups_pairs_and_links_sources(tmp_path: Path) -> None:
    root = tmp_path / "ffpp"
    for vid in ("000", "003", "010"):
        _vid(root / "original_sequences" / "youtube" / "c23" / "videos" / f"{vid}.mp4")
    for name in ("000_003", "003_000"):
        for method in ("Deepfakes", "FaceSwap"):
            _vid(root / "manipulated_sequences" / method / "c23" / "videos" / f"{name}.mp4")
    (root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos" / "bad.mp4").write_bytes(b"")
    result = import_dataset(root, "ffpp", out=root / "meta" / ".." / "m.parquet")
    df = result.manifest
    validate_manifest(df, root)
    fakes = df[df.label == 1]
    assert len(fakes) == 4 and set(fakes.generator) == {"Deepfakes", "FaceSwap"}
    # 000 and 003 are linked by their swaps: one group, one split; 010 stands alone
    by_video = dict(zip(df.loc[df.label == 0, "video_id"], df.loc[df.label == 0, "group_id"]))
    assert by_video["000"] == by_video["003"] != by_video["010"]
    fake = fakes[(fakes.video_id == "000_003") & (fakes.generator == "Deepfakes")].iloc[0]
    assert fake.source_id == "ffpp:youtube:c23:000" and fake.target == "003"
    assert '"compression": "c23"' in fake.postproc
    assert len(result.failures) == 1 and result.failures[0][0].endswith("bad.mp4")


def test_manifest_must_live_in_or_above_the_data(tmp_path: Path) -> None:
    _img(tmp_path / "data" / "a.png")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ManifestError, match="must be written in"):
        import_dataset(tmp_path / "data", "folder", out=tmp_path / "elsewhere" / "m.parquet")
    with pytest.raises(ValueError, match="unknown layout"):
        import_dataset(tmp_path / "data", "zip")
