"""The classical face swap used as an unseen manipulation: it changes the face region only, and really changes it."""
from __future__ import annotations

import numpy as np
import pytest

from forensics.data.faces import template_points
from forensics.detectors.toydata import real_images
from generators.merge import face_region_mask
from generators.poisson_swap import poisson_swap


def test_swap_changes_the_face_and_nothing_outside_it(rng):
    target, source = real_images(rng, 2, 128)
    source = np.clip(source.astype(int) + 60, 0, 255).astype(np.uint8)  # a visibly different "face"
    out = poisson_swap(target, source)
    face = face_region_mask(template_points(128, 0.25), 128) > 0
    assert out.shape == target.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~face], target[~face])
    assert np.abs(out[face].astype(int) - target[face].astype(int)).mean() > 2


def test_swap_refuses_mismatched_crops(rng):
    a = real_images(rng, 1, 64)[0]
    with pytest.raises(ValueError, match="two square crops"):
        poisson_swap(a, a[:32])
