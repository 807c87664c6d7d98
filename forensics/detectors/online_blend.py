"""Self-blends drawn afresh in every training batch, as SBI trains (Shiohara & Yamasaki, CVPR 2022).

A fixed set of blends is seen a few times and is outnumbered by easy zoo fakes, so a CNN trained on it can
separate classes by who or which camera is in the crop. Blending a batch's own reals gives every real a fake
twin of the same person, frame and camera, different only by a blending boundary, and a new twin each epoch:
the one cue left that tells them apart is the boundary every face swap leaves.

Crops are the scan's aligned faces, so the alignment template's five points stand in for landmarks (the blend
jitters its outline anyway).
"""
from __future__ import annotations

import numpy as np


def blend_reals(images: np.ndarray, labels: np.ndarray, p: float, rng: np.random.Generator,
                margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Each real (label 0) replaced, with probability `p`, by a self-blend of itself labelled fake (1).
    Returns new arrays; the inputs are not changed.  # [N,S,S,3] uint8, [N] -> same shapes"""
    from forensics.data.faces import template_points
    from generators.blend import self_blend

    out, new_labels = images.copy(), labels.copy()
    picked = np.flatnonzero((labels == 0) & (rng.random(len(labels)) < p))
    landmarks = template_points(images.shape[1], margin)
    for i in picked:
        out[i] = self_blend(images[i], landmarks, int(rng.integers(2**31)))[0]
        new_labels[i] = 1
    return out, new_labels


def expected_balance(labels: np.ndarray, p: float) -> np.float64:
    """Reals per fake once a share `p` of the reals is blended: the loss's positive weight (a float64, as the
    CNN's weight always was, so p = 0 trains exactly as before)."""
    reals = np.float64((labels == 0).sum()) * (1.0 - p)
    fakes = np.float64((labels == 1).sum()) + np.float64((labels == 0).sum()) * p
    return np.float64(reals / max(1.0, fakes))
