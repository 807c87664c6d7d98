"""Manifest schema, validation errors, group-wise splits and round trips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forensics.data.manifest import (
    COLUMNS,
    ManifestError,
    assign_group_splits,
    merge_manifests,
    new_row,
    read_manifest,
    subsample_frames,
    to_frame,
    validate_manifest,
    write_manifest,
)


def _reals(n: int = 40, per_group: int = 4) -> list[dict]:
    return [new_row(sample_id=f"r{i:03d}", path=f"real/{i}.png", label=0, group_id=f"g{i // per_group}") for i in range(n)]


def _fakes(sources: list[str]) -> list[dict]:
    return [
        new_row(sample_id=f"f:{s}", path=f"fake/{s}.png", label=1, generator="cyclegan", source_id=s, group_id=f"fg:{s}")
        for s in sources
    ]


def test_row_defaults_and_unknown_fields() -> None:
    row = new_row(sample_id="a", path="a.png", label=0, group_id="g", postproc={"jpeg": 75})
    assert row["generator"] == "real" and row["seed"] == -1 and row["postproc"] == '{"jpeg": 75}'
    with pytest.raises(ManifestError, match="unknown manifest fields"):
        new_row(sample_id="a", colour="red")


def test_frame_has_schema_columns_in_order() -> None:
    assert tuple(to_frame(_reals(3)).columns) == COLUMNS


def test_missing_columns_are_named() -> None:
    df = to_frame(_reals(3)).drop(columns=["label"])
    with pytest.raises(ManifestError, match=r"missing columns: \['label'\]"):
        validate_manifest(df)


def test_bad_labels_are_reported() -> None:
    df = to_frame(_reals(3))
    df.loc[1, "label"] = 2
    with pytest.raises(ManifestError, match="labels must be 0"):
        validate_manifest(df)


def test_label_generator_disagreement() -> None:
    df = to_frame(_reals(3))
    df.loc[0, "label"] = 1  # a fake still called "real"
    with pytest.raises(ManifestError, match="label and generator disagree"):
        validate_manifest(df)


def test_group_in_two_splits_is_refused() -> None:
    df = to_frame(_reals(8))
    df["split"] = ["train"] * 3 + ["test"] + ["val"] * 4  # group g0 = rows 0..3 straddles train/test
    with pytest.raises(ManifestError, match="more than one split: \\['g0'\\]"):
        validate_manifest(df)


def test_paths_escaping_root_are_refused(tmp_path: Path) -> None:
    for bad in ("../outside.png", "/etc/passwd"):
        df = to_frame(_reals(2))
        df.loc[0, "path"] = bad
        with pytest.raises(ManifestError, match="escape the dataset root"):
            validate_manifest(df, tmp_path)


def test_symlink_out_of_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    df = to_frame(_reals(1))
    df.loc[0, "path"] = "link/secret.png"
    with pytest.raises(ManifestError, match="resolve outside"):
        validate_manifest(df, root)


def test_duplicate_ids_and_dangling_sources() -> None:
    df = to_frame(_reals(4) + _reals(1) + _fakes(["nope"]))
    with pytest.raises(ManifestError) as info:
        validate_manifest(df)
    assert "duplicate sample_id" in str(info.value) and "not in the manifest" in str(info.value)


def test_group_splits_are_deterministic_groupwise_and_near_target() -> None:
    df = assign_group_splits(to_frame(_reals(200, per_group=5)), seed=3)
    again = assign_group_splits(to_frame(_reals(200, per_group=5)).sample(frac=1, random_state=1), seed=3)
    assert dict(zip(df.sample_id, df.split)) == dict(zip(again.sample_id, again.split))  # row order does not matter
    assert (df.groupby("group_id")["split"].nunique() == 1).all()
    share = df["split"].value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.7, abs=0.05) and share["test"] == pytest.approx(0.15, abs=0.05)
    other = assign_group_splits(to_frame(_reals(200, per_group=5)), seed=4)
    assert list(other.split) != list(df.split)  # the seed matters


def test_fakes_follow_their_source_split() -> None:
    reals = _reals(40)
    df = assign_group_splits(to_frame(reals + _fakes([r["sample_id"] for r in reals[::3]])))
    validate_manifest(df)
    split = dict(zip(df.sample_id, df.split))
    fakes = df[df.label == 1]
    assert all(split[s] == sp for s, sp in zip(fakes.source_id, fakes.split))


def test_moved_fake_is_refused() -> None:
    df = assign_group_splits(to_frame(_reals(40) + _fakes(["r000"])))
    other = {"train": "test", "val": "train", "test": "train"}
    df.loc[df.sample_id == "f:r000", "split"] = other[df.loc[df.sample_id == "r000", "split"].item()]
    with pytest.raises(ManifestError, match="not in their real source's split"):
        validate_manifest(df)


@pytest.mark.parametrize("name", ["m.parquet", "m.csv"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    df = assign_group_splits(to_frame(_reals(12) + _fakes(["r001", "r005"])))
    write_manifest(df, tmp_path / name)
    back = read_manifest(tmp_path / name)
    pd.testing.assert_frame_equal(back, df)


def test_write_validates_and_read_reports_damage(tmp_path: Path) -> None:
    df = to_frame(_reals(2))
    df.loc[0, "label"] = 7
    with pytest.raises(ManifestError):
        write_manifest(df, tmp_path / "m.parquet")
    assert not (tmp_path / "m.parquet").exists()
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ManifestError, match="bad.parquet: cannot read manifest"):
        read_manifest(tmp_path / "bad.parquet")


def test_merge_collapses_identical_rows_and_refuses_conflicts() -> None:
    a = assign_group_splits(to_frame(_reals(8)))
    merged = merge_manifests([a.iloc[:5], a.iloc[3:]])
    assert len(merged) == 8
    conflicting = a.iloc[:2].copy()
    conflicting.loc[0, "sha256"] = "different"
    with pytest.raises(ManifestError, match="merge conflict"):
        merge_manifests([a, conflicting])


def _video_rows(video_id: str, n_frames: int, split: str) -> list[dict]:
    group = f"video:{video_id}"
    rows = [new_row(sample_id=f"video:{video_id}", path=f"videos/{video_id}.mp4", label=0, media="video",
                    group_id=group, split=split, video_id=video_id)]
    return rows + [new_row(sample_id=f"{video_id}:f{i:05d}", path=f"crops/{video_id}_{i}.png", label=0, media="frame",
                           group_id=group, split=split, video_id=video_id, frame_idx=i) for i in range(n_frames)]


def test_subsample_frames_keeps_evenly_spaced_frames_and_every_group() -> None:
    rows = _video_rows("long", 100, "train") + _video_rows("odd", 95, "test") + _video_rows("short", 7, "val")
    rows.append(new_row(sample_id="still", path="still.png", label=0, group_id="still", split="val"))
    df = to_frame(rows)
    out = subsample_frames(df.sample(frac=1, random_state=0), per_video=10, seed=1)  # row order does not matter
    frames = out[out.media == "frame"]
    assert frames.groupby("video_id").size().to_dict() == {"long": 10, "odd": 10, "short": 7}
    for video_id, stride in (("long", {10}), ("odd", {9, 10})):
        idx = sorted(frames.loc[frames.video_id == video_id, "frame_idx"])
        assert set(np.diff(idx)) <= stride and idx[0] < 10  # even spacing, starting in the first stride
    assert set(out.group_id) == set(df.group_id) and {"video:long", "still"} <= set(out.sample_id)
    split = dict(zip(df.sample_id, df.split))
    assert all(split[s] == sp for s, sp in zip(out.sample_id, out.split))  # nothing moves between splits
    validate_manifest(out)
    same = subsample_frames(df, per_video=10, seed=1)
    assert set(same.sample_id) == set(out.sample_id)
    phases = {tuple(sorted(subsample_frames(df, 10, seed=s).query("video_id == 'long'").frame_idx)) for s in range(8)}
    assert len(phases) > 1  # the seed moves the phase


def test_subsample_frames_drops_fakes_of_dropped_frames_and_refuses_zero() -> None:
    reals = _video_rows("clip", 40, "train")
    fakes = _fakes([r["sample_id"] for r in reals[1:]])
    for f in fakes:
        f["split"] = "train"
    out = subsample_frames(to_frame(reals + fakes), per_video=4, seed=0)
    kept_reals = set(out.loc[out.label == 0, "sample_id"])
    assert len(kept_reals) == 5 and set(out.loc[out.label == 1, "source_id"]) == kept_reals - {"video:clip"}
    validate_manifest(out)
    with pytest.raises(ValueError, match="per_video must be >= 1"):
        subsample_frames(to_frame(reals), per_video=0)
