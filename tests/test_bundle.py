"""A model bundle trains, saves, reloads to identical scores, and refuses broken folders clearly."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from forensics.bundle import BundleError, bundle_sha256, load_bundle
from forensics.bundle.build import build_bundle_from_arrays
from forensics.calibration import VERDICTS
from forensics.detectors import toydata


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory):
    rng = np.random.default_rng(0)
    size = 32
    def split(n):
        images = np.concatenate([toydata.real_images(rng, n, size), toydata.fake_images(rng, n, size, "nearest")])
        return images, np.array([0] * n + [1] * n)
    train, val = split(60), split(40)
    out = tmp_path_factory.mktemp("bundle") / "toy"
    build_bundle_from_arrays(out, train, (*val, [f"v{i}" for i in range(len(val[1]))]),
                             {"spectral": {}, "dct": {}}, perturbations=("jpeg75", "blur1"),
                             face={"size": size, "margin": 0.25}, log=lambda m: None)
    test = split(30)
    return out, test


def test_bundle_scores_every_detector_and_a_fused_verdict(toy_bundle):
    out, (images, labels) = toy_bundle
    scores = load_bundle(out).score(images)
    assert set(scores.raw) == {"spectral", "dct"}
    face = scores.face(0)
    assert set(face["detectors"]) == {"spectral", "dct"} and face["verdict"] in VERDICTS
    assert all(v in VERDICTS for v in scores.verdicts)
    # The toy fakes carry a strong up-sampling trace: the fused probability ranks them above the reals.
    from forensics.metrics import roc_auc
    assert roc_auc(labels, scores.fused) > 0.9


def test_bundle_reload_gives_identical_scores_and_hash(toy_bundle, tmp_path):
    out, (images, _) = toy_bundle
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    a, b = load_bundle(out).score(images), load_bundle(copy).score(images)
    np.testing.assert_array_equal(a.fused, b.fused)
    assert bundle_sha256(out) == bundle_sha256(copy)
    (copy / "bundle.json").write_text((copy / "bundle.json").read_text() + " ")
    assert bundle_sha256(out) != bundle_sha256(copy)


def test_broken_bundles_are_refused_with_the_reason(toy_bundle, tmp_path):
    out, _ = toy_bundle
    with pytest.raises(BundleError, match="no bundle.json"):
        load_bundle(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    meta = json.loads((bad / "bundle.json").read_text())
    meta["detectors"][0]["path"] = "../../etc"
    (bad / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="leaves the bundle"):
        load_bundle(bad)
    meta["detectors"][0]["path"] = "detectors/spectral"
    meta["fusion"]["detectors"] = ["spectral"]
    meta["fusion"]["coef"] = [1.0]
    (bad / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="fusion uses"):
        load_bundle(bad)
    (bad / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bad)
