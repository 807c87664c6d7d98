"""Config plumbing shared by every zoo model.

Each model owns a frozen dataclass of hyperparameters with named presets (`tiny` for tests, `small` for a CPU,
`paper` for the published setup). This module turns them into JSON and back, rejecting unknown keys so a typo
in a saved config is an error, never a silently ignored value.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")

PRESET_NAMES = ("tiny", "small", "paper")


class ConfigError(ValueError):
    """A config dict or preset name that cannot be turned into a model config."""


def did_you_mean(name: str, choices: list[str]) -> str:
    """A ' (did you mean X?)' hint for an unknown name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    if not dataclasses.is_dataclass(cfg):
        raise ConfigError(f"not a config dataclass: {type(cfg).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild `cls` from `config_to_dict` output; unknown keys are an error, missing keys take defaults."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        hints = "".join(did_you_mean(k, list(fields)) for k in unknown)
        raise ConfigError(f"unknown {cls.__name__} keys {unknown}{hints}")
    hints_by_name = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints_by_name.get(name)
        origin = typing.get_origin(hint)
        if origin is tuple and isinstance(value, list):  # JSON has no tuples
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[name] = value
    return cls(**values)  # type: ignore[call-arg]


def config_to_json(cfg: Any) -> str:
    """Canonical JSON (sorted keys) so equal configs hash equal."""
    return json.dumps(config_to_dict(cfg), sort_keys=True, separators=(",", ":"))


def resolve_preset(cls: type[T], presets: Mapping[str, T], config: "str | T") -> T:
    """A preset name or an instance of `cls` -> an instance of `cls`."""
    if isinstance(config, cls):
        return config
    if isinstance(config, str):
        if config not in presets:
            raise ConfigError(f"unknown preset {config!r} for {cls.__name__}{did_you_mean(config, list(presets))}; "
                              f"choose one of {sorted(presets)}")
        return presets[config]
    raise ConfigError(f"expected a preset name or a {cls.__name__}, got {type(config).__name__}")
