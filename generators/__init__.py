"""The generator zoo: a timm-style registry of generative models that make labeled fakes.

    import generators
    generators.list()                       # ['stylegan2', ...]
    G = generators.create("stylegan2", "tiny")
    images = G.sample(4, seed=0)            # [4,3,R,R] in [-1, 1]

Model modules are imported on first use, so importing this package does no work.
"""
from __future__ import annotations

import builtins
import importlib
from typing import TYPE_CHECKING, Any

from generators.config import ConfigError, did_you_mean, resolve_preset

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from generators.base import ModelSpec

# name -> module exposing `SPEC: ModelSpec`. Add a line here when a model lands.
_MODULES: dict[str, str] = {
    "stylegan2": "generators.stylegan2",
    "cyclegan": "generators.cyclegan",
    "stargan_v2": "generators.stargan_v2",
    "faceswap": "generators.faceswap",
    "blend": "generators.blend",  # needs no training: `forensics synth --generator blend`
}


class UnknownModelError(KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def list() -> builtins.list[str]:  # noqa: A001 - timm-style name
    """Registered model names, sorted."""
    return sorted(_MODULES)


def get_spec(name: str) -> "ModelSpec":
    """The `ModelSpec` of a registered model; unknown names get a 'did you mean' error."""
    if name not in _MODULES:
        raise UnknownModelError(f"unknown generator {name!r}{did_you_mean(name, list())}; registered: {list()}")
    return importlib.import_module(_MODULES[name]).SPEC


def resolve_config(name: str, config: Any = "tiny") -> Any:
    """A preset name ('tiny'|'small'|'paper') or a config dataclass -> that model's config instance."""
    spec = get_spec(name)
    return resolve_preset(spec.config_cls, spec.presets, config)


def create(name: str, config: Any = "tiny") -> "torch.nn.Module":
    """Build a freshly initialised generator network (eval mode) for `name` with a preset or config."""
    spec = get_spec(name)
    model = spec.build_generator(resolve_config(name, config))
    return model.eval()


__all__ = ["ConfigError", "UnknownModelError", "create", "get_spec", "list", "resolve_config"]
