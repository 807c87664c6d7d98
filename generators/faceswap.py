"""Autoencoder face swap (the "deepfakes" / faceswap "Original" model), faithful at small scale.

One encoder is shared by two identities and each identity has its own decoder. Both autoencoders learn to
rebuild their own person's aligned face from a randomly *warped* copy, so the shared encoder has to code pose,
expression and lighting in a person-independent way. The swap encodes a face of A and decodes it with B's
decoder: B's look, A's pose and expression. What makes the trace kept here: strided 5x5 convs with LeakyReLU
0.1, a dense bottleneck, sub-pixel (PixelShuffle) upscaling blocks, a sigmoid output at low resolution that
creation later upsamples and blends into the frame (generators.merge).

"paper" is the faceswap Original layout at 64 px: encoder convs 128-256-512-1024 (5x5, stride 2), dense 1024,
dense 4x4x1024, reshape, upscale to 512 (8x8x512); each decoder upscales 256-128-64 and ends in a 5x5 conv to
3 sigmoid channels; Adam lr 5e-5, betas (0.5, 0.999). The dense layers have no activation, as in the original.

Data: aligned crops of the two identities from a manifest (the starter corpus keeps 128 px crops with margin
0.25); the model sees the inner face region `face_crop` of that crop, resized to `resolution`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generators.base import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from generators.train import StepContext


@dataclass(frozen=True)
class FaceSwapConfig:
    """Architecture, data window, augmentation, loss and optimiser of the face-swap autoencoder."""

    resolution: int = 64
    identities: tuple[str, ...] = ("pexels_woman", "pyfeat_man")  # decoder i reconstructs identities[i]
    encoder_channels: tuple[int, ...] = (128, 256, 512, 1024)  # 5x5 stride-2 convs
    encoder_dim: int = 1024  # dense bottleneck width
    bottleneck_channels: int = 1024  # dense -> [C, r, r] with r = resolution / 2**len(encoder_channels)
    encoder_upscale: int = 512  # the encoder's last block: one PixelShuffle upscale
    decoder_channels: tuple[int, ...] = (256, 128, 64)  # PixelShuffle upscales per decoder
    mask_head: bool = False  # a 4th sigmoid output trained against the landmark face mask
    # data: the corpus crop (align_size px, align_margin) and the model's window inside it (x, y, side)
    align_size: int = 128
    align_margin: float = 0.25
    face_crop: tuple[int, int, int] = (12, 20, 104)
    splits: tuple[str, ...] = ("train", "val", "test")
    # augmentation (applied on the fly, seeded by the loop)
    warp_grid: int = 5  # control points per side of the random warp
    warp_std: float = 0.035  # control-point jitter, in units of the half-side ([-1, 1] coordinates)
    rotation_deg: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    flip: bool = True
    colour_jitter: float = 0.06  # brightness / contrast / per-channel gain amplitude, same on input and target
    # loss
    recon_loss: str = "l1"  # l1 | mse
    ssim_weight: float = 1.0  # loss += ssim_weight * (1 - SSIM) / 2
    mask_weight: float = 0.5
    # optimiser: Adam over encoder + both decoders; batch_size faces of *each* identity per step
    batch_size: int = 16
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        if len(self.identities) != 2:
            raise ValueError(f"a face swap trains on exactly two identities, got {self.identities}")
        if self.recon_loss not in ("l1", "mse"):
            raise ValueError(f"recon_loss must be 'l1' or 'mse', got {self.recon_loss!r}")
        r = self.bottleneck_res
        if r < 1 or r * 2 ** len(self.encoder_channels) != self.resolution:
            raise ValueError(f"resolution {self.resolution} is not divisible by 2**{len(self.encoder_channels)}")
        if r * 2 ** (1 + len(self.decoder_channels)) != self.resolution:
            raise ValueError(f"encoder upscale + {len(self.decoder_channels)} decoder upscales from {r} px do not "
                             f"reach {self.resolution} px")
        x, y, s = self.face_crop
        if not (0 <= x and 0 <= y and x + s <= self.align_size and y + s <= self.align_size):
            raise ValueError(f"face_crop {self.face_crop} does not fit in the {self.align_size} px aligned crop")

    @property
    def bottleneck_res(self) -> int:
        return self.resolution // 2 ** len(self.encoder_channels)


PRESETS: dict[str, FaceSwapConfig] = {
    # Seconds on a CPU: unit tests only.
    "tiny": FaceSwapConfig(resolution=16, encoder_channels=(8, 16), encoder_dim=16, bottleneck_channels=16,
                           encoder_upscale=16, decoder_channels=(8,), batch_size=4, lr=1e-3),
    # ~15 minutes on a shared 2-core CPU at 64 px (~4.6 M parameters, < 20 MB of fp32 weights): the Original
    # layout at 1/4 width with a 192-wide bottleneck; batch 8 per identity and lr 4e-4 because the run is
    # ~1000x shorter than faceswap's (more, smaller steps learn faster per CPU second).
    "small": FaceSwapConfig(resolution=64, encoder_channels=(32, 64, 128, 256), encoder_dim=192,
                            bottleneck_channels=256, encoder_upscale=128, decoder_channels=(64, 32, 16),
                            batch_size=8, lr=4e-4),
    # faceswap "Original" at 64 px (see the module docstring).
    "paper": FaceSwapConfig(),
}


# -- network ---------------------------------------------------------------------------------------------------

def conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """5x5 stride-2 conv + LeakyReLU(0.1): halves the side. [N,Cin,H,W] -> [N,Cout,H/2,W/2]"""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 5, stride=2, padding=2), nn.LeakyReLU(0.1))


def upscale_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 conv to 4x channels + LeakyReLU(0.1) + PixelShuffle(2): sub-pixel upscaling. [N,Cin,H,W] -> [N,Cout,2H,2W]"""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch * 4, 3, padding=1), nn.LeakyReLU(0.1), nn.PixelShuffle(2))


class Encoder(nn.Module):
    """Shared encoder: strided convs, dense bottleneck, dense back to r x r, one upscale. [N,3,R,R] -> [N,U,2r,2r]"""

    def __init__(self, cfg: FaceSwapConfig) -> None:
        super().__init__()
        chans = (3, *cfg.encoder_channels)
        self.convs = nn.Sequential(*[conv_block(a, b) for a, b in zip(chans[:-1], chans[1:])])
        r = cfg.bottleneck_res
        self.dense = nn.Linear(cfg.encoder_channels[-1] * r * r, cfg.encoder_dim)
        self.expand = nn.Linear(cfg.encoder_dim, cfg.bottleneck_channels * r * r)
        self.upscale = upscale_block(cfg.bottleneck_channels, cfg.encoder_upscale)
        self.shape = (cfg.bottleneck_channels, r, r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x).flatten(1)  # [N, C*r*r]
        h = self.expand(self.dense(h)).view(x.shape[0], *self.shape)  # [N,Cb,r,r]
        return self.upscale(h)  # [N,U,2r,2r]


class Decoder(nn.Module):
    """One identity's decoder: PixelShuffle upscales, 5x5 conv to sigmoid RGB (+ mask). [N,U,2r,2r] -> [N,3|4,R,R]"""

    def __init__(self, cfg: FaceSwapConfig) -> None:
        super().__init__()
        chans = (cfg.encoder_upscale, *cfg.decoder_channels)
        self.ups = nn.Sequential(*[upscale_block(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.to_rgb = nn.Conv2d(chans[-1], 3, 5, padding=2)
        self.to_mask = nn.Conv2d(chans[-1], 1, 5, padding=2) if cfg.mask_head else None

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.ups(h)
        rgb = torch.sigmoid(self.to_rgb(h))  # [N,3,R,R] in [0,1]
        mask = torch.sigmoid(self.to_mask(h)) if self.to_mask is not None else None  # [N,1,R,R]
        return rgb, mask


class FaceSwapAutoencoder(nn.Module):
    """Shared encoder + one decoder per identity. Public tensors are in [-1, 1], NCHW (the zoo convention)."""

    def __init__(self, cfg: FaceSwapConfig) -> None:
        super().__init__()
        self.config = cfg
        self.resolution = cfg.resolution
        self.encoder = Encoder(cfg)
        self.decoders = nn.ModuleList([Decoder(cfg) for _ in cfg.identities])

    def identity_index(self, target: Any) -> int:
        if isinstance(target, (int, np.integer)) and 0 <= int(target) < len(self.decoders):
            return int(target)
        if isinstance(target, str) and target in self.config.identities:
            return self.config.identities.index(target)
        raise ValueError(f"unknown target identity {target!r}; this model decodes {list(self.config.identities)}")

    def forward(self, x01: torch.Tensor, decoder: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training-space call: [N,3,R,R] in [0,1] -> ([N,3,R,R] in [0,1], mask [N,1,R,R] or None)."""
        return self.decoders[decoder](self.encoder(x01))

    @torch.no_grad()
    def swap(self, images: torch.Tensor, target: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode faces with `target`'s decoder. [N,3,R,R] in [-1,1] -> ([N,3,R,R] in [-1,1], [N,1,R,R] in [0,1] | None)"""
        if images.ndim != 4 or images.shape[1:] != (3, self.resolution, self.resolution):
            raise ValueError(f"expected [N,3,{self.resolution},{self.resolution}] faces, got {tuple(images.shape)}")
        rgb, mask = self(images.to(next(self.parameters()).device) * 0.5 + 0.5, self.identity_index(target))
        return rgb * 2.0 - 1.0, mask

    def translate(self, images: torch.Tensor, target: Any = None, seed: int | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """ImageTranslator: swap to identity `target` (name or decoder index; default: the second identity).
        Deterministic: `seed` and `ref` are accepted for the protocol and unused. [N,3,R,R] -> [N,3,R,R]"""
        return self.swap(images, 1 if target is None else target)[0]


def build_generator(cfg: FaceSwapConfig) -> FaceSwapAutoencoder:
    return FaceSwapAutoencoder(cfg)


# -- SSIM and augmentation -------------------------------------------------------------------------------------

def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 2-D Gaussian window for SSIM (Wang et al. 2004 use 11x11, sigma 1.5). [size,size]"""
    ax = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
    g = torch.exp(-ax.square() / (2 * sigma * sigma))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM over batch, channels and 'valid' positions (Gaussian-weighted local statistics). [N,C,H,W] x2 -> []"""
    c = x.shape[1]
    window = min(window, x.shape[-1], x.shape[-2])
    w = gaussian_window(window, sigma).to(x)[None, None].repeat(c, 1, 1, 1)  # [C,1,k,k]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    var_x = F.conv2d(x * x, w, groups=c) - mu_x.square()
    var_y = F.conv2d(y * y, w, groups=c) - mu_y.square()
    cov = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return s.mean()


def random_affine(n: int, cfg: FaceSwapConfig, device: torch.device) -> torch.Tensor:
    """Per-sample rotation / zoom / shift / horizontal flip as affine_grid thetas. [N,2,3]"""
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(cfg.rotation_deg)
    scale = 1.0 + (torch.rand(n, device=device) * 2 - 1) * cfg.zoom
    shift = (torch.rand(n, 2, device=device) * 2 - 1) * cfg.shift * 2.0  # [-1,1] coordinates span 2
    flip = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n, device=device)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    return theta  # [N,2,3]


def random_warp_grid(n: int, size: int, cfg: FaceSwapConfig, device: torch.device) -> torch.Tensor:
    """Identity sampling grid plus a smooth random displacement: a jittered control grid (warp_grid^2 points),
    upsampled bicubically to every pixel. Edges keep their jitter, like faceswap's warp. [N,size,size,2]"""
    k = cfg.warp_grid
    jitter = torch.randn(n, 2, k, k, device=device) * cfg.warp_std  # [N,2,k,k]
    dense = F.interpolate(jitter, size=(size, size), mode="bicubic", align_corners=True)  # [N,2,S,S]
    lin = torch.linspace(-1.0, 1.0, size, device=device)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    base = torch.stack([gx, gy], -1)  # [S,S,2] (x, y) as grid_sample expects
    return base[None] + dense.permute(0, 2, 3, 1)


def colour_jitter(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Mild brightness, contrast and per-channel gain changes. [N,3,H,W] in [0,1] -> same"""
    if amount <= 0:
        return x
    n = x.shape[0]
    bright = (torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * amount
    contrast = 1.0 + (torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * amount * 2
    gain = 1.0 + (torch.rand(n, 3, 1, 1, device=x.device) * 2 - 1) * amount
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + bright).mul(gain).clamp(0.0, 1.0)


def augment_pair(images: torch.Tensor, masks: torch.Tensor | None, cfg: FaceSwapConfig
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(warped input, target, target mask): the same affine + colour on both, the random warp on the input only.
    images uint8 [N,3,R,R]; masks uint8 [N,1,R,R] or None."""
    n, _, r, _ = images.shape
    x = images.float() / 255.0
    theta = random_affine(n, cfg, x.device)
    grid = F.affine_grid(theta, [n, 3, r, r], align_corners=False)
    target = colour_jitter(F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False),
                           cfg.colour_jitter)
    mask = None
    if masks is not None:
        mask = F.grid_sample(masks.float() / 255.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    warped = F.grid_sample(target, random_warp_grid(n, r, cfg, x.device), mode="bilinear",
                           padding_mode="reflection", align_corners=True)
    return warped, target, mask


# -- data ------------------------------------------------------------------------------------------------------

def crop_to_model_matrix(cfg: FaceSwapConfig) -> np.ndarray:
    """[2,3] mapping aligned-crop pixels to model-input pixels (a crop of `face_crop` then a resize). Pixel
    centres follow cv2.resize: x' = (x - x0 + 0.5) * s - 0.5."""
    x0, y0, side = cfg.face_crop
    s = cfg.resolution / side
    return np.array([[s, 0.0, (0.5 - x0) * s - 0.5], [0.0, s, (0.5 - y0) * s - 0.5]])


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """outer o inner for [2,3] affine matrices."""
    a = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2]


def model_window(crop: np.ndarray, cfg: FaceSwapConfig) -> np.ndarray:
    """The model's input from an aligned corpus crop: cut `face_crop`, area-resize. [A,A,3] -> [R,R,3] uint8"""
    import cv2

    if crop.shape[0] != cfg.align_size or crop.shape[1] != cfg.align_size:
        raise ValueError(f"expected a {cfg.align_size} px aligned crop, got {crop.shape}")
    x0, y0, side = cfg.face_crop
    window = crop[y0:y0 + side, x0:x0 + side]
    interp = cv2.INTER_AREA if cfg.resolution < side else cv2.INTER_CUBIC
    return cv2.resize(window, (cfg.resolution, cfg.resolution), interpolation=interp)


def load_identity(manifest: str | os.PathLike, cfg: FaceSwapConfig, identity: str
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Real aligned crops of one identity -> (uint8 [N,R,R,3] model inputs, [N,5,2] landmarks in model pixels,
    sample_ids), sorted by sample_id. Rows without alignment provenance get template landmarks."""
    import json

    from forensics.data.faces import template_points
    from forensics.data.manifest import dataset_root, read_manifest, resolve_paths
    from forensics.data.media import MediaError, read_image
    from generators.data import DataError

    df = read_manifest(manifest)
    df = df[(df["label"] == 0) & (df["identity"] == identity) & df["media"].isin(("image", "frame"))
            & df["split"].isin(cfg.splits)].sort_values("sample_id", kind="stable")
    if df.empty:
        known = sorted(set(read_manifest(manifest)["identity"]) - {""})
        raise DataError(f"{manifest}: no real crops of identity {identity!r} in splits {list(cfg.splits)}; "
                        f"identities there: {known}")
    to_model = crop_to_model_matrix(cfg)
    images, marks, ids, skipped = [], [], [], []
    for (_, row), path in zip(df.iterrows(), resolve_paths(df, dataset_root(manifest))):
        try:
            crop = read_image(path)
            images.append(model_window(crop, cfg))
        except (MediaError, ValueError) as exc:
            skipped.append(str(exc))
            continue
        post = json.loads(row["postproc"] or "{}")
        if "landmarks" in post and "aligned" in post:
            m = compose_affine(to_model, np.asarray(post["aligned"]["matrix"], np.float64))
            pts = np.asarray(post["landmarks"], np.float64) @ m[:, :2].T + m[:, 2]
        else:
            pts = template_points(cfg.align_size, cfg.align_margin) @ to_model[:, :2].T + to_model[:, 2]
        marks.append(pts)
        ids.append(str(row["sample_id"]))
    if skipped:
        print(f"warning: skipped {len(skipped)} unusable crops of {identity}, first: {skipped[0]}")
    if not images:
        raise DataError(f"{manifest}: none of the crops of {identity!r} could be used")
    return np.stack(images), np.stack(marks), ids


class FaceSwapTask:
    """The face swap's step for the shared loop: both autoencoders, warped input -> unwarped target."""

    def __init__(self, cfg: FaceSwapConfig) -> None:
        self.config = cfg
        self.model = FaceSwapAutoencoder(cfg)

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def networks(self) -> dict[str, nn.Module]:
        return {"AE": self.model}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"AE": torch.optim.Adam(self.model.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def ema_spec(self) -> None:
        return None  # faceswap keeps no weight average

    def sampling_network(self) -> nn.Module:
        return self.model

    def load_data(self, manifest: str | os.PathLike) -> dict[str, torch.Tensor]:
        """Pairs: item i holds a face of A and a face of B, so every batch is balanced. The smaller identity is
        cycled through a seeded permutation up to the larger one's count.
        {"a","b": uint8 [N,3,R,R]} (+ {"a_mask","b_mask": uint8 [N,1,R,R]} with the mask head)."""
        from generators.merge import face_region_mask

        cfg = self.config
        loaded = [load_identity(manifest, cfg, name) for name in cfg.identities]
        n = max(len(imgs) for imgs, _, _ in loaded)
        out: dict[str, torch.Tensor] = {}
        for key, (imgs, marks, _) in zip(("a", "b"), loaded):
            order = np.arange(len(imgs))
            if len(imgs) < n:
                rng = np.random.default_rng(len(imgs) * 7919 + n)
                order = np.concatenate([rng.permutation(len(imgs)) for _ in range(-(-n // len(imgs)))])[:n]
            out[key] = torch.from_numpy(np.ascontiguousarray(imgs[order].transpose(0, 3, 1, 2)))
            if cfg.mask_head:
                masks = np.stack([face_region_mask(m, cfg.resolution) for m in marks[order]])
                out[f"{key}_mask"] = torch.from_numpy((masks[:, None] * 255).astype(np.uint8))
        return out

    def _recon(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        pix = (pred - target).abs().mean() if cfg.recon_loss == "l1" else (pred - target).square().mean()
        s = ssim(pred, target)
        return pix + cfg.ssim_weight * (1.0 - s) / 2.0, s

    def train_step(self, batch: dict[str, torch.Tensor], ctx: "StepContext") -> dict[str, float]:
        cfg = self.config
        model = ctx.nets["AE"]
        total = torch.zeros((), device=ctx.device)
        logs: dict[str, float] = {}
        with ctx.autocast():
            for i, key in enumerate(("a", "b")):
                warped, target, mask = augment_pair(batch[key], batch.get(f"{key}_mask"), cfg)
                pred, pred_mask = model(ctx.to_memory_format(warped), i)
                loss, s = self._recon(pred.float(), target)
                if pred_mask is not None and mask is not None:
                    loss = loss + cfg.mask_weight * (pred_mask.float() - mask).abs().mean()
                total = total + loss
                logs[f"loss_{key.upper()}"] = float(loss.detach())
                logs[f"ssim_{key.upper()}"] = float(s.detach())
        ctx.optimize("AE", total)
        return logs


def build_task(cfg: FaceSwapConfig) -> FaceSwapTask:
    return FaceSwapTask(cfg)


SPEC = ModelSpec(
    name="faceswap",
    kind="translation",
    config_cls=FaceSwapConfig,
    presets=PRESETS,
    build_generator=build_generator,
    build_task=build_task,
    summary="Autoencoder face swap (faceswap 'Original'): shared encoder, one PixelShuffle decoder per identity.",
)
