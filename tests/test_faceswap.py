"""Autoencoder face swap: the faceswap 'Original' layout, shapes, SSIM, augmentation, data, training, checkpoints."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import generators
from forensics.cli import app
from forensics.data.faces import template_points
from forensics.data.manifest import new_row, to_frame, write_manifest
from forensics.data.media import write_image
from generators.checkpoint import load_generator, save_generator
from generators.faceswap import (
    PRESETS,
    FaceSwapAutoencoder,
    FaceSwapConfig,
    FaceSwapTask,
    augment_pair,
    crop_to_model_matrix,
    load_identity,
    model_window,
    random_warp_grid,
    ssim,
)
from generators.train import TrainOptions, train

TINY = dataclasses.replace(PRESETS["tiny"], identities=("A", "B"))


def make_identity_dataset(root: Path, counts: tuple[int, int] = (6, 6), seed: int = 0) -> Path:
    """128 px 'aligned crops' of two identities (a warm and a cool blob face) with template landmarks."""
    rng = np.random.default_rng(seed)
    pts = template_points(128, 0.25)
    rows = []
    for (ident, colour), count in zip((("A", (200, 140, 110)), ("B", (110, 140, 200))), counts):
        for i in range(count):
            img = rng.integers(0, 60, (128, 128, 3)).astype(np.uint8)
            cv2.ellipse(img, (64, 70), (34, 44), 0, 0, 360, colour, -1)
            for p in pts:
                cv2.circle(img, (int(p[0]), int(p[1])), 3, (20, 20, 20), -1)
            rel = f"crops/{ident}/{i:03d}.png"
            write_image(root / rel, img)
            rows.append(new_row(sample_id=f"{ident}:{i:03d}", path=rel, label=0, media="frame", group_id=f"{ident}:g",
                                split="train", identity=ident, width=128, height=128,
                                postproc={"aligned": {"matrix": [[1, 0, 0], [0, 1, 0]], "size": 128, "margin": 0.25},
                                          "landmarks": pts.tolist()}))
    write_manifest(to_frame(rows), root / "manifest.parquet")
    return root / "manifest.parquet"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_identity_dataset(tmp_path_factory.mktemp("faces"))


def _count(cfg: FaceSwapConfig) -> int:
    with torch.device("meta"):
        model = FaceSwapAutoencoder(cfg)
    return sum(p.numel() for p in model.parameters())


def test_paper_preset_is_the_faceswap_original_layout() -> None:
    cfg = PRESETS["paper"]
    with torch.device("meta"):
        model = FaceSwapAutoencoder(cfg)
        h = model.encoder(torch.empty(2, 3, 64, 64))
        assert tuple(h.shape) == (2, 512, 8, 8)  # dense 1024 -> 4x4x1024 -> upscale(512)
        rgb, mask = model.decoders[0](h)
    assert tuple(rgb.shape) == (2, 3, 64, 64) and mask is None
    convs = [m for m in model.encoder.convs.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 256, 512, 1024]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)
    assert model.encoder.dense.out_features == 1024 and model.encoder.expand.out_features == 4 * 4 * 1024
    ups = [m for m in model.decoders[0].ups.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels // 4 for c in ups] == [256, 128, 64]
    # encoder: convs + dense + dense + upscale; each decoder: three upscales + 5x5 conv to RGB
    enc = (3 * 128 + 128 * 256 + 256 * 512 + 512 * 1024) * 25 + (128 + 256 + 512 + 1024) \
        + 16384 * 1024 + 1024 + 1024 * 16384 + 16384 + 1024 * 2048 * 9 + 2048
    dec = 512 * 1024 * 9 + 1024 + 256 * 512 * 9 + 512 + 128 * 256 * 9 + 256 + 64 * 3 * 25 + 3
    assert (enc, dec) == (69_662_976, 6_199_747)
    assert _count(cfg) == enc + 2 * dec == 82_062_470
    assert _count(PRESETS["small"]) == 4_612_838  # < 20 MB as fp32 safetensors


def test_swap_shapes_range_and_determinism() -> None:
    torch.manual_seed(0)
    model = generators.create("faceswap", TINY)
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a, b = model.translate(x, target="B"), model.translate(x, target=1, seed=5)
    assert a.shape == (3, 3, 16, 16) and torch.equal(a, b) and -1 <= a.min() and a.max() <= 1
    assert not torch.equal(a, model.translate(x, target="A"))  # two decoders, two looks
    with pytest.raises(ValueError, match="unknown target identity"):
        model.translate(x, target="C")
    with pytest.raises(ValueError, match="expected"):
        model.translate(x[:, :, :8, :8], target="B")
    torch.manual_seed(0)
    again = generators.create("faceswap", TINY)
    assert torch.equal(a, again.translate(x, target="B"))


def test_ssim_is_one_for_identical_images_and_drops_with_noise() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert 0.0 < float(ssim(x, noisy)) < 0.9


def test_random_warp_is_smooth_and_augmentation_keeps_shapes() -> None:
    torch.manual_seed(0)
    cfg = PRESETS["small"]
    grid = random_warp_grid(2, 64, cfg, torch.device("cpu"))
    assert grid.shape == (2, 64, 64, 2)
    step = (grid[:, :, 1:] - grid[:, :, :-1]).abs().max()
    assert float(step) < 0.2  # a smooth displacement field, not per-pixel noise
    imgs = torch.randint(0, 255, (4, 3, 64, 64), dtype=torch.uint8)
    masks = torch.full((4, 1, 64, 64), 255, dtype=torch.uint8)
    warped, target, mask = augment_pair(imgs, masks, cfg)
    assert warped.shape == target.shape == (4, 3, 64, 64) and mask is not None and mask.shape == (4, 1, 64, 64)
    assert 0 <= float(warped.min()) and float(warped.max()) <= 1
    assert not torch.allclose(warped, target)


def test_model_window_and_its_matrix_agree() -> None:
    cfg = PRESETS["small"]
    crop = np.zeros((128, 128, 3), np.uint8)
    cv2.circle(crop, (64, 70), 4, (255, 255, 255), -1)
    win = model_window(crop, cfg)
    m = crop_to_model_matrix(cfg)
    x, y = m[:, :2] @ np.array([64.0, 70.0]) + m[:, 2]
    ys, xs = np.nonzero(win[:, :, 0] > 100)
    assert abs(xs.mean() - x) < 0.7 and abs(ys.mean() - y) < 0.7


def test_load_data_balances_the_two_identities(tmp_path: Path) -> None:
    root = make_identity_dataset(tmp_path / "d", counts=(6, 4)).parent
    task = FaceSwapTask(dataclasses.replace(TINY, mask_head=True))
    data = task.load_data(root / "manifest.parquet")
    assert set(data) == {"a", "b", "a_mask", "b_mask"}
    # B (4 crops) is cycled up to A's 6, every B crop at least once
    assert data["a"].shape == data["b"].shape == (6, 3, 16, 16) and data["a"].dtype == torch.uint8
    assert len({bytes(t.numpy()) for t in data["b"]}) == 4
    assert data["a_mask"].float().mean() > 30  # the landmark face region is not empty
    imgs, marks, ids = load_identity(root / "manifest.parquet", TINY, "B")
    assert imgs.shape == (4, 16, 16, 3) and marks.shape == (4, 5, 2) and ids[0] == "B:000"
    with pytest.raises(ValueError, match="identities there"):
        load_identity(root / "manifest.parquet", TINY, "nobody")


def test_training_is_seeded_and_the_checkpoint_round_trips(tmp_path: Path, manifest: Path) -> None:
    opts = dict(steps=3, checkpoint_every=3, progress=False)
    a = train("faceswap", TINY, manifest, TrainOptions(out=tmp_path / "a", **opts))
    b = train("faceswap", TINY, manifest, TrainOptions(out=tmp_path / "b", **opts))
    ck_a, ck_b = load_generator(a.checkpoint), load_generator(b.checkpoint)
    # (weights, not file hashes: safetensors writes its metadata map in a random key order)
    sa, sb = ck_a.model.state_dict(), ck_b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and ck_a.train_steps == 3 and ck_a.config == TINY
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    assert torch.equal(ck_a.model.translate(x, "B"), ck_b.model.translate(x, "B"))
    assert set(a.losses) == {"loss_A", "loss_B", "ssim_A", "ssim_B"}
    # explicit save/load round trip of the exported network
    save_generator(tmp_path / "ck", "faceswap", TINY, ck_a.model, {"steps": 3, "seed": 0})
    again = load_generator(tmp_path / "ck")
    assert torch.equal(again.model.translate(x, "A"), ck_a.model.translate(x, "A"))


def _flat(text: str) -> str:
    """CLI error text without rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_cli_train_with_identities(tmp_path: Path, manifest: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["zoo", "train", "faceswap", "--data", str(manifest), "--config", "tiny", "--steps", "2",
                              "--out", str(tmp_path / "run"), "--identities", "B,A", "--checkpoint-every", "2"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "run" / "ckpt-00000002" / "model.json").read_text())["config"]
    assert cfg["identities"] == ["B", "A"]
    bad = runner.invoke(app, ["zoo", "train", "faceswap", "--data", str(manifest), "--config", "tiny", "--steps", "1",
                              "--out", str(tmp_path / "bad"), "--identities", "A,B,C"])
    assert bad.exit_code != 0 and "exactly two identities" in _flat(bad.output)
    sg = runner.invoke(app, ["zoo", "train", "stylegan2", "--data", str(manifest), "--config", "tiny", "--steps", "1",
                             "--out", str(tmp_path / "sg"), "--identities", "A,B"])
    assert sg.exit_code != 0 and "does not train on named identities" in _flat(sg.output)


COMMITTED = Path(__file__).resolve().parent.parent / "generators" / "checkpoints" / "faceswap_small"
REPORT = Path(__file__).resolve().parent.parent / "reports" / "faceswap" / "flicker.json"


@pytest.mark.skipif(not (COMMITTED / "model.json").exists(), reason="no committed checkpoint yet")
def test_committed_checkpoint_loads_and_its_report_shows_flicker() -> None:
    ck = load_generator(COMMITTED)
    assert ck.config.resolution == 64 and ck.train_steps > 0 and ck.config.identities == ("pexels_woman", "pyfeat_man")
    assert sum(p.stat().st_size for p in COMMITTED.iterdir()) < 20 * 1024 * 1024
    assert (COMMITTED / "MODEL_CARD.md").exists()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert ck.model.translate(x, "pexels_woman").shape == (2, 3, 64, 64)
    report = json.loads(REPORT.read_text())
    assert report["checkpoint_sha256"] == ck.sha256
    assert report["grid"]["frames_with_pixels_changed_outside_mask"] == 0
    for video in report["videos"]:
        f = video["figures"]
        assert f["naive"]["warp_error"] > f["source"]["warp_error"]  # per-frame swapping adds flicker
        assert f["smoothed"]["warp_error"] < f["naive"]["warp_error"]  # smoothing removes some of it


def test_crop_synthesis_refuses_a_face_swap_checkpoint(tmp_path) -> None:
    """Library callers get the same routing as the CLI: a face swap is merged into frames, never crop-translated."""
    import pytest

    from generators.synthesize import SynthOptions, synthesize

    ckpt = Path(__file__).resolve().parents[1] / "generators" / "checkpoints" / "faceswap_small"
    with pytest.raises(ValueError, match="face-swap checkpoints go through generators.faceswap_video"):
        synthesize([ckpt], tmp_path / "unused.parquet", tmp_path / "out", SynthOptions(n=1))
