"""Detector registry (timm-style): `list()`, `create(name, **hyperparams)`, `get_class(name)`, `load(dir)`.

Detector modules are imported lazily, on first use, so `import forensics.detectors` stays instant and torch is
only imported by the CNN.
"""
from __future__ import annotations

import builtins
import difflib
import importlib
from pathlib import Path
from typing import Any

# name -> "module:Class"; one detector per file.
_REGISTRY: dict[str, str] = {
    "spectral": "forensics.detectors.spectral:SpectralDetector",
    "dct": "forensics.detectors.dct:DCTDetector",
    "seam": "forensics.detectors.seam:SeamDetector",
    "cnn": "forensics.detectors.cnn:CNNDetector",
    "temporal": "forensics.detectors.temporal:TemporalDetector",
}


def list() -> builtins.list[str]:  # noqa: A001 - the registry API mirrors timm/generators
    """Names of all registered detectors, sorted."""
    return sorted(_REGISTRY)


def get_class(name: str) -> type:
    """The detector class registered as `name`; unknown names get a "did you mean" error."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, builtins.list(_REGISTRY), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown detector {name!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create(name: str, **hyperparams: Any):
    """Instantiate a detector with explicit hyperparameters (unknown ones raise a TypeError naming them)."""
    cls = get_class(name)
    unknown = set(hyperparams) - set(cls._param_names())
    if unknown:
        raise TypeError(f"{name}: unknown hyperparameters {sorted(unknown)}; known: {cls._param_names()}")
    return cls(**hyperparams)


def load(directory: str | Path):
    """Load any saved detector from its directory (config.json + weights.safetensors)."""
    from forensics.detectors.base import Detector

    return Detector.load(directory)


__all__ = ["list", "get_class", "create", "load"]
