"""StarGAN v2 (Choi et al., "StarGAN v2: Diverse Image Synthesis for Multiple Domains", CVPR 2020): one generator
for every domain, steered by a style code from a mapping network (latent-guided) or a style encoder
(reference-guided). Domains are values of a manifest column (the starter corpus's identities by default).

Kept from the paper and its reference code (clovaai/stargan-v2): pre-activation residual blocks scaled by
1/sqrt(2); the generator's encoder of InstanceNorm (affine) blocks with average-pool downsampling and decoder of
AdaIN blocks (gamma as 1 + fc(s)) with nearest-neighbour upsampling; channels 2^14 / resolution doubling to
`max_conv_dim`; a mapping network of 4 shared + 4 per-domain layers; a style encoder and a discriminator sharing
one trunk shape with one output per domain; non-saturating adversarial loss, R1 (gamma 1) on reals, style
reconstruction, diversity sensitive loss (decayed linearly to 0), cycle loss; two D and two G updates per
iteration (latent- then reference-guided), mapping lr 1e-6, Adam (0, 0.99) with weight decay 1e-4, He init, and an
EMA (0.999) of generator, mapping network and style encoder, which are the exported sampling network.

`w_hpf = 0` only: the CelebA-HQ model's high-pass skip needs masks from a pretrained face-landmark network,
which cannot be downloaded offline; with w_hpf = 0 the generator is the reference code's AFHQ variant (one
fewer down/up-sampling pair, residual output scaled by 1/sqrt(2)). Not kept: the random resized crop (p 0.5)
augmentation (aligned crops; flips are kept).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from generators.base import ModelSpec
from generators.translation import check_images, target_indices, to_float

if TYPE_CHECKING:  # pragma: no cover
    from generators.train import StepContext


@dataclass(frozen=True)
class StarGANv2Config:
    """Architecture and training hyperparameters (paper defaults; presets below shrink them)."""

    resolution: int = 256
    dim_in: int = 0  # channels at full resolution; 0 = 2**14 // resolution as in the reference code
    max_conv_dim: int = 512
    style_dim: int = 64
    latent_dim: int = 16
    mapping_dim: int = 512  # hidden width of the mapping network
    num_domains: int = 2
    w_hpf: float = 0.0  # must be 0 (no landmark network offline)
    # domains: values of `domain_column`; () = the num_domains values with most real train images
    domain_column: str = "identity"
    domains: tuple[str, ...] = ()
    min_domain_images: int = 50
    # training
    batch_size: int = 8
    lr: float = 1e-4  # generator, style encoder, discriminator
    f_lr: float = 1e-6  # mapping network
    betas: tuple[float, float] = (0.0, 0.99)
    weight_decay: float = 1e-4
    lambda_reg: float = 1.0  # R1 weight (the reference code takes 0.5 * |grad|^2, times this)
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0  # initial diversity weight ...
    ds_iter: int = 100_000  # ... decayed linearly to 0 over this many steps
    lambda_cyc: float = 1.0
    ema_beta: float = 0.999  # per step, converted to a half-life in images for the shared loop
    ema_rampup: float | None = None
    mirror: bool = True

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 16 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two >= 16, got {r}")
        if self.w_hpf != 0:
            raise ValueError("w_hpf must be 0: the high-pass skip needs a pretrained landmark network (not offline)")
        if self.num_domains < 2:
            raise ValueError(f"num_domains must be >= 2, got {self.num_domains}")
        if self.domains and len(self.domains) != self.num_domains:
            raise ValueError(f"{len(self.domains)} domains named for num_domains={self.num_domains}")

    @property
    def base_dim(self) -> int:
        return self.dim_in or 2**14 // self.resolution

    @property
    def ema_half_life_images(self) -> float:
        """beta per step of `batch_size` images -> images after which the old weights count half."""
        return self.batch_size * math.log(0.5) / math.log(self.ema_beta)


PRESETS: dict[str, StarGANv2Config] = {
    # Seconds on a CPU: unit tests only.
    "tiny": StarGANv2Config(resolution=32, dim_in=8, max_conv_dim=16, style_dim=8, latent_dim=4, mapping_dim=16,
                            batch_size=2, min_domain_images=2, ds_iter=10, ema_beta=0.9),
    # ~15 minutes on a shared 2-core CPU at 64 px for the starter corpus's 3 identities (~400 steps). The
    # reference width rule would give 256 channels at 64 px; here 16 doubling to 128 (G bottleneck 64 x 16x16),
    # mapping 256 wide, batch 4 and lr 2e-4 (f_lr 2e-6, same 1:100 ratio) because a CPU run is ~250x shorter
    # than the paper's 100k iterations. Diversity decay and EMA scaled to that length (ds over 400 steps;
    # EMA 0.99 per step with ramp-up).
    "small": StarGANv2Config(resolution=64, dim_in=16, max_conv_dim=128, style_dim=64, latent_dim=16,
                             mapping_dim=256, num_domains=3, batch_size=4, lr=2e-4, f_lr=2e-6, ds_iter=400,
                             ema_beta=0.99, ema_rampup=0.05),
    # The published 256-px model (w_hpf = 0, i.e. the AFHQ generator), 2 domains, batch 8, 100k iterations.
    "paper": StarGANv2Config(),
}

SQRT2 = math.sqrt(2.0)


class ResBlk(nn.Module):
    """Pre-activation residual block: [IN], lrelu, conv, [avgpool], [IN], lrelu, conv; 1x1 learned shortcut."""

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False) -> None:
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1x1 is not None:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(F.leaky_relu(x, 0.2))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,Cin,H,W] -> [N,Cout,H(/2),W(/2)]
        return (self._shortcut(x) + self._residual(x)) / SQRT2


class AdaIN(nn.Module):
    """Instance-normalise, then scale by (1 + gamma(s)) and shift by beta(s)."""

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # [N,C,H,W], [N,S]
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)  # [N,C,1,1] each
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """AdaIN, lrelu, [nearest up], conv, AdaIN, lrelu, conv; shortcut: [nearest up], [1x1 conv]; sum / sqrt(2)."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if self.conv1x1 is not None else x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv1(x)
        return self.conv2(F.leaky_relu(self.norm2(x, s), 0.2))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # w_hpf = 0: residual + shortcut
        return (self._residual(x, s) + self._shortcut(x)) / SQRT2


class Generator(nn.Module):
    """from_rgb, encoder (log2(R) - 4 downsampling IN blocks + 2 at the bottleneck), decoder (mirror with AdaIN),
    to_rgb (IN, lrelu, 1x1 conv). The image is never squeezed below R/2^(log2 R - 4) = 16 px."""

    def __init__(self, cfg: StarGANv2Config) -> None:
        super().__init__()
        dim_in = cfg.base_dim
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2),
                                    nn.Conv2d(dim_in, 3, 1, 1, 0))
        dim_out = dim_in
        for _ in range(int(math.log2(cfg.resolution)) - 4):
            dim_out = min(dim_in * 2, cfg.max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, cfg.style_dim, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_out, cfg.style_dim))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # [N,3,R,R], [N,S] -> [N,3,R,R]
        x = self.from_rgb(x)
        for block in self.encode:
            x = block(x)
        for block in self.decode:
            x = block(x, s)
        return self.to_rgb(x)


class MappingNetwork(nn.Module):
    """z -> style of domain y: 4 shared ReLU layers, then per domain 3 ReLU layers and a linear output."""

    def __init__(self, cfg: StarGANv2Config) -> None:
        super().__init__()
        h = cfg.mapping_dim
        shared: list[nn.Module] = [nn.Linear(cfg.latent_dim, h), nn.ReLU()]
        for _ in range(3):
            shared += [nn.Linear(h, h), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        self.unshared = nn.ModuleList(
            nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                          nn.Linear(h, cfg.style_dim))
            for _ in range(cfg.num_domains))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # [N,L], int64 [N] -> [N,S]
        h = self.shared(z)
        out = torch.stack([head(h) for head in self.unshared], dim=1)  # [N,K,S]
        return out[torch.arange(y.shape[0], device=y.device), y]


def _trunk(cfg: StarGANv2Config) -> tuple[nn.Sequential, int]:
    """The style encoder's and discriminator's shared shape: conv, log2(R) - 2 downsampling blocks to 4x4,
    lrelu, 4x4 valid conv to 1x1, lrelu. Returns (trunk, output channels)."""
    dim_in = cfg.base_dim
    blocks: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(int(math.log2(cfg.resolution)) - 2):
        dim_out = min(dim_in * 2, cfg.max_conv_dim)
        blocks.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
    return nn.Sequential(*blocks), dim_out


class StyleEncoder(nn.Module):
    """Image -> style code of domain y (one linear head per domain)."""

    def __init__(self, cfg: StarGANv2Config) -> None:
        super().__init__()
        self.shared, dim = _trunk(cfg)
        self.unshared = nn.ModuleList(nn.Linear(dim, cfg.style_dim) for _ in range(cfg.num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # [N,3,R,R], [N] -> [N,S]
        h = self.shared(x).flatten(1)
        out = torch.stack([head(h) for head in self.unshared], dim=1)  # [N,K,S]
        return out[torch.arange(y.shape[0], device=y.device), y]


class Discriminator(nn.Module):
    """Multi-task D: one real/fake logit per domain; the logit of domain y is used."""

    def __init__(self, cfg: StarGANv2Config) -> None:
        super().__init__()
        trunk, dim = _trunk(cfg)
        self.main = nn.Sequential(*trunk, nn.Conv2d(dim, cfg.num_domains, 1, 1, 0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # [N,3,R,R], [N] -> [N]
        out = self.main(x).flatten(1)  # [N,K]
        return out[torch.arange(y.shape[0], device=y.device), y]


def he_init(module: nn.Module) -> None:
    """The reference code's init: Kaiming normal (fan_in, ReLU gain) weights, zero biases, for convs and linears."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class StarGANv2Generator(nn.Module):
    """The sampling network (its EMA when trained): generator + mapping network + style encoder."""

    style_modes = ("latent", "reference")

    def __init__(self, cfg: StarGANv2Config) -> None:
        super().__init__()
        self.config = cfg
        self.resolution = cfg.resolution
        self.generator = Generator(cfg)
        self.mapping = MappingNetwork(cfg)
        self.style_encoder = StyleEncoder(cfg)

    @property
    def domains(self) -> tuple[str, ...]:
        return self.config.domains

    def latents(self, seed: int | Sequence[int], n: int) -> torch.Tensor:
        """z from CPU generators (device independent): one seed -> one stream of n; a list -> one z per seed. [n,L]"""
        if isinstance(seed, int):
            return torch.randn(n, self.config.latent_dim, generator=torch.Generator().manual_seed(int(seed)))
        seeds = list(seed)
        if len(seeds) != n:
            raise ValueError(f"got {len(seeds)} seeds for {n} images")
        return torch.cat([torch.randn(1, self.config.latent_dim, generator=torch.Generator().manual_seed(int(s)))
                          for s in seeds])

    @torch.inference_mode()
    def style(self, n: int, target: Any, seed: int | Sequence[int] | None = None,
              ref: torch.Tensor | None = None) -> torch.Tensor:
        """Style codes of the target domains: mapping(z(seed)) (latent-guided) or E(ref) (reference-guided). [n,S]"""
        if (seed is None) == (ref is None):
            raise ValueError("pass exactly one of seed= (latent-guided) or ref= (reference-guided)")
        y = target_indices(target, n, self.config.domains, self.config.num_domains)
        device = next(self.parameters()).device
        if ref is not None:
            check_images(ref, self.resolution)
            ref = to_float(ref).to(device)
            if ref.shape[0] == 1 and n > 1:
                ref = ref.expand(n, -1, -1, -1)
            if ref.shape[0] != n:
                raise ValueError(f"got {ref.shape[0]} reference images for {n} images")
            return self.style_encoder(ref, y.to(device))
        return self.mapping(self.latents(seed, n).to(device), y.to(device))  # type: ignore[arg-type]

    @torch.inference_mode()
    def translate(self, images: torch.Tensor, target: Any = None, seed: int | Sequence[int] | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """Images into `target` (name or index, one or per image) with a latent seed (int: one stream for the batch;
        list: one seed per image, so image i depends only on its own seed) or reference images. [N,3,R,R]"""
        check_images(images, self.resolution)
        s = self.style(images.shape[0], target, seed, ref)
        device = s.device
        return self.generator(to_float(images).to(device), s).float().clamp(-1.0, 1.0)

    @torch.inference_mode()
    def reconstruct(self, images: torch.Tensor, target: Any, source: Any,
                    seed: int | Sequence[int] | None = None, ref: torch.Tensor | None = None) -> torch.Tensor:
        """The cycle of the paper: G(G(x, s_target), E_source(x)). [N,3,R,R]"""
        fake = self.translate(images, target, seed=seed, ref=ref)
        return self.translate(fake, source, ref=images)


def build_generator(cfg: StarGANv2Config) -> StarGANv2Generator:
    return StarGANv2Generator(cfg)


def r1_penalty(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """0.5 * mean over the batch of |d logits / d x|^2 (the reference code's r1_reg)."""
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return 0.5 * grad.square().flatten(1).sum(1).mean()


def adv_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


class StarGANv2Task:
    """StarGAN v2's iteration for the shared loop: D (latent), D (reference), G+F+E (latent), G (reference).

    The loop's one EMA runs over the whole sampling network (G, mapping, style encoder), as the reference code
    keeps one EMA per network with the same beta."""

    def __init__(self, cfg: StarGANv2Config) -> None:
        self.config = cfg
        self.G = StarGANv2Generator(cfg)
        self.D = Discriminator(cfg)
        he_init(self.G)
        he_init(self.D)
        self.refs: list[torch.Tensor] = []  # per domain: uint8 [N_d,3,R,R], set by load_data

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam per side; the G side has the reference code's three optimizers as parameter groups (Adam is
        per-parameter, and parameters without a gradient, e.g. the frozen mapping net in the reference step,
        are skipped exactly as an optimizer that is not stepped)."""
        cfg = self.config
        g_groups = [{"params": self.G.generator.parameters(), "lr": cfg.lr},
                    {"params": self.G.mapping.parameters(), "lr": cfg.f_lr},
                    {"params": self.G.style_encoder.parameters(), "lr": cfg.lr}]
        return {"G": torch.optim.Adam(g_groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay),
                "D": torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=cfg.betas,
                                      weight_decay=cfg.weight_decay)}

    def ema_spec(self) -> tuple[str, float, float | None]:
        return "G", self.config.ema_half_life_images, self.config.ema_rampup

    def sampling_network(self) -> nn.Module:
        return self.G

    def set_config(self, cfg: StarGANv2Config) -> None:
        """Adopt a config with resolved domain names (architecture unchanged) so checkpoints record them."""
        self.config = cfg
        self.G.config = cfg

    def load_data(self, manifest: str | os.PathLike) -> dict[str, torch.Tensor]:
        """Sources {"image": uint8 [M,3,R,R], "domain": int64 [M]}, each domain repeated to the largest one's
        count (class-balanced, as the reference sampler); references are drawn per step from `self.refs`."""
        from generators.translation import balanced_indices, load_domain_images, resolve_config_domains

        cfg = resolve_config_domains(self.config, manifest, self.config.num_domains)
        self.set_config(cfg)
        data = load_domain_images(manifest, cfg.resolution, cfg.domain_column, cfg.domains)
        self.refs = [data.of(d) for d in range(cfg.num_domains)]
        idx = balanced_indices(data.domain, seed=0)
        return {"image": data.images[idx], "domain": data.domain[idx]}

    def _prep(self, x: torch.Tensor, ctx: "StepContext") -> torch.Tensor:
        x = x.to(ctx.device, torch.float32) / 127.5 - 1.0  # uint8 [N,3,R,R] -> [-1,1]
        if self.config.mirror:
            flip = torch.rand(x.shape[0], 1, 1, 1, device=ctx.device) < 0.5
            x = torch.where(flip, x.flip(3), x)
        return ctx.to_memory_format(x)

    def _references(self, y_trg: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Two random real images of each target domain (CPU RNG, reseeded per step by the loop). uint8 [N,3,R,R] x2"""
        if not self.refs:  # data given directly (tests): draw references from the batch's own domains
            pool = [batch["image"][batch["domain"].cpu() == d].cpu() for d in range(self.config.num_domains)]
            self.refs = [p if len(p) else batch["image"].cpu() for p in pool]
        picks = []
        for _ in range(2):
            picks.append(torch.stack([self.refs[int(d)][int(torch.randint(0, len(self.refs[int(d)]), ()))]
                                      for d in y_trg]))
        return picks[0], picks[1]

    def train_step(self, batch: dict[str, torch.Tensor], ctx: "StepContext") -> dict[str, float]:
        cfg = self.config
        G, D = ctx.nets["G"], ctx.nets["D"]
        n = batch["image"].shape[0]
        x_real = self._prep(batch["image"], ctx)  # [N,3,R,R]
        y_org = batch["domain"].to(ctx.device)  # [N]
        y_trg = torch.randint(0, cfg.num_domains, (n,))
        ref1, ref2 = self._references(y_trg, batch)
        x_ref, x_ref2 = self._prep(ref1, ctx), self._prep(ref2, ctx)
        y_trg = y_trg.to(ctx.device)
        z_trg = torch.randn(n, cfg.latent_dim, device=ctx.device)
        z_trg2 = torch.randn(n, cfg.latent_dim, device=ctx.device)
        lambda_ds = cfg.lambda_ds * max(0.0, 1.0 - ctx.step / cfg.ds_iter) if cfg.ds_iter > 0 else 0.0
        out: dict[str, float] = {}

        # D: latent-guided fakes, then reference-guided fakes; R1 on reals each time.
        for mode in ("latent", "ref"):
            with ctx.frozen(G), ctx.autocast():
                x_in = x_real.detach().requires_grad_(True)
                logits_real = D(x_in, y_org)
                loss_real = adv_loss(logits_real, True)
                with torch.autocast(device_type=ctx.device.type, enabled=False):
                    reg = r1_penalty(logits_real.float(), x_in)
                with torch.no_grad():
                    s_trg = G.mapping(z_trg, y_trg) if mode == "latent" else G.style_encoder(x_ref, y_trg)
                    x_fake = G.generator(x_real, s_trg)
                loss_fake = adv_loss(D(x_fake, y_trg), False)
                loss_d = loss_real + loss_fake + cfg.lambda_reg * reg
            ctx.optimize("D", loss_d)
            out[f"D_{mode}"] = float(loss_d.detach())
            out[f"r1_{mode}"] = float(reg.detach())

        # G: latent-guided step updates generator, mapping and style encoder; reference-guided only the generator.
        for mode in ("latent", "ref"):
            frozen = (D,) if mode == "latent" else (D, G.mapping, G.style_encoder)
            with ctx.frozen(*frozen), ctx.autocast():
                if mode == "latent":
                    s_trg, s_trg2 = G.mapping(z_trg, y_trg), G.mapping(z_trg2, y_trg)
                else:
                    s_trg, s_trg2 = G.style_encoder(x_ref, y_trg), G.style_encoder(x_ref2, y_trg)
                x_fake = G.generator(x_real, s_trg)
                loss_adv = adv_loss(D(x_fake, y_trg), True)
                loss_sty = (G.style_encoder(x_fake, y_trg) - s_trg).abs().mean()  # style reconstruction
                x_fake2 = G.generator(x_real, s_trg2).detach()
                loss_ds = (x_fake - x_fake2).abs().mean()  # diversity sensitive: maximised
                s_org = G.style_encoder(x_real, y_org)
                loss_cyc = (G.generator(x_fake, s_org) - x_real).abs().mean()
                loss_g = loss_adv + cfg.lambda_sty * loss_sty - lambda_ds * loss_ds + cfg.lambda_cyc * loss_cyc
            ctx.optimize("G", loss_g)
            out.update({f"G_{mode}": float(loss_g.detach()), f"adv_{mode}": float(loss_adv.detach()),
                        f"sty_{mode}": float(loss_sty.detach()), f"ds_{mode}": float(loss_ds.detach()),
                        f"cyc_{mode}": float(loss_cyc.detach())})
        out["lambda_ds"] = lambda_ds
        return out


def build_task(cfg: StarGANv2Config) -> StarGANv2Task:
    return StarGANv2Task(cfg)


SPEC = ModelSpec(
    name="stargan_v2",
    kind="translation",
    config_cls=StarGANv2Config,
    presets=PRESETS,
    build_generator=build_generator,
    build_task=build_task,
    summary="StarGAN v2 (Choi et al. 2020): AdaIN generator, per-domain mapping/style heads, multi-domain D.",
)
