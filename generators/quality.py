"""Offline quality measures (no Inception weights needed): sliced Wasserstein distance on Laplacian pyramids,
distance between azimuthally averaged log power spectra, and a sample-grid writer.

SWD follows ProGAN (Karras et al. 2018, appendix D): a Laplacian pyramid per image down to 16x16, 128 random
7x7 neighbourhoods per image and level, each level's descriptors normalised per colour channel (mean 0, std 1,
over the set), then the sliced Wasserstein distance over 512 random unit projections (x 4 repeats), averaged.
Values are reported x 1e3 as in the paper. Lower is better for both measures.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

PATCH = 7
DESCRIPTORS_PER_IMAGE = 128
PROJECTIONS = 512
REPEATS = 4
MIN_LEVEL_RES = 16


def _gauss_kernel(channels: int) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k2 = torch.outer(k, k) / 256.0
    return k2[None, None].repeat(channels, 1, 1, 1)  # [C,1,5,5]


def laplacian_pyramid(images: torch.Tensor, min_res: int = MIN_LEVEL_RES) -> list[torch.Tensor]:
    """Band-pass levels, finest first, then the low-pass residual at `min_res`. [N,C,H,W] -> list of [N,C,h,w]"""
    x = images.float()
    c = x.shape[1]
    k = _gauss_kernel(c).to(x.device)
    levels = []
    while x.shape[-1] > min_res:
        down = F.conv2d(F.pad(x, [2, 2, 2, 2], mode="reflect"), k, groups=c)[:, :, ::2, ::2]
        up = torch.zeros_like(x)
        up[:, :, ::2, ::2] = down * 4.0
        up = F.conv2d(F.pad(up, [2, 2, 2, 2], mode="reflect"), k, groups=c)
        levels.append(x - up)
        x = down
    levels.append(x)
    return levels


def _descriptors(level: torch.Tensor, gen: torch.Generator, per_image: int) -> torch.Tensor:
    """Random 7x7 neighbourhoods of one pyramid level. [N,C,h,w] -> [N*per_image, C*49]"""
    n, c, h, w = level.shape
    ys = torch.randint(0, h - PATCH + 1, (n, per_image), generator=gen)
    xs = torch.randint(0, w - PATCH + 1, (n, per_image), generator=gen)
    patches = level.unfold(2, PATCH, 1).unfold(3, PATCH, 1)  # [N,C,h-6,w-6,7,7]
    idx_n = torch.arange(n)[:, None].expand(n, per_image)
    picked = patches[idx_n, :, ys, xs]  # [N,P,C,7,7]
    return picked.reshape(n * per_image, c, PATCH * PATCH)


def _normalise(desc: torch.Tensor) -> torch.Tensor:
    """Per colour channel: zero mean, unit std over all descriptors and positions. [M,C,49] -> [M,C*49]"""
    mean = desc.mean(dim=(0, 2), keepdim=True)
    std = desc.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, gen: torch.Generator,
                       projections: int = PROJECTIONS, repeats: int = REPEATS) -> float:
    """Average 1-D Wasserstein-1 distance between two descriptor sets along random unit directions. [M,D],[M,D]"""
    m = min(a.shape[0], b.shape[0])
    a, b = a[:m], b[:m]
    dists = []
    for _ in range(repeats):
        dirs = torch.randn(a.shape[1], projections, generator=gen)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        # numpy's sort along the contiguous axis is ~10x faster than torch.sort here  [P,M]
        pa = np.sort((a @ dirs).t().contiguous().numpy(), axis=1)
        pb = np.sort((b @ dirs).t().contiguous().numpy(), axis=1)
        dists.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(dists))


def swd(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> dict[str, Any]:
    """SWD (x 1e3) per pyramid level and averaged; images [N,3,H,W] in [-1,1] at the same resolution."""
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same image shape")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lr, lf = laplacian_pyramid(real), laplacian_pyramid(fake)
        per_level = {}
        for a, b in zip(lr, lf):
            da = _normalise(_descriptors(a, gen, DESCRIPTORS_PER_IMAGE))
            db = _normalise(_descriptors(b, gen, DESCRIPTORS_PER_IMAGE))
            per_level[str(a.shape[-1])] = round(1e3 * sliced_wasserstein(da, db, gen), 3)
    return {"per_level": per_level, "mean": round(float(np.mean(list(per_level.values()))), 3)}


def radial_log_spectrum(images: torch.Tensor) -> torch.Tensor:
    """Azimuthal average of the centred log power spectrum of the luma channel. [N,3,H,W] -> [N,H//2]"""
    x = images.float()
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # [N,H,W]
    spec = torch.fft.fftshift(torch.fft.fft2(luma), dim=(-2, -1))
    logp = torch.log(spec.abs().square() + 1e-8)  # [N,H,W]
    h, w = luma.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    r = torch.sqrt(yy.float() ** 2 + xx.float() ** 2).round().long().flatten()  # [H*W]
    nbins = min(h, w) // 2
    keep = r < nbins
    flat = logp.reshape(logp.shape[0], -1)[:, keep]  # [N,K]
    rk = r[keep]
    sums = torch.zeros(logp.shape[0], nbins).index_add_(1, rk, flat)
    counts = torch.zeros(nbins).index_add_(0, rk, torch.ones_like(rk, dtype=torch.float32))
    return sums / counts


def spectral_distance(real: torch.Tensor, fake: torch.Tensor) -> dict[str, Any]:
    """RMS difference between the mean radial log spectra (natural-log units), excluding the DC bin."""
    pr, pf = radial_log_spectrum(real).mean(0), radial_log_spectrum(fake).mean(0)
    diff = (pr - pf)[1:]
    return {"rms": round(float(diff.square().mean().sqrt()), 4),
            "real_profile": [round(float(v), 3) for v in pr], "fake_profile": [round(float(v), 3) for v in pf]}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1,1] float NCHW -> uint8 NHWC (the exact quantisation used for every written PNG)."""
    x = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def write_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, pad: int = 2) -> Path:
    """A PNG grid of images in [-1,1] NCHW (white padding)."""
    from forensics.data.media import write_image

    arr = to_uint8(images)
    n, h, w, _ = arr.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = arr[i]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, grid)
    return path


def evaluate_checkpoint(ckpt: str | os.PathLike, manifest: str | os.PathLike, n: int = 512, seed: int = 0,
                        device: str = "cpu", noise_mode: str = "random") -> dict[str, Any]:
    """SWD and spectral distance of `n` samples vs `n` real images (all splits) at the model's resolution."""
    from generators.checkpoint import load_generator
    from generators.data import load_image_tensor

    ck = load_generator(ckpt, device)
    reals = load_image_tensor(manifest, ck.model.resolution, splits=("train", "val", "test"))
    pick = torch.randperm(reals.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    real = reals[pick].float() / 127.5 - 1.0
    fakes = [ck.model.sample_seeds(list(range(seed + i, min(seed + i + 64, seed + n))), noise_mode=noise_mode).cpu()
             for i in range(0, n, 64)]
    fake = torch.cat(fakes)
    fake = torch.from_numpy(to_uint8(fake)).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # what a PNG would hold
    return {"checkpoint": str(ckpt), "checkpoint_sha256": ck.sha256, "train_steps": ck.train_steps,
            "n_real": int(real.shape[0]), "n_fake": int(fake.shape[0]), "seed": seed, "noise_mode": noise_mode,
            "swd_x1e3": swd(real, fake, seed), "spectral": spectral_distance(real, fake)}


def write_json(obj: Any, path: str | os.PathLike) -> None:
    from generators.checkpoint import write_json_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, obj)


def compare_to_baseline(ckpt: str | os.PathLike, baseline: str | os.PathLike, manifest: str | os.PathLike,
                        n: int = 512, seed: int = 0) -> dict[str, Any]:
    """Evaluate a trained checkpoint and its step-0 baseline on the same reals and seeds; says which is better."""
    trained = evaluate_checkpoint(ckpt, manifest, n=n, seed=seed)
    step0 = evaluate_checkpoint(baseline, manifest, n=n, seed=seed)
    return {
        "trained": trained, "step0": step0,
        "trained_beats_step0": {
            "swd": trained["swd_x1e3"]["mean"] < step0["swd_x1e3"]["mean"],
            "spectral": trained["spectral"]["rms"] < step0["spectral"]["rms"],
        },
    }
