"""CycleGAN (Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
ICCV 2017) between two domains of a manifest column (two identities of the starter corpus by default).

Kept from the paper and its reference code (junyanz/pytorch-CycleGAN-and-pix2pix): the Johnson et al. ResNet
generator (7x7 reflection-padded stem, two stride-2 convs, residual blocks, two transposed convs, 7x7 conv, tanh)
with InstanceNorm (no affine) and conv biases, the 70x70 PatchGAN (three stride-2 4x4 convs, one stride-1, a 1-channel
map), LSGAN losses, cycle loss lambda 10 and identity loss 0.5 * lambda, a 50-image history pool per
discriminator, D loss halved, Adam 2e-4 (0.5, 0.999) constant then linearly decayed to 0, N(0, 0.02) init.
Not kept: the 286->256 random-crop jitter (the starter crops are already aligned; horizontal flips are kept).

Naming: `g_ab` maps domain A -> B (the reference code's G_A), `d_b` judges domain-B images (its D_A).
"""
from __future__ import annotations

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
class CycleGANConfig:
    """Architecture and training hyperparameters (paper defaults; presets below shrink them)."""

    resolution: int = 256
    ngf: int = 64  # generator width of the first/last layers (x4 in the residual trunk)
    ndf: int = 64  # discriminator width of the first layer
    n_blocks: int = 9  # residual blocks: 9 at 256 px, 6 at 128 px in the paper
    d_layers: int = 3  # stride-2 convs in the PatchGAN: 3 gives the 70x70 receptive field
    # domains: values of `domain_column`; () = the two with most real train images (>= min_domain_images each)
    domain_column: str = "identity"
    domains: tuple[str, ...] = ()
    min_domain_images: int = 50
    # training
    batch_size: int = 1
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5  # identity loss weight, as a fraction of lambda_cycle (0.5 -> 5)
    pool_size: int = 50
    epochs_constant: float = 100.0  # epochs at the initial lr (epoch = max(|A|, |B|) images) ...
    epochs_decay: float = 100.0  # ... then linear decay to 0 over this many epochs
    init_std: float = 0.02
    mirror: bool = True

    def __post_init__(self) -> None:
        if self.resolution % 4 or self.resolution < 8:
            raise ValueError(f"resolution must be a multiple of 4 and >= 8, got {self.resolution}")
        if self.domains and len(self.domains) != 2:
            raise ValueError(f"CycleGAN translates between exactly 2 domains, got {list(self.domains)}")
        if self.resolution >> self.d_layers < 4:
            raise ValueError(f"{self.d_layers} PatchGAN stride-2 layers leave no patch map at {self.resolution} px")

    @property
    def num_domains(self) -> int:
        return 2


PRESETS: dict[str, CycleGANConfig] = {
    # Seconds on a CPU: unit tests only.
    "tiny": CycleGANConfig(resolution=32, ngf=8, ndf=8, n_blocks=2, batch_size=2, pool_size=4, min_domain_images=2,
                           epochs_constant=1.0, epochs_decay=1.0),
    # ~15 minutes on a shared 2-core CPU at 64 px: G width 24 (trunk 96 channels), D width 32, 6 blocks (the
    # paper's 128-px depth), batch 4 instead of 1 (CPU throughput; InstanceNorm keeps per-image statistics so
    # the batch does not mix images), lr schedule compressed to the ~5 epochs (~460 steps) a CPU run affords.
    "small": CycleGANConfig(resolution=64, ngf=24, ndf=32, n_blocks=6, batch_size=4, epochs_constant=2.5,
                            epochs_decay=2.5),
    # The published 256-px setup (ResNet-9, 70x70 PatchGAN, batch 1, 100 + 100 epochs).
    "paper": CycleGANConfig(),
}


def _norm(ch: int) -> nn.Module:
    return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """x + [reflect-pad, 3x3 conv, IN, ReLU, reflect-pad, 3x3 conv, IN](x); no activation after the sum."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), _norm(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), _norm(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,C,H,W] -> [N,C,H,W]
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, R4ngf x n_blocks, u2ngf, ungf, c7s1-3 (the paper's appendix notation)."""

    def __init__(self, ngf: int, n_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), _norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):  # two stride-2 downsamples
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), _norm(ngf * mult * 2),
                       nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # two fractionally strided convs (the transposed-conv upsampling trace)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,3,H,W] -> [N,3,H,W] in (-1, 1)
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """C64-C128-C256-C512 then a 1-channel conv: one real/fake score per overlapping 70x70 patch (for 3 layers)."""

    def __init__(self, ndf: int, n_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1), _norm(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,3,H,W] -> [N,1,h,w] patch logits
        return self.model(x)


def init_normal(module: nn.Module, std: float) -> None:
    """The reference code's 'normal' init: conv weights N(0, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class CycleGANGenerator(nn.Module):
    """The sampling network: both generators, with `translate(images, target=...)` for the zoo protocol."""

    style_modes = ("none",)  # deterministic: one output per input

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__()
        self.config = cfg
        self.resolution = cfg.resolution
        self.g_ab = ResnetGenerator(cfg.ngf, cfg.n_blocks)
        self.g_ba = ResnetGenerator(cfg.ngf, cfg.n_blocks)

    @property
    def domains(self) -> tuple[str, ...]:
        return self.config.domains

    def forward(self, x: torch.Tensor, to_b: torch.Tensor) -> torch.Tensor:  # [N,3,R,R], bool [N] -> [N,3,R,R]
        out = torch.empty_like(x)
        if to_b.any():
            out[to_b] = self.g_ab(x[to_b])
        if (~to_b).any():
            out[~to_b] = self.g_ba(x[~to_b])
        return out

    @torch.inference_mode()
    def translate(self, images: torch.Tensor, target: Any = None, seed: int | Sequence[int] | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """Images into `target` (name or index, one or per image): B via g_ab, A via g_ba. [N,3,R,R] -> [N,3,R,R]

        CycleGAN is deterministic (one output per input), so `seed` is accepted and ignored; it has no
        reference-guided mode, so `ref` is an error."""
        if ref is not None:
            raise ValueError("CycleGAN has no reference-guided mode; pass ref=None")
        check_images(images, self.resolution)
        idx = target_indices(target, images.shape[0], self.config.domains, 2)
        device = next(self.parameters()).device
        out = self(to_float(images).to(device), (idx == 1).to(device))
        return out.float().clamp(-1.0, 1.0)

    @torch.inference_mode()
    def reconstruct(self, images: torch.Tensor, target: Any) -> torch.Tensor:
        """The cycle: source -> target -> back. [N,3,R,R] -> [N,3,R,R]"""
        idx = target_indices(target, images.shape[0], self.config.domains, 2)
        fake = self.translate(images, idx)
        return self.translate(fake, 1 - idx)


class CycleGANDiscriminators(nn.Module):
    """d_a judges domain-A images, d_b domain-B images."""

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__()
        self.d_a = PatchDiscriminator(cfg.ndf, cfg.d_layers)
        self.d_b = PatchDiscriminator(cfg.ndf, cfg.d_layers)


class ImagePool(nn.Module):
    """Shrivastava et al.'s history of generated images: D sees a mix of current and past fakes, which damps
    oscillation. Stored as buffers so the pool is checkpointed and a resumed run replays exactly."""

    def __init__(self, size: int, resolution: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, 3, resolution, resolution))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """Per image: fill the pool while not full; then with p 0.5 swap it for a random stored one. [N,...]"""
        if self.size == 0:
            return fakes.detach()
        out = []
        for img in fakes.detach():
            n = int(self.count)
            if n < self.size:
                self.images[n] = img
                self.count += 1
                out.append(img)
            elif float(torch.rand(())) > 0.5:
                j = int(torch.randint(0, self.size, ()))
                out.append(self.images[j].clone())
                self.images[j] = img
            else:
                out.append(img)
        return torch.stack(out)


class ImagePools(nn.Module):
    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__()
        self.fake_a = ImagePool(cfg.pool_size, cfg.resolution)
        self.fake_b = ImagePool(cfg.pool_size, cfg.resolution)


def build_generator(cfg: CycleGANConfig) -> CycleGANGenerator:
    return CycleGANGenerator(cfg)


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean (D(x) - 1)^2 for real targets, D(x)^2 for fake ones."""
    return (pred - 1.0).square().mean() if real else pred.square().mean()


class CycleGANTask:
    """CycleGAN's training step for the shared loop (which owns data order, devices, AMP, all-reduce, checkpoints)."""

    def __init__(self, cfg: CycleGANConfig) -> None:
        self.config = cfg
        self.G = CycleGANGenerator(cfg)
        self.D = CycleGANDiscriminators(cfg)
        self.pools = ImagePools(cfg)
        init_normal(self.G, cfg.init_std)
        init_normal(self.D, cfg.init_std)
        self.epoch_images: int | None = None  # max(|A|, |B|), set by load_data; None disables the lr decay

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, "pool": self.pools}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        return {"G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=cfg.betas),
                "D": torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=cfg.betas)}

    def ema_spec(self) -> None:
        return None  # CycleGAN samples with the raw generators

    def sampling_network(self) -> nn.Module:
        return self.G

    def load_data(self, manifest: str | os.PathLike) -> dict[str, torch.Tensor]:
        """Unpaired batches: {"a": uint8 [N,3,R,R], "b": uint8 [N,3,R,R]}, N = max(|A|, |B|); the smaller domain
        is repeated in seeded random orders (the reference code draws a random B for each A)."""
        from generators.translation import load_domain_images, resolve_config_domains

        cfg = resolve_config_domains(self.config, manifest, 2)
        self.set_config(cfg)
        data = load_domain_images(manifest, cfg.resolution, cfg.domain_column, cfg.domains)
        a, b = data.of(0), data.of(1)
        n = max(len(a), len(b))
        self.epoch_images = n
        gen = torch.Generator().manual_seed(0)

        def fill(x: torch.Tensor) -> torch.Tensor:
            order = torch.cat([torch.randperm(len(x), generator=gen) for _ in range(-(-n // len(x)))])[:n]
            return x[order]

        return {"a": fill(a), "b": fill(b)}

    def set_config(self, cfg: CycleGANConfig) -> None:
        """Adopt a config with resolved domain names (architecture unchanged) so checkpoints record them."""
        self.config = cfg
        self.G.config = cfg

    def lr_factor(self, step: int) -> float:
        """1 for `epochs_constant` epochs, then linear to 0 over `epochs_decay` epochs (per step, not per epoch)."""
        cfg = self.config
        if not self.epoch_images:
            return 1.0
        epoch = step * cfg.batch_size / self.epoch_images
        if cfg.epochs_decay <= 0:
            return 1.0
        return max(0.0, 1.0 - max(0.0, epoch - cfg.epochs_constant) / cfg.epochs_decay)

    def train_step(self, batch: dict[str, torch.Tensor], ctx: "StepContext") -> dict[str, float]:
        cfg = self.config
        G, D, pools = ctx.nets["G"], ctx.nets["D"], ctx.nets["pool"]
        lr = cfg.lr * self.lr_factor(ctx.step)
        for opt in ctx.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr
        real_a, real_b = (self._prep(batch[k], ctx) for k in ("a", "b"))
        lam_a = lam_b = cfg.lambda_cycle
        lam_idt = cfg.lambda_identity

        # G step: adversarial (LSGAN) + cycle + identity, discriminators frozen.
        with ctx.frozen(D), ctx.autocast():
            fake_b, fake_a = G.g_ab(real_a), G.g_ba(real_b)  # [N,3,R,R]
            rec_a, rec_b = G.g_ba(fake_b), G.g_ab(fake_a)
            adv = lsgan(D.d_b(fake_b), True) + lsgan(D.d_a(fake_a), True)
            cyc_a, cyc_b = F.l1_loss(rec_a, real_a), F.l1_loss(rec_b, real_b)
            cycle = lam_a * cyc_a + lam_b * cyc_b
            loss_idt = torch.zeros((), device=ctx.device)
            if lam_idt > 0:  # G_AB should leave a B image as it is (and G_BA an A image)
                loss_idt = (F.l1_loss(G.g_ab(real_b), real_b) * lam_b
                            + F.l1_loss(G.g_ba(real_a), real_a) * lam_a) * lam_idt
            loss_g = adv + cycle + loss_idt
        ctx.optimize("G", loss_g)

        # D step: real vs pooled fakes, each D's loss halved (slows D relative to G, as in the reference code).
        with ctx.autocast():
            pooled_b, pooled_a = pools.fake_b.query(fake_b.float()), pools.fake_a.query(fake_a.float())
            loss_db = 0.5 * (lsgan(D.d_b(real_b), True) + lsgan(D.d_b(pooled_b.to(real_b.dtype)), False))
            loss_da = 0.5 * (lsgan(D.d_a(real_a), True) + lsgan(D.d_a(pooled_a.to(real_a.dtype)), False))
        ctx.optimize("D", loss_da + loss_db)
        return {"loss_G": float(loss_g.detach()), "adv_G": float(adv.detach()),
                "cycle_A": float(cyc_a.detach()), "cycle_B": float(cyc_b.detach()),
                "idt": float(loss_idt.detach()), "loss_D_A": float(loss_da.detach()),
                "loss_D_B": float(loss_db.detach()), "lr": lr}

    def _prep(self, x: torch.Tensor, ctx: "StepContext") -> torch.Tensor:
        x = x.to(ctx.device, torch.float32) / 127.5 - 1.0  # uint8 [N,3,R,R] -> [-1,1]
        if self.config.mirror:
            flip = torch.rand(x.shape[0], 1, 1, 1, device=ctx.device) < 0.5
            x = torch.where(flip, x.flip(3), x)
        return ctx.to_memory_format(x)


def build_task(cfg: CycleGANConfig) -> CycleGANTask:
    return CycleGANTask(cfg)


SPEC = ModelSpec(
    name="cyclegan",
    kind="translation",
    config_cls=CycleGANConfig,
    presets=PRESETS,
    build_generator=build_generator,
    build_task=build_task,
    summary="CycleGAN (Zhu et al. 2017): two ResNet generators, two 70x70 PatchGANs, LSGAN + cycle + identity.",
)
