"""Checkpoints without pickles: safetensors for tensors, JSON for everything else.

A *generator checkpoint* is a folder with
    model.safetensors   the sampling network's weights and buffers (for a GAN: the EMA generator)
    model.json          {"format", "generator", "config", "train": {steps, seed, wall_time_s, ...}, "versions"}
A *training checkpoint* (generators.train) is the same folder plus `train_state.safetensors` holding every
network, optimizer state and step counter needed to resume. Every file is written atomically (temp + rename).

Loading never unpickles: files are parsed as safetensors (a JSON header plus raw buffers) and anything else,
e.g. a `torch.save` pickle renamed to .safetensors, is refused with a CheckpointError.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save as st_save

from forensics.data.manifest import sha256_file
from forensics.data.media import write_bytes_atomic
from forensics.modelfiles import PICKLE_SUFFIXES as _PICKLE_SUFFIXES
from forensics.modelfiles import CheckpointError, check_shapes, read_json_object, read_safetensors
from generators.config import config_from_dict, config_to_dict

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

FORMAT = "deepfake-forensics/generator-checkpoint/v1"
MODEL_WEIGHTS = "model.safetensors"
MODEL_JSON = "model.json"
TRAIN_STATE = "train_state.safetensors"
__all__ = ["CheckpointError"]  # defined in forensics.modelfiles (one error type for every model file); re-exported


def versions() -> dict[str, str]:
    """Library versions recorded in every checkpoint (reproducibility, not compatibility checks)."""
    import numpy
    import safetensors

    try:
        from importlib.metadata import version

        pkg = version("deepfake-forensics")
    except Exception:  # not installed as a distribution (e.g. running from a source tree)
        pkg = "unknown"
    return {"deepfake-forensics": pkg, "torch": torch.__version__, "numpy": numpy.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's JSON file: a bounded-size JSON object, or CheckpointError naming the file."""
    return read_json_object(path, what="checkpoint record")


_PACKED_METADATA = "metadata_json"


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors, atomically. Tensors are copied to contiguous CPU memory first.

    safetensors writes several metadata entries in a random order, so the same weights would hash
    differently on every save; the entries are packed into one sorted JSON string to keep bytes stable.
    """
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    packed = {_PACKED_METADATA: json.dumps(metadata, sort_keys=True)} if metadata else None
    write_bytes_atomic(path, st_save(clean, metadata=packed))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file -> (tensors on CPU, metadata). Refuses pickles, corrupt headers, dtypes outside
    forensics.modelfiles.TORCH_DTYPES and NaN/inf weights, before any tensor is used."""
    path = Path(path)
    tensors, metadata = read_safetensors(path, "pt")
    if _PACKED_METADATA in metadata:
        try:
            metadata = json.loads(metadata[_PACKED_METADATA])
        except json.JSONDecodeError:
            raise CheckpointError(f"{path}: metadata entry {_PACKED_METADATA!r} is not JSON") from None
    return tensors, metadata


def state_tensors(module: "nn.Module", prefix: str = "") -> dict[str, torch.Tensor]:
    """A module's persistent state (parameters and buffers) with an optional key prefix."""
    return {prefix + k: v for k, v in module.state_dict().items()}


def load_state(module: "nn.Module", tensors: dict[str, torch.Tensor], prefix: str = "", source: str = "") -> None:
    """Load `prefix`-ed tensors into a module strictly: every key and shape is checked first, so a missing,
    unexpected or mis-shaped tensor is refused by name before anything is copied into the module."""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    check_shapes(f"{source}: weights do not match the model", expected, state,
                 f"the {type(module).__name__} built from the checkpoint's config")
    module.load_state_dict(state, strict=True)


# -- optimizer state as safetensors + JSON --------------------------------------------------------------------

def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state_dict into tensors (per-parameter state) and JSON (param_groups, scalars)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"{prefix}{pid}.{key}"] = val
            else:
                scalars.setdefault(str(pid), {})[key] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any], prefix: str) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, val in tensors.items():
        if key.startswith(prefix):
            pid, name = key[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[name] = val
    for pid, sc in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# -- generator checkpoints -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GeneratorCheckpoint:
    """A loaded generator checkpoint: the network (eval mode) and what model.json says about it."""

    model: "nn.Module"
    name: str
    config: Any
    info: dict[str, Any]
    sha256: str  # of model.safetensors: the manifest's checkpoint_sha256
    path: Path

    @property
    def train_steps(self) -> int:
        return int(self.info.get("train", {}).get("steps", -1))


def save_generator(folder: str | os.PathLike, name: str, config: Any, model: "nn.Module",
                   train_info: dict[str, Any]) -> Path:
    """Write model.safetensors then model.json (JSON last: a folder with a JSON is complete)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / MODEL_WEIGHTS, state_tensors(model), metadata={"format": FORMAT, "generator": name})
    write_json_atomic(folder / MODEL_JSON, {"format": FORMAT, "generator": name, "config": config_to_dict(config),
                                            "train": train_info, "versions": versions()})
    return folder


def checkpoint_folder(path: str | os.PathLike) -> Path:
    """Accept the folder, its model.json or its model.safetensors."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.name in (MODEL_JSON, MODEL_WEIGHTS):
        return path.parent
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: pickle-based checkpoint formats ({path.suffix}) are refused; "
                              "expected a folder with model.safetensors + model.json")
    raise CheckpointError(f"{path}: expected a checkpoint folder (model.safetensors + model.json)")


def read_model_json(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's model.json: a JSON object of this format naming a generator, with config and train records."""
    folder = checkpoint_folder(path)
    info = read_json(folder / MODEL_JSON)
    if info.get("format") != FORMAT:
        raise CheckpointError(f"{folder / MODEL_JSON}: unknown checkpoint format {info.get('format')!r}")
    for key, kind in (("generator", str), ("config", dict), ("train", dict)):
        if not isinstance(info.get(key), kind):
            raise CheckpointError(f"{folder / MODEL_JSON}: {key!r} must be a JSON {kind.__name__}, got "
                                  f"{type(info.get(key)).__name__}")
    return info


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> GeneratorCheckpoint:
    """Rebuild the generator named in model.json with its config and load its weights (strict)."""
    import generators

    folder = checkpoint_folder(path)
    info = read_model_json(folder)
    name = info["generator"]
    tensors, _ = load_tensors(folder / MODEL_WEIGHTS)  # checked (header, dtypes, finite) before building anything
    try:
        spec = generators.get_spec(name)
        config = config_from_dict(spec.config_cls, info["config"])
        model = spec.build_generator(config)
    except (KeyError, ValueError, TypeError) as exc:  # UnknownModelError is a KeyError, ConfigError a ValueError
        raise CheckpointError(f"{folder / MODEL_JSON}: cannot build generator {name!r} "
                              f"({' '.join(str(exc).split())})") from None
    load_state(model, tensors, source=str(folder / MODEL_WEIGHTS))
    model.to(device).eval().requires_grad_(False)
    return GeneratorCheckpoint(model=model, name=name, config=config, info=info,
                               sha256=sha256_file(folder / MODEL_WEIGHTS), path=folder)
