"""Seam detector: it must see a pasted patch whose sharpness or colour differs from its surround in *either*
direction (the self-blends change the pasted face both ways); a change of the whole crop moves no colour feature."""
from __future__ import annotations

import cv2
import numpy as np

import forensics.detectors as D
from forensics.detectors.seam import MAPS, seam_maps
from forensics.detectors.toydata import real_images
from forensics.metrics import roc_auc


def pasted(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
    """Each image with a central square blurred or sharpened (a coin flip) and shifted in brightness either way."""
    out = images.astype(np.float32)
    for img in out:
        patch = img[16:48, 16:48]
        smooth = cv2.GaussianBlur(patch, (0, 0), 1.5)
        patch[:] = smooth if rng.random() < 0.5 else patch + 1.5 * (patch - smooth)
        patch += rng.choice([-1.0, 1.0]) * 10.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def toy_set(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reals = real_images(rng, n, 64)
    return np.concatenate([reals, pasted(rng, real_images(rng, n, 64))]), np.r_[np.zeros(n, int), np.ones(n, int)]


def test_maps_have_one_signed_and_one_step_plane_per_statistic():
    maps = seam_maps(np.zeros((2, 64, 64, 3), np.uint8), cell=8)
    assert maps.shape == (2, 2 * len(MAPS), 8, 8)
    assert np.allclose(maps[:, : len(MAPS)].mean(axis=(2, 3)), 0.0, atol=1e-6)  # signed maps: image mean taken off


def test_a_brightness_change_of_the_whole_crop_moves_no_feature():
    img = (real_images(np.random.default_rng(3), 1, 64) // 2 + 64).astype(np.uint8)  # 64..191: +20 never clips
    brighter = img + np.uint8(20)
    colour = slice(MAPS.index("luma"), len(MAPS))
    assert np.allclose(seam_maps(img)[:, colour], seam_maps(brighter)[:, colour], atol=1e-5)


def test_seam_detector_separates_patches_changed_either_way():
    (x, y), (xt, yt) = toy_set(0, 60), toy_set(1, 40)
    det = D.create("seam").fit(x, y)
    assert roc_auc(yt, det.predict_proba(xt)) > 0.9
