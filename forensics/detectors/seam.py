"""Seam detector: where in the aligned face the local image statistics change.

A blended or swapped face is two images joined along a seam: the pasted face has its own sharpness, noise and
colour, the frame around it another. In an aligned crop the face sits at a fixed place, so the *map* of local
statistics says where such a change happens. The global detectors do not see it: the DCT and the power spectrum
pool the whole crop, and a real face resampled as a whole (the release dataset's twins) has the same global
sharpness change as a blurred pasted face.

Features, per 8x8-pixel cell of the crop (16x16 cells at 128 px):
  * the log energy of three luma bands (fine residual, mid band, Sobel gradient) and of the chroma gradient;
  * the mean luma and chroma (Cb, Cr), the colour a pasted face carries with it.
Each map has its image mean taken off, so only how the cells differ from each other is left: a crop that is
blurred, JPEG-compressed or darkened as a whole moves every cell alike. A standardiser and a logistic regression
follow (`LinearFeatureDetector`), as for the DCT detector.
"""
from __future__ import annotations

import numpy as np

from forensics.detectors.base import map_in_chunks
from forensics.detectors.linear import LinearFeatureDetector

_LOG_EPS = 1e-2  # keeps flat cells (a saturated background) from dominating the log scale
_ENERGY_MAPS = ("fine", "mid", "gradient", "chroma_gradient")
_COLOUR_MAPS = ("luma", "cb", "cr")
MAPS = _ENERGY_MAPS + _COLOUR_MAPS


def _box(x: np.ndarray, k: int) -> np.ndarray:
    """k x k box mean over the last two axes, edges replicated.  # [N,H,W] -> [N,H,W]"""
    from scipy.ndimage import uniform_filter

    return uniform_filter(x, size=(1, k, k), mode="nearest")


def _gradient(x: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude over the last two axes.  # [N,H,W] -> [N,H,W]"""
    from scipy.ndimage import sobel

    return np.hypot(sobel(x, axis=-1, mode="nearest"), sobel(x, axis=-2, mode="nearest"))


def _cells(x: np.ndarray, cell: int) -> np.ndarray:
    """Mean over each cell x cell block.  # [N,H,W] -> [N,H//cell,W//cell]"""
    n, h, w = x.shape
    gh, gw = h // cell, w // cell
    return x[:, : gh * cell, : gw * cell].reshape(n, gh, cell, gw, cell).mean(axis=(2, 4))


def seam_maps(images: np.ndarray, cell: int = 8) -> np.ndarray:
    """The per-cell statistics, each map less its image mean.  # [N,H,W,3] uint8 -> [N,len(MAPS),H//cell,W//cell]"""
    rgb = images.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b  # ITU-R BT.601, as JPEG's YCbCr
    cb = 0.5 + (b - luma) * 0.564
    cr = 0.5 + (r - luma) * 0.713
    blur3 = _box(luma, 3)
    energies = {
        "fine": np.abs(luma - blur3),
        "mid": np.abs(blur3 - _box(luma, 9)),
        "gradient": _gradient(luma),
        "chroma_gradient": np.hypot(_gradient(cb), _gradient(cr)),
    }
    half = cell // 2
    maps = [np.log(_cells(energies[name], half) + _LOG_EPS) for name in _ENERGY_MAPS]
    maps += [_cells(plane, half) for plane in (luma, cb, cr)]
    fine = np.stack(maps, axis=1)  # [N,M,2gh,2gw], half-cell resolution
    n, m, h2, w2 = fine.shape
    signed = _cells(fine.reshape(n * m, h2, w2), 2).reshape(n, m, h2 // 2, w2 // 2)
    signed = signed - signed.mean(axis=(2, 3), keepdims=True)
    # How sharply each statistic changes between neighbouring half-cells, whatever its sign: a pasted face may be
    # blurrier or sharper, darker or brighter than its frame, and a linear head cannot see a change of either sign
    # in the signed maps (their mean shift is zero), but it sees the step's size.
    dx = np.zeros_like(fine)
    dy = np.zeros_like(fine)
    dx[..., :, 1:] = fine[..., :, 1:] - fine[..., :, :-1]
    dy[..., 1:, :] = fine[..., 1:, :] - fine[..., :-1, :]
    step = np.hypot(dx, dy).reshape(n * m, h2, w2)
    step = _cells(step, 2).reshape(n, m, h2 // 2, w2 // 2)
    return np.concatenate([signed, step], axis=1)


def seam_features(images: np.ndarray, cell: int = 8) -> np.ndarray:
    """The maps, flattened.  # [N,H,W,3] uint8 -> [N,len(MAPS)*(H//cell)*(W//cell)] float32"""
    return map_in_chunks(lambda chunk: seam_maps(chunk, cell).reshape(len(chunk), -1).astype(np.float32), images)


class SeamDetector(LinearFeatureDetector):
    """Per-cell local statistics of the aligned crop -> standardiser -> logistic regression (or linear SVM)."""

    name = "seam"

    def __init__(
        self,
        cell: int = 8,
        classifier: str = "logreg",
        C: float = 0.1,
        augment: str = "none",
        target_fpr: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.cell = cell
        self.classifier = classifier
        self.C = C
        self.augment = augment
        self.target_fpr = target_fpr
        self.seed = seed

    def features(self, images: np.ndarray) -> np.ndarray:
        if self.cell < 2:
            raise ValueError(f"cell must be at least 2 px, got {self.cell}")
        return seam_features(images, self.cell)
