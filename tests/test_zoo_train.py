"""The shared training loop: seeded, resumable after a kill without drift, data-parallel under torchrun."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from forensics.cli import app
from generators.checkpoint import load_generator, load_tensors
from generators.train import Ema, TrainOptions, batch_indices, train
from tests.test_zoo_helpers import REPO, make_real_dataset, subprocess_env, torchrun_cmd


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_real_dataset(tmp_path_factory.mktemp("real"), n=20, size=32)


def _opts(out: Path, steps: int, **kw) -> TrainOptions:
    return TrainOptions(steps=steps, out=out, checkpoint_every=2, progress=False, log_every=1, **kw)


def test_a_killed_run_resumes_exactly_from_its_last_checkpoint(tmp_path: Path, manifest: Path) -> None:
    full = train("stylegan2", "tiny", manifest, _opts(tmp_path / "full", 6))
    # "kill" after 3 steps: the step-3 work is lost, the step-2 checkpoint survives
    killed = train("stylegan2", "tiny", manifest, _opts(tmp_path / "killed", 6, stop_after=3))
    assert killed.steps == 2
    assert json.loads((tmp_path / "killed" / "latest.json").read_text())["step"] == 2
    resumed = train("stylegan2", "tiny", manifest, _opts(tmp_path / "killed", 6, resume=True))
    assert full.steps == resumed.steps == 6
    for name in ("train_state.safetensors", "model.safetensors"):
        a, _ = load_tensors(tmp_path / "full" / "ckpt-00000006" / name)
        b, _ = load_tensors(tmp_path / "killed" / "ckpt-00000006" / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{name} differs after resume"
    info = load_generator(tmp_path / "killed" / "ckpt-00000006").info["train"]
    assert info["steps"] == 6 and info["seed"] == 0 and info["images_seen"] == 24
    assert (tmp_path / "killed" / "ckpt-00000000").exists()  # step 0 kept as the quality baseline
    assert not list((tmp_path / "killed").glob(".tmp-*"))
    steps_logged = [json.loads(x)["step"] for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert steps_logged == sorted(set(steps_logged))  # the lost step 3 was logged once, then replaced


def test_refuses_to_overwrite_a_run_or_resume_with_another_config(tmp_path: Path, manifest: Path) -> None:
    train("stylegan2", "tiny", manifest, _opts(tmp_path / "run", 1))
    with pytest.raises(FileExistsError, match="--resume"):
        train("stylegan2", "tiny", manifest, _opts(tmp_path / "run", 2))
    import dataclasses

    import generators

    other = dataclasses.replace(generators.resolve_config("stylegan2", "tiny"), r1_gamma=1.0)
    with pytest.raises(ValueError, match="config differs"):
        train("stylegan2", other, manifest, _opts(tmp_path / "run", 2, resume=True))


def test_training_changes_the_generator_and_records_provenance(tmp_path: Path, manifest: Path) -> None:
    result = train("stylegan2", "tiny", manifest, _opts(tmp_path / "run", 2))
    g0 = load_generator(tmp_path / "run" / "ckpt-00000000")
    g2 = load_generator(result.checkpoint)
    assert g0.sha256 != g2.sha256
    info = g2.info
    assert info["generator"] == "stylegan2" and info["config"]["resolution"] == 16
    assert {"torch", "numpy", "safetensors", "python"} <= set(info["versions"])
    assert info["train"]["data"]["manifest_sha256"]
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"loss_G", "loss_D"} <= set(log[-1])


def test_data_order_and_ema_rampup() -> None:
    a, b = batch_indices(3, 8, 20, seed=1), batch_indices(3, 8, 20, seed=1)
    assert torch.equal(a, b) and len(a) == 8
    epoch = torch.cat([batch_indices(s, 5, 20, seed=0) for s in range(4)])
    assert sorted(epoch.tolist()) == list(range(20))  # one epoch visits every item once
    ema = Ema(torch.nn.Linear(2, 2), half_life_images=10_000, rampup=0.05)
    assert ema.beta(images_seen=32, batch=32) < 1e-5  # ramp-up: early on the EMA follows G closely
    assert ema.beta(images_seen=10**7, batch=32) == pytest.approx(0.5 ** (32 / 10_000))


def test_cli_train_and_sample(tmp_path: Path, manifest: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["zoo", "train", "stylegan2", "--data", str(manifest), "--config", "tiny", "--steps", "2",
                            "--out", str(tmp_path / "run"), "--device", "cpu", "--checkpoint-every", "1"])
    assert r.exit_code == 0, r.output
    ck = tmp_path / "run" / "ckpt-00000002"
    for out in ("s1", "s2", "s3"):
        r = runner.invoke(app, ["zoo", "sample", str(ck), "--n", "3", "--seed", "7" if out != "s3" else "8",
                                "--out", str(tmp_path / out)])
        assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "s1").iterdir())
    assert names == ["00000007.png", "00000008.png", "00000009.png", "grid.png"]
    for name in names:
        assert (tmp_path / "s1" / name).read_bytes() == (tmp_path / "s2" / name).read_bytes()
    # seed 8 starts one image later: its first image is s1's second, its grid differs
    assert (tmp_path / "s3" / "00000008.png").read_bytes() == (tmp_path / "s1" / "00000008.png").read_bytes()
    assert (tmp_path / "s3" / "grid.png").read_bytes() != (tmp_path / "s1" / "grid.png").read_bytes()
    r = runner.invoke(app, ["zoo", "list"])
    assert "stylegan2" in r.output


@pytest.mark.slow
def test_two_process_torchrun_training_step(tmp_path: Path, manifest: Path) -> None:
    out = tmp_path / "ddp"
    cmd = torchrun_cmd(2, "-m", "forensics", "zoo", "train", "stylegan2", "--data", str(manifest), "--config",
                       "tiny", "--steps", "2", "--out", str(out), "--device", "cpu", "--checkpoint-every", "1")
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = load_generator(out / "ckpt-00000002").info["train"]
    assert info["world_size"] == 2 and info["steps"] == 2 and info["images_seen"] == 8
    # every checkpoint passed the cross-rank parameter checksum (a drift would have raised)
    assert json.loads((out / "latest.json").read_text())["step"] == 2
