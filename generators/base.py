"""What every zoo model provides: the generator protocols and a `ModelSpec` tying config, presets and builders.

A model module (e.g. `generators.stylegan2`) exposes one `SPEC`; the registry in `generators/__init__.py` imports
it lazily so `import generators` stays free of torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    from generators.train import TrainTask

ModelKind = Literal["unconditional", "translation"]


@runtime_checkable
class UnconditionalGenerator(Protocol):
    """Noise -> image models (StyleGAN2). Images are float tensors in [-1, 1], NCHW."""

    config: Any
    resolution: int

    def sample(self, n: int, seed: int) -> "torch.Tensor":  # [n,3,R,R]
        ...

    def sample_seeds(self, seeds: list[int]) -> "torch.Tensor":  # [len(seeds),3,R,R], item i depends only on seeds[i]
        ...


@runtime_checkable
class ImageTranslator(Protocol):
    """Image -> image models (CycleGAN, StarGAN v2, face swap): `translate(images, target=..., seed=...|ref=...)`."""

    config: Any
    resolution: int

    def translate(self, images: "torch.Tensor", target: Any = None, seed: int | None = None,
                  ref: "torch.Tensor | None" = None) -> "torch.Tensor":  # [N,3,R,R] -> [N,3,R,R]
        ...


@dataclass(frozen=True)
class ModelSpec:
    """How to build one zoo model: its config class, presets, the sampling network and the training task."""

    name: str
    kind: ModelKind
    config_cls: type
    presets: Mapping[str, Any]
    build_generator: Callable[[Any], "torch.nn.Module"]
    build_task: Callable[[Any], "TrainTask"]
    summary: str
