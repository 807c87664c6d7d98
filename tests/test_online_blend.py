"""Self-blends drawn in each training batch (forensics.detectors.online_blend) and the CNN that trains on them."""
from __future__ import annotations

import numpy as np
import pytest

import forensics.detectors as D
from forensics.detectors.online_blend import blend_reals, expected_balance
from forensics.detectors.toydata import fake_images, real_images


def faces(n: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    return real_images(rng, n, size)


def test_only_reals_are_blended_and_relabelled():
    images = faces(40)
    labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    out, new = blend_reals(images, labels, 0.5, np.random.default_rng(1), 0.25)
    changed = np.array([not np.array_equal(a, b) for a, b in zip(images, out)])
    assert not changed[20:].any() and (new[20:] == 1).all()  # fakes untouched
    assert 3 <= changed[:20].sum() <= 17  # about half the reals, not none, not all
    assert (new[:20] == changed[:20]).all()  # a blended real is labelled fake, an untouched one stays real
    assert np.array_equal(images, faces(40))  # the input batch is not written to


def test_a_blend_changes_the_face_and_keeps_the_border():
    images = faces(8)
    out, _ = blend_reals(images, np.zeros(8, int), 1.0, np.random.default_rng(2), 0.25)
    diff = np.abs(out.astype(int) - images.astype(int)).max(axis=3)  # [N,S,S]
    assert (diff[:, 24:40, 24:40] > 0).mean() > 0.5  # the face centre is blended
    assert (diff[:, :3, :] == 0).all() and (diff[:, :, :3] == 0).all()  # the crop's edge is not


def test_expected_balance_counts_blended_reals_as_fakes():
    labels = np.r_[np.zeros(60, int), np.ones(20, int)]
    assert expected_balance(labels, 0.0) == pytest.approx(3.0)
    assert expected_balance(labels, 0.5) == pytest.approx(30 / 50)


def test_cnn_with_online_blend_trains_saves_and_refuses_bad_share(tmp_path):
    rng = np.random.default_rng(3)
    x = np.concatenate([real_images(rng, 24, 64), fake_images(rng, 24, 64, "nearest")])
    y = np.r_[np.zeros(24, int), np.ones(24, int)]
    det = D.create("cnn", epochs=1, batch_size=16, weights="scratch", augment="none", device="cpu",
                   online_blend=0.5).fit(x, y)
    det.save(tmp_path / "cnn")
    again = D.load(tmp_path / "cnn")
    assert again.get_params()["online_blend"] == 0.5
    assert np.allclose(again.predict_proba(x[:4]), det.predict_proba(x[:4]))
    with pytest.raises(ValueError, match="online_blend"):
        D.create("cnn", epochs=1, weights="scratch", device="cpu", online_blend=1.0).fit(x, y)
