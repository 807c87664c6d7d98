"""DiffAugment: the policy parser, what each operation does to pixels, gradients, and seeded replay."""
from __future__ import annotations

import pytest
import torch

from generators.diffaugment import color, cutout, diff_augment, parse_policy, translation
from generators.stylegan2 import PRESETS, StyleGAN2Config


def _batch(n: int = 8, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_policy_parsing_and_unknown_operations() -> None:
    assert parse_policy("") == ()
    assert parse_policy(" color, cutout ") == ("color", "cutout")
    with pytest.raises(ValueError, match="unknown DiffAugment operations \\['flip'\\]"):
        parse_policy("color,flip")
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        StyleGAN2Config(diffaugment="rotate")
    assert PRESETS["small"].diffaugment == "color,translation,cutout" and PRESETS["tiny"].diffaugment == ""


def test_translation_moves_content_by_whole_pixels_and_fills_zeros() -> None:
    x = _batch()
    torch.manual_seed(0)
    y = translation(x)
    max_shift = 2  # 1/8 of 16 px
    for i in range(len(x)):
        matches = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
                   if torch.equal(y[i], _shifted(x[i], dy, dx))]
        assert len(matches) == 1


def _shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """img sampled at (row + dy, col + dx), zero outside."""
    out = torch.zeros_like(img)
    h, w = img.shape[1:]
    for r in range(h):
        for c in range(w):
            if 0 <= r + dy < h and 0 <= c + dx < w:
                out[:, r, c] = img[:, r + dy, c + dx]
    return out


def test_cutout_zeroes_one_square_of_at_most_half_the_side() -> None:
    x = _batch(size=16) + 3.0  # no zeros in the input
    torch.manual_seed(0)
    y = cutout(x)
    for img in y:
        zero = (img == 0).all(dim=0)
        rows, cols = zero.any(dim=1).nonzero(), zero.any(dim=0).nonzero()
        assert 0 < zero.sum() <= 64
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert h <= 8 and w <= 8 and zero.sum() == h * w  # one axis-aligned rectangle


def test_color_changes_images_and_keeps_shape() -> None:
    x = _batch()
    torch.manual_seed(0)
    y = color(x)
    assert y.shape == x.shape and not torch.allclose(x, y)


def test_gradients_flow_to_the_input_and_seeds_replay() -> None:
    x = _batch().requires_grad_(True)
    torch.manual_seed(3)
    y = diff_augment(x, "color,translation,cutout")
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.manual_seed(3)
    again = diff_augment(x.detach(), "color,translation,cutout")
    torch.testing.assert_close(y.detach(), again)
    torch.manual_seed(4)
    assert not torch.allclose(diff_augment(x.detach(), "color,translation,cutout"), again)
