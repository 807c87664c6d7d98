"""A classical face swap that no zoo member makes: one person's face Poisson-blended onto another's, no network.

Both inputs are crops aligned by the same five-point template, so their faces sit at the same place and the
face region of one fits the other. OpenCV's `seamlessClone` solves the Poisson equation so the pasted face
takes the target's lighting at its border (Pérez et al. 2003): what is left is the manipulation itself (a
foreign face, a gradient-domain seam), not a generator's fingerprint. Used as an *unseen manipulation* test.
"""
from __future__ import annotations

import cv2
import numpy as np

from forensics.data.faces import template_points
from generators.merge import face_region_mask


def poisson_swap(target: np.ndarray, source: np.ndarray, margin: float = 0.25, erode: int = 3) -> np.ndarray:
    """`source`'s face cloned into `target` (both aligned crops of one size).  # [S,S,3] uint8 x2 -> [S,S,3]"""
    if target.shape != source.shape or target.ndim != 3 or target.shape[0] != target.shape[1]:
        raise ValueError(f"poisson_swap needs two square crops of one size, got {target.shape} and {source.shape}")
    size = target.shape[0]
    mask = face_region_mask(template_points(size, margin), size)
    mask = cv2.erode((mask * 255).astype(np.uint8), np.ones((erode, erode), np.uint8))
    ys, xs = np.nonzero(mask)
    # seamlessClone places the mask's bounding-box centre at `centre`: the box's own centre keeps it in place.
    centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    # (a copy of the mask: OpenCV alters the one it is given)
    out = cv2.seamlessClone(np.ascontiguousarray(source), np.ascontiguousarray(target), mask.copy(), centre,
                            cv2.NORMAL_CLONE)
    # OpenCV's solver also nudges a few pixels around the mask: keep the target exactly there, so the swap's
    # region is the mask and nothing else.
    out[mask == 0] = target[mask == 0]
    return out
