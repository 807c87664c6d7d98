"""Differentiable augmentation for GAN training on small data (Zhao et al., "Differentiable Augmentation for
Data-Efficient GAN Training", NeurIPS 2020).

With a few hundred training crops a discriminator memorises the reals within a few thousand steps and stops
giving the generator a useful gradient. DiffAugment shows D only augmented images, real and fake alike, through
operations that are differentiable in the image, so G's gradient still flows. Because both sides see the same
distribution of augmentations, the generator is not pushed to produce augmented-looking images.

Operations (the paper's `color,translation,cutout` policy, magnitudes as published):
- color: per-image brightness shift in [-0.5, 0.5), saturation x[0, 2), contrast x[0.5, 1.5);
- translation: per-image integer shift of up to 1/8 of the side, zero fill;
- cutout: one zeroed square of half the side per image, at a random position.
Randomness comes from torch's global generator, which the training loop reseeds every step, so a resumed run
replays the same augmentations.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

OPERATIONS = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """'color,translation' -> ('color', 'translation'); '' -> (); unknown names are an error."""
    ops = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in ops if p not in OPERATIONS]
    if unknown:
        raise ValueError(f"unknown DiffAugment operations {unknown}; choose from {list(OPERATIONS)}")
    return ops


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Augment a batch [N,3,H,W] in [-1,1] with the named operations, in the order given."""
    for op in parse_policy(policy):
        x = _OPS[op](x)
    return x


def _rand(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    x = x + (_rand(x, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, 1, 1, 1) * 2.0) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by an integer offset, filling with zeros: a gather from the padded batch."""
    n, _, h, w = x.shape
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device)[None, :, None] + dy + max_dy).expand(n, h, w)  # index into padded
    cols = (torch.arange(w, device=x.device)[None, None, :] + dx + max_dx).expand(n, h, w)
    padded = F.pad(x, [max_dx, max_dx, max_dy, max_dy])
    batch = torch.arange(n, device=x.device)[:, None, None].expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of `ratio` x side per image; its centre may sit anywhere, so it can be clipped."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    oy, ox = ys - cy + ch // 2, xs - cx + cw // 2  # position inside the square, if in [0, side)
    inside = (oy >= 0) & (oy < ch) & (ox >= 0) & (ox < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"color": color, "translation": translation, "cutout": cutout}
