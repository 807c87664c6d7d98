"""Untrusted model files: a safetensors file and its JSON config are checked before any tensor is used.

A detector, attributor, fusion model, bundle or generator checkpoint may come from anyone. Whatever is wrong
with it must stop the load with one `CheckpointError` that names the file and the reason, never a traceback from
deep inside numpy or torch, and never a pickle executed.

What the safetensors library itself refuses when it parses a header (`safe_open`), and is *not* re-checked
here: a length prefix past the end of the file or over its 100 MB limit, a header that is not JSON or not an
object, an unknown dtype name, negative shapes, offsets outside the data, overlapping or leaving gaps, a byte
size that does not match shape x dtype, trailing or missing data. Its messages are kept, prefixed with the file.

What the library lets through and this module adds:
- pickles: a `.pt/.pth/.pkl/.bin/...` file, or bytes that start like a pickle or a `torch.save` zip archive, are
  refused by name before parsing (the library would only say "header too large");
- bounds read from the 8-byte prefix before the header is read: at most `MAX_HEADER_BYTES` of header (a 100 MB
  header costs 100 MB of memory and a slow parse before the library refuses it) and at most `MAX_TENSORS`;
- dtypes outside `NUMPY_DTYPES` (bfloat16 and the float8/4/6 types parse, then fail in numpy with a bare
  KeyError);
- NaN or infinite weights: **refused**, not warned about. A trained detector never holds them, and a NaN
  weight makes every score NaN, which every comparison with a threshold turns into "no sign of
  manipulation": a silent wrong verdict, the worst outcome a forensic tool can have;
- JSON configs that are not objects, lack required keys, or are too large to be a config;
- shape checks against the config (`check_shapes`), used by each loader for what its config promises.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

MAX_HEADER_BYTES = 16 * 1024 * 1024  # the largest header we write (a GAN training state) is well under 1 MB
MAX_TENSORS = 100_000
MAX_JSON_BYTES = 16 * 1024 * 1024
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib", ".npy", ".npz"})
NUMPY_DTYPES = frozenset({"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F16", "F32", "F64"})
TORCH_DTYPES = NUMPY_DTYPES | {"BF16"}
_FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})


class CheckpointError(ValueError):
    """A model file that is missing, malformed, not safetensors, or inconsistent with its config. The message
    names the file and the reason, on one line."""


class MissingModelFile(CheckpointError, FileNotFoundError):
    """A required model file is absent (still a FileNotFoundError for callers that test for one)."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header declares it."""

    dtype: str
    shape: tuple[int, ...]


def pickle_kind(head: bytes) -> str | None:
    """What a file that starts with `head` is, if it is one of the pickle-based formats; None otherwise."""
    if head[:4] == b"PK\x03\x04":
        return "a zip archive, as torch.save writes, holding a pickle"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return f"a pickle, protocol {head[1]}, as pickle, joblib or an old torch.save write"
    if head[:6] == b"\x93NUMPY":
        return "a numpy .npy file, which may hold pickled objects"
    return None


def _refuse_pickle_suffix(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: pickle-based checkpoint formats ({path.suffix}) are refused, never "
                              "unpickled; convert the weights to .safetensors")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_safetensors_header(path: str | Path, allowed_dtypes: Iterable[str] = NUMPY_DTYPES,
                            max_header_bytes: int = MAX_HEADER_BYTES,
                            max_tensors: int = MAX_TENSORS) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Check a safetensors file without reading any tensor -> ({name: TensorInfo}, metadata).

    The bounds are checked from the length prefix before the header is read; then the library parses and
    validates the header (offsets, sizes, dtypes); then the dtypes are checked against `allowed_dtypes`."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    hint = f"{path}: not a safetensors file; checkpoints are loaded as safetensors only and pickles are never unpickled"
    _refuse_pickle_suffix(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder where a safetensors file is expected")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            size = path.stat().st_size
    except FileNotFoundError:
        raise MissingModelFile(f"{path}: missing") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    kind = pickle_kind(head)
    if kind:
        raise CheckpointError(f"{hint} (it is {kind})")
    if len(head) < 8:
        raise CheckpointError(f"{hint} (file is {len(head)} bytes)")
    (n_header,) = struct.unpack("<Q", head)
    if n_header > max_header_bytes:
        raise CheckpointError(f"{path}: safetensors header of {n_header} bytes exceeds the {max_header_bytes}-byte "
                              f"bound (file is {size} bytes); refused before reading it")
    try:
        with safe_open(str(path), framework="numpy") as f:
            names = list(f.keys())
            metadata = dict(f.metadata() or {})
    except SafetensorError as exc:
        raise CheckpointError(f"{path}: damaged or not a safetensors file, refused ({_one_line(exc)})") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(names) > max_tensors:
        raise CheckpointError(f"{path}: {len(names)} tensors exceed the bound of {max_tensors}")
    with path.open("rb") as fh:  # the library validated it; read the raw header for dtypes and shapes
        fh.seek(8)
        raw = json.loads(fh.read(n_header))
    allowed = frozenset(allowed_dtypes)
    infos: dict[str, TensorInfo] = {}
    for name in names:
        entry = raw[name]
        if entry["dtype"] not in allowed:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, not one of "
                                  f"{sorted(allowed)}")
        infos[name] = TensorInfo(entry["dtype"], tuple(int(d) for d in entry["shape"]))
    return infos, metadata


def read_safetensors(path: str | Path, framework: str = "numpy") -> tuple[dict[str, Any], dict[str, str]]:
    """Check, then load every tensor of a safetensors file -> ({name: array or tensor}, metadata).

    framework: "numpy" (arrays) or "pt" (CPU torch tensors). Non-finite floating values are refused (see the
    module docstring for why)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if framework not in ("numpy", "pt"):
        raise ValueError(f"framework must be 'numpy' or 'pt', got {framework!r}")
    infos, metadata = read_safetensors_header(path, NUMPY_DTYPES if framework == "numpy" else TORCH_DTYPES)
    tensors: dict[str, Any] = {}
    try:
        with safe_open(str(path), framework=framework, device="cpu") as f:
            for name in infos:
                tensors[name] = f.get_tensor(name)
    except (SafetensorError, OSError) as exc:  # changed on disk since the header check
        raise CheckpointError(f"{path}: damaged safetensors file ({_one_line(exc)})") from None
    for name, info in infos.items():
        if info.dtype in _FLOAT_DTYPES and not _all_finite(tensors[name]):
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or infinite values; refused (a NaN weight "
                                  "turns every score into a silent 'no sign')")
    return tensors, metadata


def _all_finite(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return bool(np.isfinite(value).all())
    import torch

    return bool(torch.isfinite(value).all())


def read_json_object(path: str | Path, required: Iterable[str] = (), what: str = "config") -> dict[str, Any]:
    """A JSON file that must be an object with `required` keys, of bounded size; anything else is refused."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MissingModelFile(f"{path}: missing ({what})") from None
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder where a JSON {what} is expected")
    if size > MAX_JSON_BYTES:
        raise CheckpointError(f"{path}: {size} bytes is too large for a JSON {what} (bound {MAX_JSON_BYTES})")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
        kind = pickle_kind(head)
        if kind:
            raise CheckpointError(f"{path}: not JSON, it is {kind}; refused, never unpickled")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({_one_line(exc)})") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the {what} must be a JSON object, got {type(data).__name__}")
    missing = [k for k in required if k not in data]
    if missing:
        raise CheckpointError(f"{path}: {what} lacks {missing}")
    return data


def require_mapping(source: str | Path, record: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`record[key]`, refused unless it is a JSON object."""
    value = record.get(key)
    if not isinstance(value, dict):
        raise CheckpointError(f"{source}: {key!r} must be a JSON object, got {type(value).__name__}")
    return value


def check_finite_numbers(source: str | Path, record: Any, where: str = "") -> None:
    """Every number in a JSON value (nested lists and objects) must be finite; the first bad one is named."""
    if isinstance(record, bool) or record is None or isinstance(record, str):
        return
    if isinstance(record, (int, float)):
        if not math.isfinite(record):
            raise CheckpointError(f"{source}: {where or 'value'} is {record}; refused (not a finite number)")
        return
    if isinstance(record, Mapping):
        for k, v in record.items():
            check_finite_numbers(source, v, f"{where}.{k}" if where else str(k))
    elif isinstance(record, (list, tuple)):
        for i, v in enumerate(record):
            check_finite_numbers(source, v, f"{where}[{i}]")


def shape_of(value: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in value.shape)


def check_shapes(source: str | Path, expected: Mapping[str, tuple[int, ...]], found: Mapping[str, Any],
                 what: str = "the config") -> None:
    """Every expected tensor present with its expected shape and nothing unexpected; `found` maps names to arrays,
    tensors or shape tuples. The message names the first missing, unexpected or mis-shaped tensor. A scalar may be
    stored as [1] (numpy's `ascontiguousarray` writes 0-d arrays so; torch's `load_state_dict` accepts it)."""
    shapes = {k: (tuple(v) if isinstance(v, tuple) else shape_of(v)) for k, v in found.items()}
    missing = [k for k in expected if k not in shapes]
    if missing:
        raise CheckpointError(f"{source}: missing tensor(s) {missing[:5]} that {what} needs"
                              + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
    unexpected = [k for k in shapes if k not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensor(s) {unexpected[:5]} not in {what}"
                              + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else ""))
    for name, shape in expected.items():
        if shapes[name] != tuple(shape) and not (tuple(shape) == () and shapes[name] == (1,)):
            raise CheckpointError(f"{source}: tensor {name!r} has shape {list(shapes[name])} but {what} "
                                  f"needs {list(shape)}")


def check_standardised_head(source: str | Path, fitted: Mapping[str, Any], n_features: int, name: str,
                            extra: Mapping[str, Any], more: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """A restored standardiser + linear head (`fitted`: the detector's attributes): its arrays `n_features` long
    (plus `more` shapes), a positive scale (the standardiser divides by it), and no tensor it does not use."""
    arrays = {f"attr.{k}": v for k, v in fitted.items() if isinstance(v, np.ndarray)}
    expected = {"attr.scaler_mean_": (n_features,), "attr.scaler_scale_": (n_features,),
                "attr.coef_": (n_features,), "attr.intercept_": (1,), **(more or {})}
    check_shapes(source, expected, arrays, f"a {name} head on {n_features} features")
    if not (fitted["scaler_scale_"] > 0).all():
        raise CheckpointError(f"{source}: tensor 'attr.scaler_scale_' has entries <= 0 (a standardiser "
                              "divides by it)")
    if extra:
        raise CheckpointError(f"{source}: unexpected tensor(s) {sorted(extra)[:5]} for a {name} detector")


def int_list(source: str | Path, value: Any, name: str, length: int, low: int = 1, high: int = 1 << 16) -> list[int]:
    """A JSON list of `length` integers in [low, high], refused otherwise (e.g. an image size)."""
    ok = (isinstance(value, list) and len(value) == length
          and all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value))
    if not ok:
        raise CheckpointError(f"{source}: {name} must be {length} integers in [{low}, {high}], got {value!r}")
    return list(value)
