"""CycleGAN: the published parameter counts, losses and pool behaviour, translate protocol, training round trip."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import generators
from generators.checkpoint import load_generator
from generators.cyclegan import (
    PRESETS,
    CycleGANConfig,
    CycleGANTask,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    lsgan,
)
from generators.train import TrainOptions, train
from tests.test_translation import make_domain_manifest


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_preset_has_the_published_parameter_counts() -> None:
    # The reference implementation's ResNet-9 generator (ngf 64, InstanceNorm -> conv biases) and 70x70 PatchGAN
    # (ndf 64, 3 layers) print 11.378 M and 2.765 M parameters; ours are the same layer for layer.
    cfg = PRESETS["paper"]
    assert (cfg.resolution, cfg.n_blocks, cfg.ngf, cfg.ndf, cfg.d_layers) == (256, 9, 64, 64, 3)
    assert n_params(ResnetGenerator(cfg.ngf, cfg.n_blocks)) == 11_378_179
    assert n_params(PatchDiscriminator(cfg.ndf, cfg.d_layers)) == 2_764_737
    assert (cfg.lambda_cycle, cfg.lambda_identity * cfg.lambda_cycle, cfg.pool_size, cfg.lr, cfg.betas) == \
        (10.0, 5.0, 50, 2e-4, (0.5, 0.999))


def test_patchgan_receptive_field_is_70_pixels() -> None:
    d = PatchDiscriminator(4, 3)
    rf, jump = 1, 1
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    for m in convs:  # receptive field grows by (k - 1) * jump, jump by the stride
        rf += (m.kernel_size[0] - 1) * jump
        jump *= m.stride[0]
    assert rf == 70
    assert d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_translate_directions_shape_and_errors() -> None:
    torch.manual_seed(0)
    G = generators.create("cyclegan", "tiny")
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    mixed = G.translate(x, target=[1, 0, 1, 0])
    assert mixed.shape == x.shape
    with torch.no_grad():
        assert torch.allclose(mixed[0], G.g_ab(x[:1])[0], atol=1e-4)
        assert torch.allclose(mixed[1], G.g_ba(x[1:2])[0], atol=1e-4)
    assert torch.equal(G.translate(x, target=1, seed=1), G.translate(x, target=1, seed=2))  # seed is ignored
    with pytest.raises(ValueError, match="no reference-guided"):
        G.translate(x, target=1, ref=x)
    with pytest.raises(ValueError, match="32x32"):
        G.translate(torch.zeros(1, 3, 16, 16), target=1)
    with pytest.raises(ValueError, match="domains are resolved"):
        G.translate(x, target="anna")
    with pytest.raises(ValueError, match="exactly 2 domains"):
        CycleGANConfig(domains=("a", "b", "c"))


def test_image_pool_fills_then_swaps_half_the_time() -> None:
    torch.manual_seed(0)
    pool = ImagePool(4, 2)
    first = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 3, 2, 2)
    assert torch.equal(pool.query(first), first) and int(pool.count) == 4  # filling: returned as is
    new = (100.0 + torch.arange(400.0)).reshape(400, 1, 1, 1).expand(400, 3, 2, 2)
    out = torch.cat([pool.query(new[i:i + 1]) for i in range(400)])
    swapped = out[:, 0, 0, 0] != new[:, 0, 0, 0]
    assert 0.4 < float(swapped.float().mean()) < 0.6  # about half the queries return a stored (older) image
    assert (out[swapped, 0, 0, 0] < new[swapped, 0, 0, 0]).all()  # ... which is always an earlier one
    assert torch.equal(ImagePool(0, 2).query(first), first)  # pool size 0: no history


def test_lsgan_targets() -> None:
    assert lsgan(torch.ones(2, 1, 3, 3), True) == 0 and lsgan(torch.zeros(2, 1, 3, 3), False) == 0
    assert lsgan(torch.zeros(1), True) == 1


def test_lr_is_constant_then_decays_linearly(tmp_path: Path) -> None:
    task = CycleGANTask(PRESETS["tiny"])  # 1 + 1 epochs
    task.epoch_images = 8  # 4 steps of batch 2 per epoch
    assert [round(task.lr_factor(s), 3) for s in (0, 4, 6, 8, 12)] == [1.0, 1.0, 0.5, 0.0, 0.0]


def test_training_losses_finite_resume_exact_and_checkpoint_round_trip(tmp_path: Path) -> None:
    manifest = make_domain_manifest(tmp_path / "data")
    opts = dict(out=tmp_path / "run", progress=False, log_every=1, checkpoint_every=2, device="cpu")
    res = train("cyclegan", "tiny", manifest, TrainOptions(steps=4, **opts))
    import json

    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(logs) == 4 and all(torch.isfinite(torch.tensor(v)) for row in logs for v in row.values())
    ck = load_generator(res.checkpoint)
    assert ck.config.domains == ("anna", "bert") and ck.train_steps == 4  # resolved from data and recorded
    # a killed run (stopped after 2 steps) resumes to the same weights
    train("cyclegan", "tiny", manifest, TrainOptions(steps=4, stop_after=2, **{**opts, "out": tmp_path / "r2"}))
    res2 = train("cyclegan", "tiny", manifest, TrainOptions(steps=4, resume=True, **{**opts, "out": tmp_path / "r2"}))
    ck2 = load_generator(res2.checkpoint)
    for (k, v), (_, v2) in zip(ck.model.state_dict().items(), ck2.model.state_dict().items()):
        assert torch.equal(v, v2), k
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(ck.model.translate(x, target="bert"), ck2.model.translate(x, target=1))
