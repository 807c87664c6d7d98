"""Layers shared by the zoo's StyleGAN-family models (pure PyTorch, no custom ops).

Conventions follow the StyleGAN2 paper (Karras et al. 2020) and its reference code's published behaviour:
- *equalized learning rate*: weights are stored as N(0, 1) / lr_mult and scaled at run time by
  lr_mult / sqrt(fan_in), so Adam's per-parameter step is the same for every layer;
- leaky ReLU 0.2 followed by a gain of sqrt(2) to keep activations unit-variance;
- resampling filters are the separable binomial [1, 3, 3, 1] (normalised), the "blur" that suppresses aliasing.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Activation = Literal["linear", "lrelu"]
Upsampler = Literal["transposed_blur", "bilinear"]
NoiseMode = Literal["random", "const", "none"]

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, act: Activation, gain: float = 1.0) -> torch.Tensor:
    """Add a per-channel bias (dim 1) then apply the activation with its variance-preserving gain."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.to(x.dtype).reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)
    elif gain != 1.0:
        x = x * gain
    return x


def binomial_filter(taps: tuple[int, ...] = (1, 3, 3, 1)) -> torch.Tensor:
    """The normalised 2-D separable filter, [k,k], summing to 1."""
    f = torch.tensor(taps, dtype=torch.float32)
    f2 = torch.outer(f, f)
    return f2 / f2.sum()


def _depthwise(f: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    return f.to(dtype)[None, None].expand(channels, 1, *f.shape)  # [C,1,k,k]


def blur(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float = 1.0, down: int = 1) -> torch.Tensor:
    """Filter each channel with `f` after padding (before, after) on both axes; `down` subsamples. [N,C,H,W]"""
    c = x.shape[1]
    w = _depthwise(f * gain, c, x.dtype)
    if pad[0] == pad[1]:
        return F.conv2d(x, w, stride=down, padding=pad[0], groups=c)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, w, stride=down, groups=c)


def upsample_2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Zero-insertion 2x upsampling followed by the blur (gain 4 restores the mean). [N,C,H,W] -> [N,C,2H,2W]

    Written as one depthwise transposed conv: stride 2, padding 1 with a 4-tap filter lands each output
    on exactly the taps of 'insert zeros, pad (2, 1), filter'."""
    c = x.shape[1]
    w = _depthwise(f * 4.0, c, x.dtype)
    return F.conv_transpose2d(x, w, stride=2, padding=1, groups=c)


def upsample(x: torch.Tensor, f: torch.Tensor, mode: Upsampler) -> torch.Tensor:
    """2x upsampling of a feature map or RGB skip image with the configured upsampler. [N,C,H,W] -> [N,C,2H,2W]"""
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return upsample_2x(x, f)


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate and an lr multiplier (0.01 in the mapping network)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mult: float = 1.0, activation: Activation = "linear") -> None:
        super().__init__()
        self.activation: Activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_mult / math.sqrt(in_features)
        self.bias_gain = lr_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,in] -> [N,out]
        w = self.weight.to(x.dtype) * self.weight_gain
        x = F.linear(x, w)
        b = None if self.bias is None else self.bias * self.bias_gain
        return bias_act(x, b, self.activation)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, act={self.activation}"


class EqualConv2d(nn.Module):
    """Plain conv with equalized lr, optional blur-then-stride-2 downsampling (discriminator)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: Activation = "linear", down: int = 1) -> None:
        super().__init__()
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down}")
        self.activation: Activation = activation
        self.down = down
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.register_buffer("resample_filter", binomial_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:  # [N,Cin,H,W] -> [N,Cout,H/down,W/down]
        w = self.weight.to(x.dtype) * self.weight_gain
        if self.down == 2:
            # Blur first so the stride-2 conv does not alias: pad 2/2 for a 3x3 conv, 1/1 (+ stride) for a 1x1.
            if self.kernel_size == 1:
                x = blur(x, self.resample_filter, pad=(1, 1), down=2)
                x = F.conv2d(x, w)
            else:
                x = blur(x, self.resample_filter, pad=(2, 2))
                x = F.conv2d(x, w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.kernel_size // 2)
        return bias_act(x, self.bias, self.activation, gain)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated conv: per-sample input scaling by a style (affine of w), optional demodulation
    (normalising each output channel's expected std to 1, which replaces AdaIN's instance norm and removes the
    "droplet" artifacts), optional 2x upsampling.

    `fused=False` (default) scales activations instead of weights, so the conv itself is one dense conv over the
    whole batch with shared weights: the fastest path on CPU and GPU. `fused=True` builds per-sample weights and
    runs a grouped conv (the reference "fused modconv"); both compute the same function.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, demodulate: bool = True,
                 up: bool = False, upsampler: Upsampler = "transposed_blur", fused: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.up, self.upsampler, self.fused = demodulate, up, upsampler, fused
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # "A" in the paper: w -> style
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.register_buffer("resample_filter", binomial_filter(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # [N,Cin,H,W], [N,w_dim] -> [N,Cout,H',W']
        y, dcoef = self.forward_parts(x, w)
        return y if dcoef is None else y * dcoef.to(y.dtype)[:, :, None, None]

    def forward_parts(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(conv output, demodulation coefficients [N,Cout] still to apply, or None when already applied).

        Leaving the per-channel demodulation to the caller lets it fold it into one pass with bias, noise and
        activation (see SynthesisLayer): on CPU the elementwise passes cost as much as the convs."""
        n = x.shape[0]
        styles = self.affine(w)  # [N,Cin]
        weight, wsq = self._scaled_weight()  # [Cout,Cin,k,k], [Cout,Cin]
        dcoef = None
        if self.demodulate:
            dcoef = torch.rsqrt(styles.square() @ wsq.t() + 1e-8)  # [N,Cout]
        if self.fused:
            return self._forward_grouped(x, styles, weight, dcoef, n), None
        x = x * styles.to(x.dtype)[:, :, None, None]
        return self._conv(x, weight.to(x.dtype)), dcoef

    def _scaled_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """weight * gain and its per-(out,in) squared norms. Without autograd they are cached until the weight
        changes (its version counter moves on every in-place update or load): recomputing them on every call
        costs ~10% of a CPU sampling pass."""
        if torch.is_grad_enabled():
            weight = self.weight * self.weight_gain
            return weight, weight.square().sum(dim=[2, 3])
        key = (self.weight._version, self.weight.data_ptr(), self.weight.device, self.weight.dtype,
               torch.is_inference_mode_enabled())
        if getattr(self, "_cache_key", None) != key:
            weight = self.weight.detach() * self.weight_gain
            self._cache = (weight, weight.square().sum(dim=[2, 3]))
            self._cache_key = key
        return self._cache

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, groups: int = 1) -> torch.Tensor:
        if not self.up:
            return F.conv2d(x, weight, padding=self.kernel_size // 2, groups=groups)
        if self.upsampler == "bilinear":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            return F.conv2d(x, weight, padding=self.kernel_size // 2, groups=groups)
        # Transposed conv (stride 2) then the [1,3,3,1] blur with gain 4: 2H+1 -> 2H with padding (1, 1).
        if groups == 1:
            wt = weight.transpose(0, 1)  # conv_transpose2d wants [Cin,Cout,k,k]
        else:
            cout_g, cin_g = weight.shape[0] // groups, weight.shape[1]
            wt = weight.reshape(groups, cout_g, cin_g, *weight.shape[2:]).transpose(1, 2)
            wt = wt.reshape(groups * cin_g, cout_g, *weight.shape[2:])
        x = F.conv_transpose2d(x, wt, stride=2, groups=groups)
        return blur(x, self.resample_filter, pad=(1, 1), gain=4.0)

    def _forward_grouped(self, x: torch.Tensor, styles: torch.Tensor, weight: torch.Tensor,
                         dcoef: torch.Tensor | None, n: int) -> torch.Tensor:
        w = weight[None] * styles[:, None, :, None, None]  # [N,Cout,Cin,k,k]
        if dcoef is not None:
            w = w * dcoef[:, :, None, None, None]
        w = w.reshape(n * self.out_channels, self.in_channels, self.kernel_size, self.kernel_size).to(x.dtype)
        x = x.reshape(1, n * self.in_channels, *x.shape[2:])
        x = self._conv(x, w, groups=n)
        return x.reshape(n, self.out_channels, *x.shape[2:])

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, demod={self.demodulate}, "
                f"up={self.up}, upsampler={self.upsampler}, fused={self.fused}")


class NoiseInjection(nn.Module):
    """Per-pixel noise scaled by a learned per-layer strength (initialised to 0, as in the reference).

    Modes: 'random' draws fresh noise (from `generator` when given, so sampling is reproducible), 'const' uses a
    stored noise image (a buffer, saved in checkpoints), 'none' adds nothing."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def noise_image(self, x: torch.Tensor, mode: NoiseMode = "random",
                    noise: torch.Tensor | None = None) -> torch.Tensor | None:
        """The unscaled noise to add to `x` ([N or 1,1,H,W]), or None in mode 'none'."""
        if mode == "none":
            return None
        if mode == "const":
            return self.noise_const.to(x.dtype)
        if mode != "random":
            raise ValueError(f"noise mode must be random|const|none, got {mode!r}")
        if noise is None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return noise.to(x.dtype)

    def forward(self, x: torch.Tensor, mode: NoiseMode = "random",
                noise: torch.Tensor | None = None) -> torch.Tensor:  # [N,C,H,W]
        img = self.noise_image(x, mode, noise)
        return x if img is None else x + img * self.strength.to(x.dtype)


class MinibatchStd(nn.Module):
    """Append the average std of features over groups of samples: lets D see a lack of variety (mode collapse)."""

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,C,H,W] -> [N,C+F,H,W]
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g != 0:
            g = math.gcd(n, g)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [G,M,F,c,H,W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [M,F,c,H,W]
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [M,F,1,1]
        y = y.repeat(g, 1, h, w)  # [N,F,H,W]
        return torch.cat([x, y], dim=1)
