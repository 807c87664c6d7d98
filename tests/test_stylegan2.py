"""StyleGAN2 faithfulness at small scale: paper parameter counts, layer equivalences, truncation, noise, mixing."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

import generators
from generators.layers import LRELU_GAIN, ModulatedConv2d, MinibatchStd, binomial_filter, upsample_2x
from generators.stylegan2 import PRESETS, StyleGAN2Discriminator, StyleGAN2Generator, StyleGAN2Task

TINY = PRESETS["tiny"]


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_preset_parameter_counts() -> None:
    """Config F at 1024 px: G ~30.0M and D ~29.0M parameters as published. The exact totals below equal the
    summaries printed by the NVlabs reference implementation (stylegan2-ada-pytorch, FFHQ 1024, no labels):
    G 30,370,060 and D 29,012,513. The 0.37M above "30.0M" in G is rounding (30.37M -> "30M" in the paper's text).
    G = mapping 8 x (512*512 + 512) = 2,101,248 + synthesis 28,268,812 (const 512x4x4; per 3x3 layer: affine
    512*Cin + Cin, weight Cout*Cin*9, bias Cout, noise strength 1; per toRGB: affine, 3*Cin weight, 3 bias).
    Noise images, w_avg and resampling filters are buffers, not parameters."""
    cfg = PRESETS["paper"]
    assert (cfg.resolution, cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.num_ws) == (1024, 512, 512, 8, 18)
    assert [cfg.channels(r) for r in (4, 64, 128, 256, 512, 1024)] == [512, 512, 256, 128, 64, 32]
    g, d = StyleGAN2Generator(cfg), StyleGAN2Discriminator(cfg)
    assert _count(g.mapping) == 2_101_248
    assert _count(g) == 30_370_060
    assert _count(d) == 29_012_513


@pytest.mark.parametrize("up", [False, True])
def test_fused_grouped_modconv_equals_activation_scaling(up: bool) -> None:
    torch.manual_seed(0)
    a = ModulatedConv2d(8, 6, 3, w_dim=5, up=up, fused=False)
    b = ModulatedConv2d(8, 6, 3, w_dim=5, up=up, fused=True)
    b.load_state_dict(a.state_dict())
    x, w = torch.randn(3, 8, 8, 8), torch.randn(3, 5)
    ya, yb = a(x, w), b(x, w)
    assert ya.shape == (3, 6, 16 if up else 8, 16 if up else 8)
    torch.testing.assert_close(ya, yb, atol=1e-4, rtol=1e-4)


def test_torgb_batched_matmul_equals_the_modulated_1x1_conv() -> None:
    """ToRGB folds the style into a per-sample [C,3] weight on NHWC input; it must equal the modulated conv."""
    from generators.stylegan2 import ToRGB

    torch.manual_seed(0)
    torgb = ToRGB(8, TINY)
    with torch.no_grad():
        torgb.bias.normal_()
    x, w = torch.randn(3, 8, 5, 5), torch.randn(3, TINY.w_dim)
    fast = torgb(x.contiguous(memory_format=torch.channels_last), w)
    reference = torgb.conv(x, w) + torgb.bias[None, :, None, None]
    assert fast.shape == (3, 3, 5, 5)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)


def test_demodulation_normalises_output_channels() -> None:
    """With unit-variance iid input, each demodulated output channel has ~unit std whatever the style."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 16, 3, w_dim=8)
    x = torch.randn(4, 64, 32, 32)
    y = conv(x, torch.randn(4, 8) * 5)
    std = y[:, :, 2:-2, 2:-2].std(dim=(2, 3))
    assert torch.allclose(std, torch.ones_like(std), atol=0.15)


def test_synthesis_layer_epilogue_matches_the_reference_formula() -> None:
    """out = lrelu(demod(conv(x)) + noise * strength + bias) * sqrt(2), in both grad and inference modes."""
    torch.manual_seed(0)
    g = StyleGAN2Generator(TINY)
    layer = g.synthesis.blocks[1].conv1
    layer.noise.strength.data.fill_(0.3)
    layer.bias.data.normal_()
    x, w = torch.randn(2, layer.conv.in_channels, 8, 8), torch.randn(2, TINY.w_dim)
    nz = torch.randn(2, 1, 8, 8)
    ref = F.leaky_relu(layer.conv(x, w) + nz * 0.3 + layer.bias[None, :, None, None], 0.2) * LRELU_GAIN
    torch.testing.assert_close(layer(x, w, "random", nz), ref)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x, w, "random", nz), ref.detach())


def test_blur_upsampler_matches_zero_insertion_then_filter() -> None:
    x = torch.randn(2, 3, 5, 5)
    f = binomial_filter()
    z = torch.zeros(2, 3, 10, 10)
    z[:, :, ::2, ::2] = x
    ref = F.conv2d(F.pad(z, [2, 1, 2, 1]), (f * 4)[None, None].repeat(3, 1, 1, 1), groups=3)
    torch.testing.assert_close(upsample_2x(x, f), ref)
    # a constant image stays constant away from the border (the gain restores the mean)
    assert torch.allclose(upsample_2x(torch.ones(1, 1, 6, 6), f)[..., 2:-2, 2:-2], torch.ones(1, 1, 8, 8))


@pytest.mark.parametrize("upsampler", ["transposed_blur", "bilinear"])
def test_upsampler_knob_changes_the_trace_not_the_parameters(upsampler: str) -> None:
    torch.manual_seed(0)
    g = StyleGAN2Generator(dataclasses.replace(TINY, upsampler=upsampler))
    assert _count(g) == _count(StyleGAN2Generator(TINY))
    assert g.sample(2, seed=0).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="upsampler"):
        dataclasses.replace(TINY, upsampler="nearest")


def test_truncation_noise_modes_and_w_avg() -> None:
    torch.manual_seed(0)
    g = StyleGAN2Generator(TINY).eval()
    z = torch.randn(4, TINY.z_dim)
    with torch.no_grad():
        g.mapping(z, update_w_avg=True)
        assert g.mapping.w_avg.abs().sum() > 0  # tracked during training
        ws = g.mapping(z, psi=0.0)
        assert torch.allclose(ws, g.mapping.w_avg.expand_as(ws))  # psi=0: everything at the average
        ws_cut = g.mapping(z, psi=0.0, cutoff=2)
        assert torch.allclose(ws_cut[:, :2], g.mapping.w_avg.expand(4, 2, -1))
        assert not torch.allclose(ws_cut[:, 2:], g.mapping.w_avg.expand(4, TINY.num_ws - 2, -1))
        for blk in g.synthesis.blocks:
            for m in blk.modules():
                if hasattr(m, "strength"):
                    m.strength.fill_(0.5)
        ws = g.mapping(z)
        const1, const2 = g.synthesis(ws, "const"), g.synthesis(ws, "const")
        none1 = g.synthesis(ws, "none")
        rand1, rand2 = g.synthesis(ws, "random"), g.synthesis(ws, "random")
    assert torch.equal(const1, const2) and not torch.equal(const1, none1)
    assert not torch.equal(rand1, rand2)


def test_style_mixing_switches_latents_after_the_cutoff() -> None:
    torch.manual_seed(0)
    task = StyleGAN2Task(dataclasses.replace(TINY, style_mixing_prob=1.0))

    class Ctx:
        device = torch.device("cpu")

    ws = task._mixed_ws(task.G, 3, Ctx())  # type: ignore[arg-type]
    assert ws.shape == (3, TINY.num_ws, TINY.w_dim)
    first, last = ws[:, 0], ws[:, -1]
    assert not torch.allclose(first, last)  # two different latents in one ws stack


def test_discriminator_and_minibatch_std() -> None:
    torch.manual_seed(0)
    d = StyleGAN2Discriminator(TINY)
    assert d(torch.randn(8, 3, 16, 16)).shape == (8, 1)
    x = torch.randn(8, 4, 2, 2)
    y = MinibatchStd(group_size=4)(x)
    assert y.shape == (8, 5, 2, 2)
    same = MinibatchStd(group_size=4)(torch.ones(8, 4, 2, 2))
    assert torch.allclose(same[:, 4], torch.full((8, 2, 2), math.sqrt(1e-8)))


def test_small_preset_is_64px_and_cpu_sized() -> None:
    cfg = generators.resolve_config("stylegan2", "small")
    assert cfg.resolution == 64
    g = StyleGAN2Generator(cfg)
    assert 2e6 < _count(g) < 5e6  # the committed EMA generator stays well under 20 MB
