"""Training images from a manifest, as one in-memory uint8 tensor (the starter corpus is ~1000 crops: ~12 MB at
64 px), so the training loop can index batches deterministically without worker processes."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from forensics.data.manifest import dataset_root, read_manifest, resolve_paths, sha256_file
from forensics.data.media import MediaError, read_image


class DataError(ValueError):
    """No usable training images."""


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize with area averaging (down) or bicubic (up). [H,W,3] -> [size,size,3]"""
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    rgb = rgb[top:top + s, left:left + s]
    if s == size:
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if size < s else cv2.INTER_CUBIC
    return cv2.resize(rgb, (size, size), interpolation=interp)


def load_image_tensor(manifest_path: str | os.PathLike, resolution: int, splits: tuple[str, ...] = ("train",),
                      label: int = 0) -> torch.Tensor:
    """Real images of the given splits, resized to `resolution`. Unreadable files are reported and skipped.

    Returns uint8 [N,3,R,R]; rows are in manifest order (sorted by sample_id) so the tensor is reproducible."""
    df = read_manifest(manifest_path)
    df = df[(df["label"] == label) & df["split"].isin(splits) & df["media"].isin(("image", "frame"))]
    df = df.sort_values("sample_id", kind="stable")
    if df.empty:
        raise DataError(f"{manifest_path}: no label={label} images in splits {list(splits)}")
    images: list[np.ndarray] = []
    skipped: list[str] = []
    for path in resolve_paths(df, dataset_root(manifest_path)):
        try:
            images.append(resize_square(read_image(path), resolution))
        except MediaError as exc:
            skipped.append(str(exc))
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable images, first: {skipped[0]}")
    if not images:
        raise DataError(f"{manifest_path}: none of the {len(df)} images could be read")
    arr = np.stack(images).transpose(0, 3, 1, 2)  # [N,H,W,3] -> [N,3,H,W]
    return torch.from_numpy(np.ascontiguousarray(arr))


def manifest_fingerprint(manifest_path: str | os.PathLike) -> dict[str, object]:
    """What a checkpoint records about its training data."""
    p = Path(manifest_path)
    return {"manifest": p.as_posix(), "manifest_sha256": sha256_file(p)}
