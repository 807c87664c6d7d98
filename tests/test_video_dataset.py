"""The clip dataset: every row of a source video in that video's split, clips/frames/videos per kind, resumable
without duplicate rows. Real MTCNN on two real starter videos, a tiny (untrained) face-swap checkpoint."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from forensics.data.manifest import new_row, read_manifest, to_frame, validate_manifest, write_manifest
from forensics.data.media import probe_video
from generators.checkpoint import save_generator
from generators.faceswap import PRESETS, FaceSwapAutoencoder
from generators.video_dataset import VideoDatasetOptions, pick_target, synthesize_video_dataset, video_splits

ASSETS = Path(__file__).resolve().parent.parent / "forensics" / "assets" / "starter"
VIDEOS = {"single_face": ("single_face.mp4", "pyfeat_man", "val"), "carphone": ("carphone_pristine.mp4", "carphone_man", "train")}
OPTS = VideoDatasetOptions(clip_seconds=1.0, max_seconds=2.0, max_clips=2, swap_variants=("naive",), frame_every=10,
                           detect_every=3, blend=False, split="corpus")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for vid, (name, identity, split) in VIDEOS.items():
        (root / "videos").mkdir(exist_ok=True)
        shutil.copyfile(ASSETS / name, root / "videos" / name)
        info = probe_video(root / "videos" / name)
        rows.append(new_row(sample_id=f"video:{vid}", path=f"videos/{name}", label=0, media="video",
                            group_id=f"video:{vid}", split=split, identity=identity, video_id=vid,
                            width=info.width, height=info.height))
    write_manifest(to_frame(rows), root / "manifest.parquet")
    cfg = dataclasses.replace(PRESETS["tiny"], identities=("pexels_woman", "pyfeat_man"))
    torch.manual_seed(0)
    save_generator(root / "ck", "faceswap", cfg, FaceSwapAutoencoder(cfg), {"steps": 0, "seed": 0})
    return root / "manifest.parquet", root / "ck"


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    manifest, ck = corpus
    out = tmp_path_factory.mktemp("clips")
    df = synthesize_video_dataset([ck], manifest, out, "all", OPTS)
    return out, df


def test_every_row_of_a_source_video_is_in_its_split(built) -> None:
    out, df = built
    validate_manifest(df, out)
    assert set(df["group_id"]) == {"video:single_face", "video:carphone"}
    for vid, (_, _, split) in VIDEOS.items():
        rows = df[df["group_id"] == f"video:{vid}"]
        assert set(rows["split"]) == {split}, vid  # clips, frames, videos, reals and fakes alike
    assert (df.groupby("group_id")["split"].nunique() == 1).all()
    # kinds: the real re-encode and the naive swap, each with clip, frame and whole-video rows
    kinds = df["sample_id"].str.split(":").str[0]
    assert {k.split("-")[0] for k in kinds} == {"real", "faceswap_naive"}
    clips = df[df["postproc"].str.contains('"clip": {')]
    assert len(clips) == 2 * 2 * 2  # 2 videos x 2 clips x 2 kinds
    frames = df[df["media"] == "frame"]
    assert len(frames) and set(frames["video_id"]) <= set(clips["sample_id"])  # frames aggregate per clip
    fakes = df[df["label"] == 1]
    assert set(fakes["source_id"]) <= set(df["sample_id"]) and (fakes["target"] != "").all()
    for row in clips.to_dict("records"):
        post = json.loads(row["postproc"])
        assert probe_video(out / row["path"]).frame_count == post["clip"]["stop"] - post["clip"]["start"]


def test_rerun_resumes_without_duplicates(built, corpus) -> None:
    out, df = built
    manifest, ck = corpus
    again = synthesize_video_dataset([ck], manifest, out, "all", OPTS)
    assert not again["sample_id"].duplicated().any() and again.equals(df)
    # a run killed during one unit (kind x video): its rows never reached the manifest; the rerun redoes it
    unit = df["sample_id"].str.startswith("faceswap_naive") & (df["group_id"] == "video:carphone")
    assert unit.any()
    write_manifest(df[~unit], out / "manifest.parquet")
    redone = synthesize_video_dataset([ck], manifest, out, "all", OPTS)
    assert not redone["sample_id"].duplicated().any()
    assert sorted(redone["sample_id"]) == sorted(df["sample_id"])


def test_video_splits_and_targets() -> None:
    import pandas as pd

    videos = pd.DataFrame({"video_id": [f"v{i}" for i in range(5)], "split": ["train"] * 5})
    assert set(video_splits(videos, OPTS).values()) == {"train"}  # corpus: the source row's split
    by_video = video_splits(videos, dataclasses.replace(OPTS, split="videos"))
    assert sorted(by_video.values()).count("test") == 1 and sorted(by_video.values()).count("val") == 1
    assert pick_target(("a", "b"), "a", "k") == "b"
    assert pick_target(("a", "b", "c"), "x", "k") in ("a", "b", "c")
    with pytest.raises(ValueError, match="no target"):
        pick_target(("a",), "a", "k")


def test_synth_cli_builds_clips(corpus, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from forensics.cli import app

    manifest, ck = corpus
    res = CliRunner().invoke(app, ["synth", "--ckpt", str(ck), "--data", str(manifest), "--n", "0", "--out",
                                   str(tmp_path / "ds"), "--videos", "carphone", "--clip-seconds", "1",
                                   "--max-seconds", "1", "--max-clips", "1"])
    assert res.exit_code == 0, res.output
    df = read_manifest(tmp_path / "ds" / "manifest.parquet")
    assert set(df["group_id"]) == {"video:carphone"} and set(df["generator"]) == {"real", "faceswap"}
    bad = CliRunner().invoke(app, ["synth", "--ckpt", str(ck), "--data", str(manifest), "--n", "0", "--out",
                                   str(tmp_path / "x"), "--videos", "nope", "--clip-seconds", "1"])
    assert bad.exit_code != 0 and "nope" in str(bad.exception)
