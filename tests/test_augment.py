"""Training presets build and run; evaluation perturbations are deterministic, recorded and do what they say."""
from __future__ import annotations

import json

import numpy as np
import pytest

from forensics import augment as A


@pytest.fixture
def img(rng) -> np.ndarray:
    from forensics.detectors.toydata import real_images

    return real_images(rng, 1, 32)[0]


@pytest.mark.parametrize("preset", A.TRAIN_PRESETS + ("blurjpeg",))
def test_training_presets_run_and_are_seeded(preset, img):
    batch = np.stack([img] * 4)
    a = A.apply_training_transform(A.training_transform(preset, seed=1), batch)
    b = A.apply_training_transform(A.training_transform(preset, seed=1), batch)
    assert a.shape == batch.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    if preset == "none":
        assert A.training_transform(preset) is None


def test_blurjpeg_probabilities_follow_wang_et_al():
    t = A.training_transform("blurjpeg0.5")
    blur, jpeg = t.transforms[1], t.transforms[2]
    assert blur.p == 0.5 and tuple(blur.sigma_limit) == (0.0, 3.0)
    assert jpeg.p == 0.5 and tuple(jpeg.quality_range) == (30, 100)
    assert A.training_transform("blurjpeg").transforms[1].p == 0.1


def test_unknown_names_suggest():
    with pytest.raises(ValueError, match="blurjpeg0.5"):
        A.training_transform("blurjpg0.5")
    with pytest.raises(ValueError, match="jpeg75"):
        A.parse_perturbation("jpg75")


@pytest.mark.parametrize("name", A.PERTURBATIONS + ("none", "jpeg60", "blur2", "resize0.25", "noise10"))
def test_perturbations_deterministic_and_recorded(name, img):
    out1, rec1 = A.perturb(img, name, seed=7)
    out2, rec2 = A.perturb(img, name, seed=7)
    np.testing.assert_array_equal(out1, out2)
    assert rec1 == rec2 and rec1["name"] == name
    json.dumps(rec1)
    assert out1.shape == img.shape and out1.dtype == np.uint8
    if name != "none":
        assert not np.array_equal(out1, img)


def test_perturbation_records_parameters(img):
    assert A.perturb(img, "jpeg75")[1]["quality"] == 75
    assert A.perturb(img, "blur1")[1]["sigma"] == 1.0
    assert A.perturb(img, "resize0.5")[1]["factor"] == 0.5
    rec = A.perturb(img, "noise", seed=3)[1]
    assert rec["sigma"] == A.NOISE_DEFAULT_SIGMA and rec["seed"] == 3


def test_perturbations_change_what_they_should(img):
    # stronger JPEG loses more; noise depends on the seed; resize keeps the size
    err = {q: np.abs(A.perturb(img, f"jpeg{q}")[0].astype(int) - img).mean() for q in (95, 30)}
    assert err[30] > err[95]
    assert not np.array_equal(A.perturb(img, "noise", 1)[0], A.perturb(img, "noise", 2)[0])
    assert A.perturb(img, "resize0.5")[0].shape == img.shape


def test_perturb_batch_and_stable_seed(img):
    batch = np.stack([img, img[::-1]])
    out, recs = A.perturb_batch(batch, "noise", seeds=[1, 2])
    assert out.shape == batch.shape and [r["seed"] for r in recs] == [1, 2]
    assert A.stable_seed("abc", 0) == A.stable_seed("abc", 0) != A.stable_seed("abd", 0)
    with pytest.raises(ValueError):
        A.perturb(img.astype(np.float32), "jpeg75")
