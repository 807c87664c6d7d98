"""Synthesis: checkpoints x real manifest -> one labeled dataset; deterministic, resumable, shardable; quality."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from forensics.data.manifest import read_manifest, validate_manifest
from generators.quality import laplacian_pyramid, radial_log_spectrum, spectral_distance, swd
from generators.synthesize import SynthOptions, merge_shards, synthesize, synthesize_shard
from tests.test_zoo_helpers import REPO, make_checkpoint, make_real_dataset, subprocess_env, torchrun_cmd

COMMITTED = REPO / "generators" / "checkpoints" / "stylegan2_small"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    return make_real_dataset(root / "real", n=20, size=32), make_checkpoint(root / "ck0", 0), make_checkpoint(root / "ck1", 1)


def _bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def test_dataset_rows_layout_and_group_splits(tmp_path: Path, world) -> None:
    manifest, ck0, ck1 = world
    df = synthesize([ck0, ck1], manifest, tmp_path / "ds", SynthOptions(n=12, batch=4), progress=False)
    validate_manifest(df, tmp_path / "ds")
    assert (tmp_path / "ds" / "manifest.parquet").exists()
    reals, fakes = df[df.label == 0], df[df.label == 1]
    assert len(reals) == 20 and len(fakes) == 24
    assert set(fakes.generator) == {"stylegan2"} and fakes.checkpoint_sha256.nunique() == 2
    assert all(p.startswith("fake/stylegan2/") for p in fakes.path) and all(p.startswith("real/") for p in reals.path)
    assert (df.width == 16).all() and (df.height == 16).all()  # the model's resolution for everyone
    assert all(json.loads(p)["resize"]["to"] == [16, 16] for p in reals.postproc)  # reals' resize is recorded
    row = fakes.iloc[0]
    cfg = json.loads(row.generator_config)
    assert cfg["noise_mode"] == "random" and cfg["psi"] == 1.0 and cfg["train_steps"] == 0
    assert cfg["model"]["resolution"] == 16
    assert row.group_id == f"stylegan2:{row.checkpoint_sha256[:8]}:{row.seed}"
    assert fakes.group_id.is_unique and set(fakes.split) == {"train", "val", "test"}
    # proportions follow the reals (12 train / 4 val / 4 test): 60/20/20 of each checkpoint's 12 fakes
    for _, per_ckpt in fakes.groupby("checkpoint_sha256"):
        counts = per_ckpt.groupby("split").size()
        for split, share in {"train": 0.6, "val": 0.2, "test": 0.2}.items():
            assert abs(counts.get(split, 0) - share * 12) < 1, counts.to_dict()
    for p in df.path:
        assert (tmp_path / "ds" / p).exists()


def test_same_seed_same_bytes_and_resume_skips_done_items(tmp_path: Path, world) -> None:
    manifest, ck0, _ = world
    opts = SynthOptions(n=6, batch=4, size=16)
    synthesize([ck0], manifest, tmp_path / "a", opts, progress=False)
    synthesize([ck0], manifest, tmp_path / "b", opts, progress=False)
    a = _bytes(tmp_path / "a")
    assert a == _bytes(tmp_path / "b")
    assert (tmp_path / "a" / "manifest.parquet").read_bytes() == (tmp_path / "b" / "manifest.parquet").read_bytes()
    # another seed gives other fakes
    other = synthesize([ck0], manifest, tmp_path / "c", SynthOptions(n=6, batch=4, seed=100), progress=False)
    assert not set(other[other.label == 1].sha256) & set(read_manifest(tmp_path / "a" / "manifest.parquet").sha256)
    # resume: delete one fake and damage another; a re-run only redoes those two
    victim, damaged = sorted((tmp_path / "a" / "fake").rglob("*.png"))[:2]
    victim.unlink()
    damaged.write_bytes(b"broken")
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.png")}
    synthesize([ck0], manifest, tmp_path / "a", opts, progress=False)
    assert _bytes(tmp_path / "a") == a
    rewritten = [p for p, t in mtimes.items() if p.stat().st_mtime_ns != t]
    assert rewritten == [damaged]
    assert len(read_manifest(tmp_path / "a" / "manifest.parquet")) == 26


def test_rank_shards_merge_into_the_single_process_dataset(tmp_path: Path, world) -> None:
    manifest, ck0, _ = world
    opts = SynthOptions(n=7, batch=4)
    single = synthesize([ck0], manifest, tmp_path / "single", opts, progress=False)
    for rank in range(3):
        synthesize_shard([ck0], manifest, tmp_path / "sharded", opts, rank=rank, world=3, progress=False)
    shards = sorted((tmp_path / "sharded").glob("manifest.rank*-of-003.parquet"))
    assert len(shards) == 3 and all(len(read_manifest(s)) in (9, 9, 9) for s in shards)
    merged = merge_shards(tmp_path / "sharded")
    assert merged.equals(single)
    assert _bytes(tmp_path / "sharded") == _bytes(tmp_path / "single")


@pytest.mark.slow
def test_torchrun_sharded_synthesis(tmp_path: Path, world) -> None:
    manifest, ck0, _ = world
    out = tmp_path / "ddp"
    cmd = torchrun_cmd(2, "-m", "forensics", "synth", "--ckpt", str(ck0), "--data", str(manifest), "--count", "6",
                       "--out", str(out), "--batch", "4")
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(out.glob("manifest.rank*"))  # merged and cleaned up
    single = synthesize([ck0], manifest, tmp_path / "single", SynthOptions(n=6, batch=4), progress=False)
    assert read_manifest(out / "manifest.parquet").equals(single)


def test_quality_measures_rank_closer_sets_lower() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(48, 3, 32, 32, generator=g) * 2 - 1
    real_b = torch.rand(48, 3, 32, 32, generator=g) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(real_b, 3, 1, 1)
    assert len(laplacian_pyramid(real)) == 2 and radial_log_spectrum(real).shape == (48, 16)
    assert swd(real, real_b)["mean"] < swd(real, blurred)["mean"]
    assert spectral_distance(real, real_b)["rms"] < spectral_distance(real, blurred)["rms"]
    assert spectral_distance(real, real)["rms"] == 0


@pytest.mark.skipif(not (COMMITTED / "model.json").exists(), reason="no committed checkpoint yet")
def test_committed_small_checkpoint_loads_samples_and_beat_step0() -> None:
    from generators.checkpoint import load_generator

    ck = load_generator(COMMITTED)
    assert ck.config.resolution == 64 and ck.train_steps > 0
    assert sum(p.stat().st_size for p in COMMITTED.iterdir()) < 20 * 1024 * 1024
    assert ck.model.sample(2, seed=0).shape == (2, 3, 64, 64)
    quality = json.loads((REPO / "reports" / "zoo" / "stylegan2_small_quality.json").read_text())
    assert quality["trained"]["checkpoint_sha256"] == ck.sha256
    assert quality["trained"]["swd_x1e3"]["mean"] < quality["step0"]["swd_x1e3"]["mean"]
    assert quality["trained"]["spectral"]["rms"] < quality["step0"]["spectral"]["rms"]
