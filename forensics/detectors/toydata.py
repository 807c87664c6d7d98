"""Toy data with known up-sampling artifacts, for tests and smoke runs of detectors and the benchmark.

Reals are smooth random colour textures plus fine sensor-like noise (a white high-frequency floor). Each toy
"generator" renders a texture at half resolution and up-samples it the way a GAN layer would, leaving the
periodic trace frequency detectors look for:
- "nearest": nearest-neighbour x2 (2x2 blocks: energy at the Nyquist frequencies),
- "transposed": zero insertion + a fixed 3x3 kernel (a transposed convolution with uneven overlap: the
  classic checkerboard),
- "bilinear": bilinear x2 (a missing high-frequency band rather than a peak).
Fakes get the same fine noise as reals afterwards, so only the up-sampling trace differs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TOY_GENERATORS = ("nearest", "transposed", "bilinear")
_NOISE = 3.0


def textures(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Smooth random colour fields in 0..255 float32 (bicubic up-sampling of coarse noise).  # [N,S,S,3]"""
    import cv2

    coarse = rng.normal(size=(n, max(2, size // 8), max(2, size // 8), 3)).astype(np.float32)
    fields = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in coarse])
    return fields * 45.0 + 128.0


def _finish(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x + rng.normal(0.0, _NOISE, size=x.shape)), 0, 255).astype(np.uint8)


def real_images(rng: np.random.Generator, n: int, size: int = 32) -> np.ndarray:
    """Toy reals.  # -> [N,S,S,3] uint8"""
    return _finish(rng, textures(rng, n, size))


def fake_images(rng: np.random.Generator, n: int, size: int = 32, generator: str = "nearest") -> np.ndarray:
    """Toy fakes of one up-sampling kind.  # -> [N,S,S,3] uint8"""
    import cv2

    half = textures(rng, n, size // 2)  # [N,S/2,S/2,3]
    if generator == "nearest":
        up = half.repeat(2, axis=1).repeat(2, axis=2)
    elif generator == "transposed":
        up = np.zeros((n, size, size, 3), np.float32)
        up[:, ::2, ::2] = half * 4.0  # zero insertion, gain 4 to keep the mean
        kernel = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], np.float32) / 4.0
        kernel[1, 1] *= 1.35  # uneven overlap: the centre tap over-weights, leaving a checkerboard
        up = np.stack([cv2.filter2D(im, -1, kernel, borderType=cv2.BORDER_REFLECT) for im in up])
    elif generator == "bilinear":
        up = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in half])
    else:
        raise ValueError(f"unknown toy generator {generator!r}; choose from {TOY_GENERATORS}")
    return _finish(rng, up)


def write_toy_dataset(
    root: str | Path,
    n_real: int = 60,
    n_fake_per_generator: int = 60,
    size: int = 32,
    generators: tuple[str, ...] = ("nearest", "transposed"),
    seed: int = 0,
    fractions: dict[str, float] | None = None,
) -> Path:
    """Write PNGs and a split manifest (`manifest.parquet`) under `root`; returns the manifest path."""
    from forensics.data.manifest import assign_group_splits, new_row, sha256_file, to_frame, write_manifest
    from forensics.data.media import write_image

    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    batches = [("real", real_images(rng, n_real, size))]
    batches += [(g, fake_images(rng, n_fake_per_generator, size, g)) for g in generators]
    for gen, images in batches:
        (root / gen).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            rel = f"{gen}/{i:05d}.png"
            write_image(root / rel, img)
            sid = f"{gen}-{i:05d}"
            rows.append(new_row(sample_id=sid, path=rel, sha256=sha256_file(root / rel), label=int(gen != "real"),
                                media="image", generator=gen, group_id=sid, seed=seed, width=size, height=size,
                                generator_config={"toy": gen} if gen != "real" else {}))
    df = assign_group_splits(to_frame(rows), fractions or {"train": 0.5, "val": 0.2, "test": 0.3}, seed=seed)
    path = root / "manifest.parquet"
    write_manifest(df, path)
    return path
