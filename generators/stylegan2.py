"""StyleGAN2 (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020), faithful at
small scale: what leaves StyleGAN2's fingerprint in its images is kept (mapping network with lr multiplier
0.01 and a tracked w_avg, constant input, modulated + demodulated 3x3 convs, per-pixel noise, skip toRGB
outputs summed through a [1,3,3,1] upsampler, residual discriminator with blurred downsampling and minibatch
std); width and depth shrink with the preset.

Not implemented (documented so nobody assumes them): path length regularization (the paper's config F uses
it with weight 2; it costs a double backward through G and mainly improves latent smoothness, not the
artifacts detectors see), the fp16 `conv_clamp` of the reference code, and mixed-precision layer splits.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from generators.base import ModelSpec
from generators.diffaugment import diff_augment, parse_policy
from generators.layers import (
    LRELU_GAIN,
    LRELU_SLOPE,
    EqualConv2d,
    EqualLinear,
    MinibatchStd,
    ModulatedConv2d,
    NoiseInjection,
    NoiseMode,
    Upsampler,
    bias_act,
    binomial_filter,
    upsample,
)

if TYPE_CHECKING:  # pragma: no cover
    from generators.train import StepContext


@dataclass(frozen=True)
class StyleGAN2Config:
    """Architecture and training hyperparameters. Channels at resolution r: min(channel_base // r, channel_max)."""

    resolution: int = 64
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_mult: float = 0.01
    w_avg_beta: float = 0.995
    channel_base: int = 32768
    channel_max: int = 512
    upsampler: str = "transposed_blur"  # "transposed_blur" (paper) | "bilinear" (bilinear + conv)
    fused_modconv: bool = False  # grouped per-sample weights instead of activation scaling; same function
    mbstd_group: int = 4
    mbstd_channels: int = 1
    # training
    batch_size: int = 32
    g_lr: float = 0.002
    d_lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 10.0
    r1_interval: int = 16  # lazy regularization: R1 every 16 D steps, scaled by 16
    style_mixing_prob: float = 0.9
    ema_kimg: float = 10.0  # G EMA half-life in thousands of images
    ema_rampup: float | None = None  # half-life <= rampup * images seen so far (None: no ramp-up)
    mirror: bool = True  # random x-flips of the reals
    diffaugment: str = ""  # DiffAugment policy for D's inputs, e.g. "color,translation,cutout" ('' = off)

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 4 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {r}")
        if self.upsampler not in ("transposed_blur", "bilinear"):
            raise ValueError(f"upsampler must be 'transposed_blur' or 'bilinear', got {self.upsampler!r}")
        parse_policy(self.diffaugment)

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws(self) -> int:
        """w vectors consumed by synthesis: 2 per resolution (toRGB shares the next block's first w)."""
        return 2 * int(math.log2(self.resolution)) - 2


PRESETS: dict[str, StyleGAN2Config] = {
    # Seconds on a CPU: unit tests only.
    "tiny": StyleGAN2Config(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32,
                            batch_size=4, r1_gamma=0.01, r1_interval=4, ema_kimg=0.01, ema_rampup=0.05),
    # Minutes on a 2-core CPU at 64 px. Channels 256@4-8, 128@16, 64@32, 32@64; 2 mapping layers and
    # the gamma/EMA heuristics of StyleGAN2-ADA's 'auto' config (gamma = 2e-4 * res^2 / batch,
    # EMA half-life = batch * 10/32 kimg with ramp-up 0.05) because that config targets small data and short runs;
    # DiffAugment because ~560 training crops of three people are memorised by D within minutes otherwise.
    "small": StyleGAN2Config(resolution=64, z_dim=256, w_dim=256, mapping_layers=2, channel_base=2048,
                             channel_max=256, batch_size=16, g_lr=0.0025, d_lr=0.0025, r1_gamma=0.05,
                             ema_kimg=5.0, ema_rampup=0.05, diffaugment="color,translation,cutout"),
    # Published config F at 1024 px (FFHQ): 512-d z/w, 8 mapping layers, 512 channels up to 64x64 then
    # halving (channel_base 32768 => 256@128, 128@256, 64@512, 32@1024), minibatch 32, lr 0.002, betas (0, 0.99),
    # R1 gamma 10 every 16 steps, mixing 0.9, EMA half-life 10k images.
    "paper": StyleGAN2Config(resolution=1024),
}


class MappingNetwork(nn.Module):
    """z -> w: normalise z, then an MLP with lr multiplier 0.01; tracks w_avg (the centre used by truncation)."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], lr_mult=cfg.mapping_lr_mult, activation="lrelu")
            for i in range(cfg.mapping_layers)
        )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None,
                update_w_avg: bool = False) -> torch.Tensor:  # [N,z_dim] -> [N,num_ws,w_dim]
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # 2nd-moment normalisation
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.cfg.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.cfg.num_ws, 1)
        if psi != 1.0:  # truncation trick: pull the first `cutoff` ws towards the average
            cut = self.cfg.num_ws if cutoff is None else cutoff
            ws[:, :cut] = self.w_avg.to(ws.dtype).lerp(ws[:, :cut], psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated conv -> noise -> bias -> lrelu (one 'style block' of the paper's Fig. 2d)."""

    def __init__(self, in_ch: int, out_ch: int, res: int, cfg: StyleGAN2Config, up: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, cfg.w_dim, demodulate=True, up=up,
                                    upsampler=cfg.upsampler, fused=cfg.fused_modconv)  # type: ignore[arg-type]
        self.noise = NoiseInjection(res)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode,
                noise: torch.Tensor | None = None) -> torch.Tensor:  # [N,Cin,H,W] -> [N,Cout,H',W']
        y, dcoef = self.conv.forward_parts(x, w)
        # lrelu(z) * g == lrelu(z * g) for g > 0, so demodulation, noise, bias and the sqrt(2) gain fold into
        # one scaling, two adds and an in-place activation: out = lrelu(y*d*g + b*g + noise*s*g). In-place ops on
        # the fresh product are autograd-safe (the product's backward needs y and d, not its output); under
        # inference y itself is scaled in place. (addcmul and broadcasting addcmul_ are several times slower on CPU.)
        g = LRELU_GAIN
        scale = (dcoef * g).to(y.dtype)[:, :, None, None] if dcoef is not None else torch.full((), g, dtype=y.dtype)
        out = y.mul_(scale) if not torch.is_grad_enabled() else y * scale
        out = out.add_((self.bias * g).to(y.dtype)[None, :, None, None])
        nz = self.noise.noise_image(y, noise_mode, noise)
        if nz is not None:
            out = out.add_(nz * (self.noise.strength * g).to(y.dtype))  # small [N,1,H,W] product, then broadcast
        return F.leaky_relu_(out, LRELU_SLOPE)


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation: the block's contribution to the skip-summed image."""

    def __init__(self, in_ch: int, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 3, 1, cfg.w_dim, demodulate=False, fused=cfg.fused_modconv)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # [N,C,H,W] -> [N,3,H,W]
        if self.conv.fused or not x.is_contiguous(memory_format=torch.channels_last):
            return bias_act(self.conv(x, w), self.bias, "linear")
        # A 1x1 conv to 3 channels is a per-sample [H*W,C] @ [C,3] product: folding the style into the tiny
        # per-sample weight saves scaling the whole feature map first (~5% of a 64 px CPU sampling pass).
        n, c, h, wd = x.shape
        styles = self.conv.affine(w)  # [N,C]
        weight, _ = self.conv._scaled_weight()  # [3,C,1,1]
        per_sample = styles[:, :, None] * weight[:, :, 0, 0].t().to(styles.dtype)  # [N,C,3]
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * wd, c)  # NHWC memory: a view, no copy
        y = torch.baddbmm(self.bias.to(x.dtype), pixels, per_sample.to(x.dtype))  # [N,H*W,3]
        return y.reshape(n, h, wd, 3).permute(0, 3, 1, 2)


class SynthesisBlock(nn.Module):
    """One resolution: (upsampling conv), conv, toRGB. The 4x4 block starts from the learned constant."""

    def __init__(self, res: int, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.res = res
        out_ch = cfg.channels(res)
        self.upsampler: Upsampler = cfg.upsampler  # type: ignore[assignment]
        if res == 4:
            self.const = nn.Parameter(torch.randn(out_ch, 4, 4))
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(cfg.channels(res // 2), out_ch, res, cfg, up=True)
        self.conv1 = SynthesisLayer(out_ch, out_ch, res, cfg, up=False)
        self.torgb = ToRGB(out_ch, cfg)
        self.register_buffer("resample_filter", binomial_filter(), persistent=False)

    @property
    def num_noises(self) -> int:
        return 1 if self.conv0 is None else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: NoiseMode,
                noises: list[torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
        # ws: [N,3,w_dim] (conv0, conv1, toRGB) or [N,2,w_dim] at 4x4 (conv1, toRGB)
        nz = noises or [None, None]  # type: ignore[list-item]
        if self.conv0 is None:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1).to(ws.dtype)  # [N,C,4,4]
            # channels_last from the start: oneDNN's convs run ~2x faster on NHWC than NCHW on CPU.
            x = x.contiguous(memory_format=torch.channels_last)
            x = self.conv1(x, ws[:, 0], noise_mode, nz[0])
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, nz[0])  # [N,C,2H,2W]
            x = self.conv1(x, ws[:, 1], noise_mode, nz[1])
        y = self.torgb(x, ws[:, -1])
        img = y if img is None else upsample(img, self.resample_filter, self.upsampler) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws -> image: blocks 4x4 ... RxR with skip-summed RGB outputs (no progressive growing)."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.resolutions = [2**i for i in range(2, int(math.log2(cfg.resolution)) + 1)]
        self.blocks = nn.ModuleList(SynthesisBlock(r, cfg) for r in self.resolutions)

    def noise_shapes(self) -> list[int]:
        """Resolution of every noise input, in the order synthesis consumes them."""
        return [b.res for b in self.blocks for _ in range(b.num_noises)]  # type: ignore[union-attr]

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode = "random",
                noises: list[torch.Tensor] | None = None) -> torch.Tensor:  # [N,num_ws,w_dim] -> [N,3,R,R]
        x = img = None
        w_idx = n_idx = 0
        for block in self.blocks:
            k = block.num_noises  # type: ignore[union-attr]
            block_ws = ws[:, w_idx:w_idx + k + 1]
            block_noises = None if noises is None else noises[n_idx:n_idx + k]
            x, img = block(x, img, block_ws, noise_mode, block_noises)
            w_idx += k
            n_idx += k
        assert img is not None and img.shape[-1] == self.cfg.resolution
        return img


class StyleGAN2Generator(nn.Module):
    """The sampling network: mapping + synthesis, with seeded `sample` / `sample_seeds` for the zoo protocol."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.config = cfg
        self.resolution = cfg.resolution
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)

    def forward(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None,
                noise_mode: NoiseMode = "random", noises: list[torch.Tensor] | None = None) -> torch.Tensor:
        ws = self.mapping(z, psi=psi, cutoff=cutoff)
        return self.synthesis(ws, noise_mode, noises)  # [N,3,R,R], unclamped

    def _draw(self, gen: torch.Generator, n: int, noise_mode: NoiseMode) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """z and (random-mode) noise from a CPU generator, so results do not depend on the device."""
        z = torch.randn(n, self.config.z_dim, generator=gen)
        noises = None
        if noise_mode == "random":
            noises = [torch.randn(n, 1, r, r, generator=gen) for r in self.synthesis.noise_shapes()]
        return z, noises

    @torch.inference_mode()
    def sample_seeds(self, seeds: list[int], psi: float = 1.0, cutoff: int | None = None,
                     noise_mode: NoiseMode = "random") -> torch.Tensor:
        """One image per seed; image i depends only on seeds[i] (so shards and resumes reproduce it). [N,3,R,R]"""
        draws = [self._draw(torch.Generator().manual_seed(int(s)), 1, noise_mode) for s in seeds]
        z = torch.cat([d[0] for d in draws])
        noises = None
        if noise_mode == "random":
            noises = [torch.cat([d[1][i] for d in draws]) for i in range(len(draws[0][1]))]  # type: ignore[index]
        return self._run(z, psi, cutoff, noise_mode, noises)

    @torch.inference_mode()
    def sample(self, n: int, seed: int, psi: float = 1.0, cutoff: int | None = None,
               noise_mode: NoiseMode = "random") -> torch.Tensor:
        """n images from one seed (z and noise from a single seeded stream). [n,3,R,R] in [-1, 1]"""
        z, noises = self._draw(torch.Generator().manual_seed(int(seed)), n, noise_mode)
        return self._run(z, psi, cutoff, noise_mode, noises)

    def _run(self, z: torch.Tensor, psi: float, cutoff: int | None, noise_mode: NoiseMode,
             noises: list[torch.Tensor] | None) -> torch.Tensor:
        device = next(self.parameters()).device
        noises = None if noises is None else [nz.to(device) for nz in noises]
        img = self(z.to(device), psi=psi, cutoff=cutoff, noise_mode=noise_mode, noises=noises)
        return img.float().clamp(-1.0, 1.0)


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (the second blurs and strides) plus a blurred 1x1 skip, each at gain sqrt(.5)."""

    def __init__(self, in_ch: int, out_ch: int, from_rgb: bool) -> None:
        super().__init__()
        self.fromrgb = EqualConv2d(3, in_ch, 1, activation="lrelu") if from_rgb else None
        self.conv0 = EqualConv2d(in_ch, in_ch, 3, activation="lrelu")
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, activation="lrelu", down=2)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,Cin,H,W] (or RGB) -> [N,Cout,H/2,W/2]
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class StyleGAN2Discriminator(nn.Module):
    """Residual D: fromRGB at full resolution, blocks down to 4x4, then minibatch std, conv, fc, fc -> logit."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.config = cfg
        res_list = [2**i for i in range(int(math.log2(cfg.resolution)), 2, -1)]  # R, R/2, ..., 8
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(cfg.channels(r), cfg.channels(r // 2), from_rgb=(r == cfg.resolution))
            for r in res_list
        )
        c4 = cfg.channels(4)
        self.mbstd = MinibatchStd(cfg.mbstd_group, cfg.mbstd_channels)
        self.conv = EqualConv2d(c4 + cfg.mbstd_channels, c4, 3, activation="lrelu")
        self.fc = EqualLinear(c4 * 16, c4, activation="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # [N,3,R,R] -> [N,1] logits
        x = img
        if not self.blocks:  # a 4x4 model has no blocks: map RGB straight in
            raise ValueError("discriminator needs resolution >= 8")
        for block in self.blocks:
            x = block(x)
        x = self.conv(self.mbstd(x))  # [N,C4,4,4]
        x = self.fc(x.flatten(1))
        return self.out(x)


def build_generator(cfg: StyleGAN2Config) -> StyleGAN2Generator:
    return StyleGAN2Generator(cfg)


class StyleGAN2Task:
    """StyleGAN2's training step for the shared loop: non-saturating logistic loss, style mixing, lazy R1.

    The loop (generators.train) owns data order, devices, AMP, gradient all-reduce, EMA and checkpoints."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        self.config = cfg
        self.G = StyleGAN2Generator(cfg)
        self.D = StyleGAN2Discriminator(cfg)

    # -- loop interface -------------------------------------------------------------------------------------
    batch_key = "image"

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def ema_spec(self) -> tuple[str, float, float | None]:
        """(network to average, half-life in images, ramp-up fraction)."""
        return "G", self.config.ema_kimg * 1000.0, self.config.ema_rampup

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        # Lazy R1 runs every k steps at k times the weight, so D's Adam is rescaled by c = k / (k + 1)
        # (paper appendix B): lr * c and betas ** c keep the effective step the same.
        c = cfg.r1_interval / (cfg.r1_interval + 1)
        return {
            "G": torch.optim.Adam(self.G.parameters(), lr=cfg.g_lr, betas=cfg.betas, eps=1e-8),
            "D": torch.optim.Adam(self.D.parameters(), lr=cfg.d_lr * c,
                                  betas=(cfg.betas[0] ** c, cfg.betas[1] ** c), eps=1e-8),
        }

    def sampling_network(self) -> nn.Module:
        return self.G

    def load_data(self, manifest: str | os.PathLike) -> dict[str, torch.Tensor]:
        """The real train split at the model's resolution: {"image": uint8 [N,3,R,R]}."""
        from generators.data import load_image_tensor

        return {self.batch_key: load_image_tensor(manifest, self.config.resolution)}

    def train_step(self, batch: dict[str, torch.Tensor], ctx: "StepContext") -> dict[str, float]:
        cfg = self.config
        G, D = ctx.nets["G"], ctx.nets["D"]
        real = batch[self.batch_key].to(ctx.device, torch.float32) / 127.5 - 1.0  # uint8 [N,3,R,R] -> [-1,1]
        if cfg.mirror:
            flip = torch.rand(real.shape[0], 1, 1, 1, device=ctx.device) < 0.5
            real = torch.where(flip, real.flip(3), real)
        real = ctx.to_memory_format(real)
        n = real.shape[0]

        # G: non-saturating logistic loss softplus(-D(G(z))).
        with ctx.frozen(D), ctx.autocast():
            fake = G.synthesis(self._mixed_ws(G, n, ctx, update_w_avg=True))
            loss_g = F.softplus(-D(self._augment(fake))).mean()
        ctx.optimize("G", loss_g)

        # D: softplus(D(fake)) + softplus(-D(real)).
        with ctx.frozen(G), ctx.autocast():
            with torch.no_grad():
                fake = G.synthesis(self._mixed_ws(G, n, ctx))
            logits_fake, logits_real = D(self._augment(fake.detach())), D(self._augment(real))
            loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        ctx.optimize("D", loss_d)
        out = {"loss_G": float(loss_g.detach()), "loss_D": float(loss_d.detach()),
               "D_real": float(logits_real.detach().mean()), "D_fake": float(logits_fake.detach().mean())}

        # Lazy R1 on reals (fp32): gamma/2 * |grad D(x)|^2, applied every r1_interval steps with weight * interval.
        if cfg.r1_gamma > 0 and ctx.step % cfg.r1_interval == 0:
            with ctx.frozen(G):
                real_r1 = real.detach().requires_grad_(True)
                logits = D(self._augment(real_r1))  # R1 through the augmentation, as in DiffAugment
                (grad,) = torch.autograd.grad(logits.sum(), real_r1, create_graph=True)
                r1 = grad.square().sum(dim=[1, 2, 3]).mean()
                ctx.optimize("D", r1 * (cfg.r1_gamma / 2) * cfg.r1_interval)
            out["r1"] = float(r1.detach())
        return out

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """What D sees: the images themselves, or their DiffAugment when the config names a policy."""
        return diff_augment(images, self.config.diffaugment) if self.config.diffaugment else images

    def _mixed_ws(self, G: nn.Module, n: int, ctx: "StepContext", update_w_avg: bool = False) -> torch.Tensor:
        """ws for a batch, with style mixing: after a random layer, switch to a second latent's w."""
        cfg = self.config
        z = torch.randn(n, cfg.z_dim, device=ctx.device)
        ws = G.mapping(z, update_w_avg=update_w_avg)  # [N,num_ws,w_dim]
        if cfg.style_mixing_prob > 0 and float(torch.rand(())) < cfg.style_mixing_prob:
            cutoff = int(torch.randint(1, cfg.num_ws, ()))
            ws2 = G.mapping(torch.randn(n, cfg.z_dim, device=ctx.device))
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws


def build_task(cfg: StyleGAN2Config) -> StyleGAN2Task:
    return StyleGAN2Task(cfg)


SPEC = ModelSpec(
    name="stylegan2",
    kind="unconditional",
    config_cls=StyleGAN2Config,
    presets=PRESETS,
    build_generator=build_generator,
    build_task=build_task,
    summary="StyleGAN2 (Karras et al. 2020): mapping net, modulated/demodulated convs, noise, skip toRGB, residual D.",
)
