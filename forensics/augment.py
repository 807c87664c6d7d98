"""Two kinds of image post-processing, kept apart on purpose:

(a) Training augmentation presets (random, albumentations 2.x) that teach a detector to survive compression
    and blur: `none`, `blurjpeg0.1`, `blurjpeg0.5` (Wang et al. 2020, "CNN-generated images are surprisingly
    easy to spot... for now": Gaussian blur sigma ~ U[0, 3] and JPEG quality ~ U{30..100}, each applied
    independently with probability 0.1 or 0.5), `postproc` (the chain analysts' media go through: down-and-up
    resize, blur, noise, JPEG, each with probability 0.5, in that order), `camera` (postproc preceded by what
    cameras do before that chain: in-camera sharpening and a colour/exposure shift) and `strong`. Every preset is
    drawn per image without looking at its label, so reals and fakes share one processing history.
(b) Evaluation-time robustness perturbations: named, deterministic, recorded. `perturb(img, "jpeg75")`
    returns the perturbed uint8 image and a JSON-able record of exactly what was done.

Images are uint8 RGB numpy arrays `[H,W,3]` (one image) or `[N,H,W,3]` (a batch).
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

TRAIN_PRESETS: tuple[str, ...] = ("none", "flip", "blurjpeg0.1", "blurjpeg0.5", "postproc", "camera", "strong")
PRESET_ALIASES: dict[str, str] = {"blurjpeg": "blurjpeg0.1"}

# The standard robustness sweep; parametrised variants (jpeg60, blur2, resize0.25, noise10) are accepted too.
PERTURBATIONS: tuple[str, ...] = ("jpeg95", "jpeg75", "jpeg50", "jpeg30", "blur1", "resize0.5", "noise")
CLEAN = "none"
NOISE_DEFAULT_SIGMA = 5.0  # in 0..255 units


def _did_you_mean(name: str, options: Sequence[str], what: str) -> ValueError:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown {what} {name!r}.{hint} Known: {', '.join(options)}")


# --------------------------------------------------------------------------------------------- (a) training


def _albumentations():
    """Import albumentations without its start-up version check, which would reach out to pypi.org."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations


def training_transform(preset: str, seed: int | None = None):
    """An `albumentations.Compose` for a preset name (None for "none"). Seeded: the same seed replays the same
    random stream, so a training run is reproducible."""
    A = _albumentations()

    name = PRESET_ALIASES.get(preset, preset)
    if name not in TRAIN_PRESETS:
        raise _did_you_mean(preset, TRAIN_PRESETS + tuple(PRESET_ALIASES), "augmentation preset")
    if name == "none":
        return None
    flip = A.HorizontalFlip(p=0.5)
    if name == "flip":
        steps = [flip]
    elif name.startswith("blurjpeg"):
        p = float(name[len("blurjpeg"):])
        # blur_limit=0: kernel size follows sigma (PIL-compatible); sigma 0 gives the identity kernel.
        steps = [
            flip,
            A.GaussianBlur(sigma_limit=(0.0, 3.0), blur_limit=0, p=p),
            A.ImageCompression(compression_type="jpeg", quality_range=(30, 100), p=p),
        ]
    elif name in ("postproc", "camera"):
        # What happens to media between camera and analyst: rescaling, softening, sensor/transcode noise, and
        # JPEG last (sharing platforms re-encode after resizing). A detector that meets this on both classes
        # cannot use "processed = fake" as its rule.
        steps = [
            flip,
            A.Downscale(scale_range=(0.25, 0.9), p=0.5),
            A.GaussianBlur(sigma_limit=(0.0, 2.0), blur_limit=0, p=0.5),
            A.GaussNoise(std_range=(0.0, 0.03), p=0.5),
            A.ImageCompression(compression_type="jpeg", quality_range=(30, 100), p=0.5),
        ]
        if name == "camera":
            # postproc only ever softens, so a sharp real camera lies outside everything a detector trained on
            # soft video frames has seen. Sharpening at alpha 0.1-0.5 takes a webcam crop's Laplacian variance
            # from ~130 to ~1,200, the range of a sharp still. (Tried for issue 18's held-out pexels_woman, the
            # sharpest person in the corpus: it did not help her, reports/release/probe/camera.json; the cause
            # was StyleGAN2's copies of her, see forensics/release/folds.py.)
            steps[1:1] = [
                A.Sharpen(alpha=(0.1, 0.5), lightness=(0.9, 1.1), p=0.3),
                A.ColorJitter(brightness=(0.8, 1.2), contrast=(0.8, 1.2), saturation=(0.7, 1.3), hue=(-0.03, 0.03),
                              p=0.3),
            ]
    else:  # strong: geometry, colour, resampling, blur, noise and compression
        steps = [
            flip,
            A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), p=0.3),
            A.ColorJitter(brightness=(0.8, 1.2), contrast=(0.8, 1.2), saturation=(0.8, 1.2), hue=(-0.03, 0.03), p=0.3),
            A.Downscale(scale_range=(0.5, 0.9), p=0.1),
            A.GaussianBlur(sigma_limit=(0.0, 3.0), blur_limit=0, p=0.3),
            A.GaussNoise(std_range=(0.0, 0.04), p=0.2),
            A.ImageCompression(compression_type="jpeg", quality_range=(30, 100), p=0.5),
        ]
    return A.Compose(steps, seed=seed)


def apply_training_transform(transform, images: np.ndarray) -> np.ndarray:
    """Run a training transform over a batch; identity when `transform` is None.  # [N,H,W,3] -> [N,H,W,3]"""
    if transform is None:
        return images
    return np.stack([transform(image=img)["image"] for img in images])


# ----------------------------------------------------------------------------------------- (b) evaluation

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("jpeg", re.compile(r"^jpeg(\d{1,3})$")),
    ("blur", re.compile(r"^blur(\d+(?:\.\d+)?)$")),
    ("resize", re.compile(r"^resize(0?\.\d+)$")),
    ("noise", re.compile(r"^noise(\d+(?:\.\d+)?)?$")),
)


def parse_perturbation(name: str) -> tuple[str, float]:
    """"jpeg75" -> ("jpeg", 75.0); "none" -> ("none", 0.0). Raises with suggestions for unknown names."""
    if name == CLEAN:
        return CLEAN, 0.0
    for op, pat in _PATTERNS:
        m = pat.match(name)
        if m:
            value = float(m.group(1)) if m.group(1) else NOISE_DEFAULT_SIGMA
            if op == "jpeg" and not 1 <= value <= 100:
                raise ValueError(f"JPEG quality must be 1..100 in {name!r}")
            if op == "resize" and not 0 < value < 1:
                raise ValueError(f"resize factor must be in (0, 1) in {name!r}")
            return op, value
    raise _did_you_mean(name, (CLEAN,) + PERTURBATIONS, "perturbation")


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    # OpenCV encodes BGR; converting first keeps the chroma channels where JPEG expects them.
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode JPEG")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    k = int(sigma * 3.5) * 2 + 1  # same kernel-size rule as PIL / albumentations
    return cv2.GaussianBlur(img, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def _resize(img: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def perturb(image: np.ndarray, name: str, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply one named evaluation perturbation to one uint8 RGB image `[H,W,3]`.

    Deterministic: the same (image, name, seed) always gives the same bytes; `seed` only matters for noise.
    Returns (perturbed image, record) where the record names the operation, its parameters and the library."""
    import cv2

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"perturb expects a uint8 RGB image [H,W,3], got {image.dtype} {image.shape}")
    op, value = parse_perturbation(name)
    record: dict[str, Any] = {"name": name, "op": op}
    if op == CLEAN:
        return image, record
    if op == "jpeg":
        out = _jpeg(image, int(value))
        record.update(quality=int(value), library=f"opencv {cv2.__version__}", chroma="opencv default (4:2:0)")
    elif op == "blur":
        out = _blur(image, value)
        record.update(sigma=value, kernel=int(value * 3.5) * 2 + 1, library=f"opencv {cv2.__version__}")
    elif op == "resize":
        out = _resize(image, value)
        record.update(factor=value, down="INTER_AREA", up="INTER_LINEAR", library=f"opencv {cv2.__version__}")
    else:
        out = _noise(image, value, seed)
        record.update(sigma=value, seed=int(seed), distribution="gaussian, 0..255 units, rounded and clipped")
    return out, record


def perturb_batch(
    images: np.ndarray, name: str, seeds: Sequence[int] | None = None
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """`perturb` over a batch `[N,H,W,3]`; `seeds[i]` seeds image i (default: its index)."""
    seeds = list(range(len(images))) if seeds is None else list(seeds)
    if len(seeds) != len(images):
        raise ValueError("need one seed per image")
    pairs = [perturb(img, name, int(s)) for img, s in zip(images, seeds)]
    if not pairs:
        return images, []
    return np.stack([p[0] for p in pairs]), [p[1] for p in pairs]


def stable_seed(key: str, base_seed: int = 0) -> int:
    """A per-sample seed from its id, independent of row order (so adding samples changes no other sample)."""
    import hashlib

    digest = hashlib.sha256(f"{base_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


