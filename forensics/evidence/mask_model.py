"""The network behind the predicted manipulation mask: an efficientnet-lite0 trunk cut at stride 16 and a small
U-Net-style decoder that predicts, per pixel, whether a blend touched it.

Why this shape: the blend boundary is a local colour/sharpness discontinuity (what the shallow, high-resolution
features see), while deciding whether a face was blended at all needs context (the stride-16 features). The
ImageNet-pretrained trunk (`forensics.detectors.cnn.load_offline_backbone`, shipped offline) gets there in
minutes of CPU where a network from scratch would not. The deeper lite0 stages (192/320 channels, 1280-wide
head) are dropped: they hold most of the weights and add nothing at 128 px, and the head must stay small.

Saved as `config.json` + `weights.safetensors` (float32 state dict); no pickle.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

MASK_FORMAT = "mask-head/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
# lite0 stage ends whose outputs feed the decoder (strides 2, 4, 8, 16) and their channel counts
STAGE_ENDS = (0, 1, 2, 4)
STAGE_CHANNELS = (16, 24, 40, 112)


@dataclass(frozen=True)
class MaskNetConfig:
    """Hyperparameters of the network. `depth` = how many of the four lite0 feature levels are used (tiny tests
    use 2: stride 4, a few thousand weights); `decoder` = the decoder's widths, deepest first, one per level."""

    depth: int = 4
    decoder: tuple[int, ...] = (64, 48, 32, 16)
    weights: str = "offline"  # "offline": ImageNet lite0 trunk (packaged); "scratch": random init
    size: int = 128  # the aligned-crop side the head is trained and applied at

    def __post_init__(self) -> None:
        if not 1 <= self.depth <= len(STAGE_ENDS):
            raise ValueError(f"MaskNetConfig.depth must be 1..{len(STAGE_ENDS)}, got {self.depth}")
        if len(self.decoder) != self.depth or min(self.decoder) < 1:
            raise ValueError(f"MaskNetConfig.decoder needs {self.depth} positive widths, got {self.decoder}")
        if self.weights not in ("offline", "scratch"):
            raise ValueError(f"MaskNetConfig.weights must be 'offline' or 'scratch', got {self.weights!r}")
        if self.size < 16 or self.size % 16:
            raise ValueError(f"MaskNetConfig.size must be a multiple of 16 >= 16, got {self.size}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decoder": list(self.decoder)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MaskNetConfig":
        return cls(depth=int(d["depth"]), decoder=tuple(int(w) for w in d["decoder"]), weights=str(d["weights"]),
                   size=int(d["size"]))


PRESETS: dict[str, MaskNetConfig] = {
    "tiny": MaskNetConfig(depth=2, decoder=(16, 8), weights="scratch", size=64),
    "small": MaskNetConfig(),
}


def _net_class():
    import torch
    from torch import nn
    import torch.nn.functional as F

    def conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    class MaskNet(nn.Module):
        """[N,3,S,S] normalised to [-1,1] -> [N,1,S,S] logits of "this pixel was blended"."""

        def __init__(self, config: MaskNetConfig, load_pretrained: bool) -> None:
            super().__init__()
            import timm

            from forensics.detectors.cnn import load_offline_backbone

            full = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=1)
            if config.weights == "offline" and load_pretrained:
                load_offline_backbone(full)
            last = STAGE_ENDS[config.depth - 1]
            self.stem = nn.Sequential(full.conv_stem, full.bn1)
            self.stages = nn.ModuleList(full.blocks[: last + 1])
            self.taps = STAGE_ENDS[: config.depth]
            chans = STAGE_CHANNELS[: config.depth][::-1]  # deepest first
            widths = config.decoder
            self.top = conv_bn_relu(chans[0], widths[0], 1)
            self.ups = nn.ModuleList(conv_bn_relu(widths[i - 1] + chans[i], widths[i], 3)
                                     for i in range(1, len(widths)))
            self.out = nn.Conv2d(widths[-1], 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            size = x.shape[-2:]
            h = self.stem(x)  # [N,32,S/2,S/2]
            skips = []
            for i, stage in enumerate(self.stages):
                h = stage(h)
                if i in self.taps:
                    skips.append(h)
            skips = skips[::-1]  # deepest first
            y = self.top(skips[0])
            for up, skip in zip(self.ups, skips[1:]):
                y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                y = up(torch.cat([y, skip], dim=1))
            return F.interpolate(self.out(y), size=size, mode="bilinear", align_corners=False)  # [N,1,S,S]

    return MaskNet


def build_mask_net(config: MaskNetConfig, load_pretrained: bool = True) -> "torch.nn.Module":
    """A fresh network (ImageNet trunk when config.weights == "offline" and load_pretrained)."""
    return _net_class()(config, load_pretrained)


def to_input(crops, device: str = "cpu") -> "torch.Tensor":
    """uint8 crops [N,S,S,3] -> float [N,3,S,S] in [-1, 1] (lite0's normalisation, mean = std = 0.5)."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float()
    return x.div_(127.5).sub_(1.0)


def save_mask_net(directory: str | Path, net: "torch.nn.Module", config: MaskNetConfig,
                  extra: dict[str, Any] | None = None) -> Path:
    """`config.json` (format, network config, `extra`: threshold, real-area rule, training record) +
    `weights.safetensors` (the float32 state dict), each written atomically."""
    from safetensors.torch import save as st_save

    from forensics.data.media import write_bytes_atomic

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    write_bytes_atomic(directory / WEIGHTS_FILE, st_save(state, metadata={"format": MASK_FORMAT}))
    doc = {"format": MASK_FORMAT, "net": config.to_dict(), **(extra or {})}
    write_bytes_atomic(directory / CONFIG_FILE, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return directory


def load_mask_net(directory: str | Path) -> tuple["torch.nn.Module", MaskNetConfig, dict[str, Any]]:
    """The saved network in eval mode, its config and the whole config.json.

    A head may come from anyone, so every file is checked (`forensics.modelfiles`) before any tensor reaches the
    network: the config must be a JSON object of this format with a valid `net`; the weights must be safetensors
    (a pickle is refused, never unpickled) with finite values and exactly the names and shapes the config's
    network has. Anything else raises CheckpointError naming the file and why (MissingModelFile, also a
    FileNotFoundError, for an absent one)."""
    from forensics.modelfiles import (CheckpointError, MissingModelFile, check_shapes, read_json_object,
                                      read_safetensors, require_mapping)

    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (cfg_path, w_path):
        if not path.is_file():
            raise MissingModelFile(f"{path}: missing; not a mask head (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    doc = read_json_object(cfg_path, required=("format", "net"), what="mask head config")
    if doc["format"] != MASK_FORMAT:
        raise CheckpointError(f"{cfg_path}: unknown format {doc['format']!r}, expected {MASK_FORMAT!r}")
    net_doc = require_mapping(cfg_path, doc, "net")
    try:
        config = MaskNetConfig.from_dict(net_doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path}: bad 'net' config ({type(exc).__name__}: {exc})") from None
    tensors, _ = read_safetensors(w_path, "pt")  # pickles, bad headers and NaN/inf weights refused here
    net = build_mask_net(config, load_pretrained=False)
    expected = {name: tuple(t.shape) for name, t in net.state_dict().items()}
    check_shapes(w_path, expected, tensors, what=f"the network {cfg_path} describes")
    net.load_state_dict(tensors, strict=True)
    return net.eval(), config, doc


__all__ = ["MASK_FORMAT", "MaskNetConfig", "PRESETS", "build_mask_net", "load_mask_net", "save_mask_net", "to_input"]
