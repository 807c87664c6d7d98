"""The Detector base class: scikit-learn conventions plus a pickle-free checkpoint format.

- Hyperparameters are the explicit arguments of `__init__` and nothing else (`get_params` reads them back
  from the signature); fitted state lives in attributes ending in `_`.
- `fit(images, labels, val_images=None, val_labels=None) -> self`; `predict_proba(images)` gives P(fake) as a
  1-D array `[N]` (not scikit-learn's `[N,2]`: a detector has one question to answer); `score_samples` is the
  same score; `predict` applies `threshold_`.
- `threshold_` is calibrated on validation reals (training reals when no validation set is given) so that
  about `target_fpr` of real images are flagged. Fitting it on reals only means it needs no fakes from the
  generator it will meet, and AUC-perfect but miscalibrated detectors show up as poor accuracy.
- `save(dir)` writes `config.json` (name, params, JSON-able fitted attributes, versions) and
  `weights.safetensors` (every array); `load(dir)` rebuilds the detector. No pickle anywhere.

Images in and out are uint8 RGB numpy arrays `[N,H,W,3]`, one size per batch.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from forensics.data.media import write_bytes_atomic

FORMAT = "forensics-detector/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


class NotFittedError(RuntimeError):
    """Raised when a detector is used before `fit` (or `load`)."""


def as_image_batch(images: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Validate and stack images into one uint8 array.  # -> [N,H,W,3]"""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("empty image list")
        shapes = {np.asarray(im).shape for im in images}
        if len(shapes) > 1:
            raise ValueError(f"one image size per batch, got {sorted(shapes)}: resize first")
        images = np.stack([np.asarray(im) for im in images])
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images [N,H,W,3], got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return images


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One image to (H, W) with area interpolation (returned as is when already that size)."""
    import cv2

    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def resize_batch(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a batch to (H, W) with area interpolation (no-op when already that size).  # [N,h,w,3] -> [N,H,W,3]"""
    if images.shape[1:3] == tuple(size):
        return images
    return np.stack([resize_image(im, size) for im in images])


def grayscale(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma in float32, 0..255.  # [N,H,W,3] uint8 -> [N,H,W] float32"""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return images.astype(np.float32) @ weights


def map_in_chunks(fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                  pixels_per_chunk: int = 1 << 19) -> np.ndarray:
    """fn over consecutive slices of the batch, concatenated. [N,H,W,...] -> [N,...]

    The frequency features run several full passes (luma, transform, power, log) over float64 arrays; slices of
    ~0.5 M pixels (4 MB of float64) keep each pass in cache (`benchmarks/bench_features.py` times the result)."""
    n, h, w = images.shape[:3]
    step = max(1, pixels_per_chunk // (h * w))
    if n <= step:
        return fn(images)
    return np.concatenate([fn(images[i:i + step]) for i in range(0, n, step)])


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
        return True
    except (TypeError, ValueError):
        return False


def versions() -> dict[str, str]:
    """Versions of the packages that shape a detector's numbers (for checkpoints and report provenance)."""
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("deepfake-forensics", "numpy", "torch", "timm", "scikit-learn", "opencv-python-headless",
                "albumentations", "safetensors", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_checkpoint(directory: str | Path, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """`config.json` + `weights.safetensors` (tagged with the config's format) into `directory`, each atomically."""
    from safetensors.numpy import save as st_save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(directory / WEIGHTS_FILE, st_save(arrays, metadata={"format": config["format"]}))
    write_bytes_atomic(directory / CONFIG_FILE, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    return directory


def read_checkpoint_config(directory: str | Path, fmt: str, what: str,
                           required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The `config.json` of a checkpoint folder, refused unless it is a JSON object declaring format `fmt` with
    the `required` keys (CheckpointError naming the file; a missing config is also a FileNotFoundError)."""
    from forensics.modelfiles import CheckpointError, MissingModelFile, read_json_object

    directory = Path(directory)
    cfg_path = directory / CONFIG_FILE
    if not cfg_path.is_file():
        raise MissingModelFile(f"{directory}: not a {what} (no {CONFIG_FILE}){_pickles_hint(directory)}")
    config = read_json_object(cfg_path, what=f"{what} config")
    if config.get("format") != fmt:
        raise CheckpointError(f"{cfg_path}: unknown format {config.get('format')!r}, expected {fmt!r}")
    missing = [k for k in required if k not in config]
    if missing:
        raise CheckpointError(f"{cfg_path}: {what} config lacks {missing}")
    return config


def _pickles_hint(directory: Path) -> str:
    """When a folder holds pickle-format weights instead, say so (they are refused, never loaded)."""
    from forensics.modelfiles import PICKLE_SUFFIXES

    if not directory.is_dir():
        return ""
    found = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)[:3]
    return f"; it holds {found}: pickle-based formats are refused, never unpickled" if found else ""


def read_checkpoint_weights(directory: str | Path) -> dict[str, np.ndarray]:
    """The checked arrays of a checkpoint folder's `weights.safetensors` (see forensics.modelfiles)."""
    from forensics.modelfiles import MissingModelFile, read_safetensors

    directory = Path(directory)
    path = directory / WEIGHTS_FILE
    if not path.exists():
        raise MissingModelFile(f"{path}: missing{_pickles_hint(directory)}")
    tensors, _ = read_safetensors(path, "numpy")
    return tensors


class Detector:
    """Base class; subclasses implement `_fit`, `_predict_proba` and (if they hold more than arrays and
    JSON-able values in `*_` attributes) `_extra_tensors` / `_restore_extra`."""

    name: ClassVar[str] = ""

    # ------------------------------------------------------------------ params (scikit-learn style)
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD]

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fit / predict
    def fit(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        val_images: np.ndarray | None = None,
        val_labels: np.ndarray | None = None,
    ) -> "Detector":
        """Train on `images [N,H,W,3]` with `labels [N]` (0 real / 1 fake), then calibrate `threshold_`."""
        from forensics.metrics import threshold_at_fpr

        images = as_image_batch(images)
        labels = np.asarray(labels).astype(np.int64).ravel()
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        if not (labels == 0).any() or not (labels == 1).any():
            raise ValueError("training needs both reals (label 0) and fakes (label 1)")
        has_val = val_images is not None and val_labels is not None
        if has_val:
            val_images = as_image_batch(val_images)
            val_labels = np.asarray(val_labels).astype(np.int64).ravel()
        self.image_size_ = [int(images.shape[1]), int(images.shape[2])]
        self._fit(images, labels, val_images if has_val else None, val_labels if has_val else None)
        if has_val and (val_labels == 0).any():
            real_scores, self.threshold_source_ = self.predict_proba(val_images[val_labels == 0]), "val"
        else:
            real_scores, self.threshold_source_ = self.predict_proba(images[labels == 0]), "train"
        self.threshold_ = threshold_at_fpr(real_scores, self.target_fpr)
        self.n_train_ = int(labels.size)
        return self

    def _prepare(self, images: np.ndarray) -> np.ndarray:
        """Validate a batch and bring it to the training size (area resize; documented, not silent: the
        detector's artifacts live at the training resolution)."""
        self._check_fitted()
        return resize_batch(as_image_batch(images), tuple(self.image_size_))

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """P(fake) per image.  # [N,H,W,3] uint8 -> [N] float64"""
        return np.asarray(self._predict_proba(self._prepare(images)), dtype=np.float64)

    def score_samples(self, images: np.ndarray) -> np.ndarray:
        """Same as `predict_proba`: higher means more likely fake.  # [N] float64"""
        return self.predict_proba(images)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """1 (fake) where P(fake) > `threshold_`.  # [N] int64"""
        return (self.predict_proba(images) > self.threshold_).astype(np.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "image_size_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    # ------------------------------------------------------------------ subclass hooks
    def _fit(self, images: np.ndarray, labels: np.ndarray, val_images: np.ndarray | None,
             val_labels: np.ndarray | None) -> None:
        raise NotImplementedError

    def _predict_proba(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _extra_tensors(self) -> dict[str, np.ndarray]:
        """Arrays of fitted state not stored as numpy `*_` attributes (e.g. a torch model's state dict)."""
        return {}

    def _restore_extra(self, tensors: dict[str, np.ndarray]) -> None:
        """Rebuild non-array fitted state from the tensors `_extra_tensors` wrote."""

    # ------------------------------------------------------------------ persistence
    def _fitted_items(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = {}, {}
        for key, value in vars(self).items():
            if not key.endswith("_") or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray):
                arrays[f"attr.{key}"] = np.ascontiguousarray(value)
            elif isinstance(value, np.generic):
                meta[key] = value.item()
            elif _jsonable(value):
                meta[key] = value
        return meta, arrays

    def save(self, directory: str | Path) -> Path:
        """Write `config.json` + `weights.safetensors` into `directory` (created; files replaced atomically)."""
        self._check_fitted()
        meta, arrays = self._fitted_items()
        arrays.update({f"extra.{k}": np.ascontiguousarray(v) for k, v in self._extra_tensors().items()})
        config = {"format": FORMAT, "detector": self.name, "params": self.get_params(), "fitted": meta,
                  "versions": versions()}
        return write_checkpoint(directory, config, arrays)

    def _check_checkpoint(self, extra: dict[str, np.ndarray], source: Path) -> None:
        """Refuse (CheckpointError naming `source`) fitted state that contradicts the config, before any tensor
        is used. The base checks what every image detector has; subclasses add their own shapes."""
        from forensics.modelfiles import CheckpointError, check_finite_numbers, int_list

        int_list(source, getattr(self, "image_size_", None), "fitted image_size_", 2, high=4096)
        threshold = getattr(self, "threshold_", None)
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
            raise CheckpointError(f"{source}: fitted threshold_ must be a number, got {threshold!r}")
        check_finite_numbers(source, threshold, "fitted threshold_")

    @classmethod
    def load(cls, directory: str | Path) -> "Detector":
        """Rebuild a saved detector. Called on the base class it dispatches on the saved name.

        Every file is checked first (forensics.modelfiles): a pickle, a corrupt safetensors header, NaN weights,
        or a config whose shapes disagree with the weights raise CheckpointError naming the file."""
        from forensics.detectors import get_class
        from forensics.modelfiles import CheckpointError, require_mapping

        directory = Path(directory)
        cfg_path = directory / CONFIG_FILE
        config = read_checkpoint_config(directory, FORMAT, "saved detector", ("detector", "params", "fitted"))
        params, fitted = require_mapping(cfg_path, config, "params"), require_mapping(cfg_path, config, "fitted")
        try:
            target = get_class(str(config["detector"]))
        except ValueError as exc:
            raise CheckpointError(f"{cfg_path}: {exc}") from None
        if cls is not Detector and not issubclass(target, cls):
            raise TypeError(f"{directory} holds a {target.__name__}, not a {cls.__name__}")
        unknown = set(params) - set(target._param_names())
        if unknown:
            raise CheckpointError(f"{cfg_path}: unknown hyperparameters {sorted(unknown)}")
        odd = sorted(k for k in fitted if not _is_fitted_name(k))
        if odd:
            raise CheckpointError(f"{cfg_path}: fitted entries {odd[:5]} are not fitted attributes (name_)")
        tensors = read_checkpoint_weights(directory)
        source = directory / WEIGHTS_FILE
        det = target(**params)
        for key, value in fitted.items():
            setattr(det, key, value)
        extra = {}
        for key, value in tensors.items():
            kind, _, attr = key.partition(".")
            if kind == "attr" and _is_fitted_name(attr):
                setattr(det, attr, value)
            elif kind == "extra" and attr:
                extra[attr] = value
            else:
                raise CheckpointError(f"{source}: unexpected tensor {key!r} (expected attr.<name_> or extra.<name>)")
        det._check_checkpoint(extra, source)
        det._restore_extra(extra)
        return det


def _is_fitted_name(name: str) -> bool:
    """A fitted attribute as `save` writes it: an identifier ending in `_`, not private."""
    return name.isidentifier() and name.endswith("_") and not name.startswith("_")
