"""Generator attribution: classes that differ only by a known frequency trace are told apart well above chance,
a class never seen in training is called "unknown" far more often than the seen ones, save/load is exact and
pickle-free, and the metrics/plot helpers count what they should."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forensics.attribution import (
    UNKNOWN,
    GeneratorAttributor,
    attribution_metrics,
    evaluate_attributor,
    generator_labels,
    parse_features,
    plot_confusion_matrix,
)
from forensics.detectors.base import NotFittedError
from forensics.detectors.toydata import fake_images, real_images, textures

SEEN = ("nearest", "transposed")
SIZE = 32


def grating_images(rng: np.random.Generator, n: int, size: int = SIZE, amplitude: float = 6.0) -> np.ndarray:
    """Toy fakes of a generator the attributor never sees: the reals' textures and noise plus one fixed oblique
    cosine (a single spectral peak where neither toy up-sampler puts energy).  # -> [N,S,S,3] uint8"""
    yy, xx = np.mgrid[:size, :size]
    wave = amplitude * np.cos(2 * np.pi * (5 * yy + 11 * xx) / size)[None, :, :, None]
    x = textures(rng, n, size) + wave + rng.normal(0.0, 3.0, size=(n, size, size, 3))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def toy_split(seed: int, n: int, generators: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images, labels = [real_images(rng, n, SIZE)], ["real"] * n
    for gen in generators:
        images.append(grating_images(rng, n) if gen == "grating" else fake_images(rng, n, SIZE, gen))
        labels += [gen] * n
    return np.concatenate(images), np.array(labels)


@pytest.fixture(scope="module")
def data():
    return {"train": toy_split(0, 60, SEEN), "val": toy_split(1, 30, SEEN),
            "test": toy_split(2, 40, SEEN + ("grating",))}


@pytest.fixture(scope="module")
def fitted(data):
    return GeneratorAttributor(features="dct").fit(*data["train"], *data["val"])


def test_seen_classes_are_attributed_well_above_chance(fitted, data):
    x, y = data["test"]
    seen = y != "grating"
    m = attribution_metrics(y[seen], fitted.predict(x[seen]), fitted.classes_)
    assert fitted.classes_ == ["nearest", "real", "transposed"]
    assert m["accuracy"] >= 0.75, m  # chance is 1/3
    assert min(m["per_class_recall"].values()) >= 0.6, m["per_class_recall"]
    assert m["accuracy_answered"] >= 0.85, m


def test_unseen_class_is_called_unknown_far_more_often(fitted, data):
    x, y = data["test"]
    m = attribution_metrics(y, fitted.predict(x), fitted.classes_)
    unseen = m["unknown_rate_by_class"]["grating"]
    seen = max(m["unknown_rate_by_class"][c] for c in fitted.classes_)
    assert unseen >= 0.5 and unseen >= seen + 0.3, m["unknown_rate_by_class"]
    assert m["confusion"]["rows"][-1] == "grating" and m["confusion"]["cols"][-1] == UNKNOWN


def test_validation_coverage_holds(fitted):
    assert fitted.val_coverage_ >= fitted.coverage
    assert fitted.val_unknown_rate_ > 0.0  # the thresholds are not set beyond every validation image
    assert fitted.temperature_ >= 1.0 and 0.0 < fitted.threshold_ < 1.0
    assert fitted.n_val_ == 90


def test_probabilities_and_decisions(fitted, data):
    x, _ = data["test"]
    proba, atypical = fitted.scores(x[:20])
    assert proba.shape == (20, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert atypical.shape == (20,) and (atypical >= 0).all()
    # with both rules switched off every image gets its top class; with an impossible threshold none does
    top = np.asarray(fitted.classes_)[proba.argmax(axis=1)]
    assert (fitted.decide(proba, atypical, threshold=0.0, atypicality_threshold=np.inf) == top).all()
    assert (fitted.decide(proba, atypical, threshold=1.01) == UNKNOWN).all()


def test_save_load_round_trip_is_exact(fitted, data, tmp_path):
    x, _ = data["test"]
    fitted.save(tmp_path / "att")
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == ["config.json", "weights.safetensors"]
    config = json.loads((tmp_path / "att" / "config.json").read_text())
    assert config["format"] == "forensics-attributor/1" and config["fitted"]["classes_"] == fitted.classes_
    loaded = GeneratorAttributor.load(tmp_path / "att")
    assert loaded.get_params() == fitted.get_params()
    assert np.array_equal(loaded.predict_proba(x), fitted.predict_proba(x))
    assert np.array_equal(loaded.predict(x), fitted.predict(x))
    config["format"] = "pickle"
    (tmp_path / "att" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="unknown format"):
        GeneratorAttributor.load(tmp_path / "att")


def test_other_sizes_are_resized(fitted, data):
    x, _ = data["test"]
    big = np.repeat(np.repeat(x[:4], 2, axis=1), 2, axis=2)  # [4,64,64,3]
    assert fitted.predict_proba(big).shape == (4, 3)


def test_bad_input_is_refused(data):
    x, y = data["train"]
    with pytest.raises(ValueError, match="needs reals"):
        GeneratorAttributor().fit(x[y != "real"], y[y != "real"])
    with pytest.raises(ValueError, match="cannot be a class"):
        GeneratorAttributor().fit(x, np.where(y == "nearest", UNKNOWN, y))
    with pytest.raises(ValueError, match="labels"):
        GeneratorAttributor().fit(x, y[:-1])
    with pytest.raises(ValueError, match="cnn_detector"):
        GeneratorAttributor(features="dct+cnn").fit(x, y)
    with pytest.raises(ValueError, match="features"):
        parse_features("dct+wavelet")
    with pytest.raises(NotFittedError):
        GeneratorAttributor().predict(x[:2])


def test_fit_without_validation_holds_out_part_of_training(data):
    x, y = data["train"]
    att = GeneratorAttributor(features="spectral", val_fraction=0.25).fit(x, y)
    assert att.n_val_ == 45 and att.n_train_ == len(y) - 45


def test_perturbed_evaluation_changes_the_images(fitted, data):
    x, y = data["test"]
    ids = [f"s{i}" for i in range(len(y))]
    out = evaluate_attributor(fitted, x, y, ids, perturbations=("jpeg30",))
    assert set(out) == {"none", "jpeg30"}
    assert out["none"]["n"] == out["jpeg30"]["n"] == len(y)
    # heavy JPEG wipes the up-sampling traces: fewer right answers than on clean images
    assert out["jpeg30"]["accuracy"] < out["none"]["accuracy"]


def test_attribution_metrics_by_hand():
    true = ["real", "real", "a", "a", "a", "b"]
    pred = ["real", "a", "a", "unknown", "a", "unknown"]
    m = attribution_metrics(true, pred, ["a", "real"])
    assert m["confusion"]["rows"] == ["a", "real", "b"]
    assert m["confusion"]["cols"] == ["a", "real", "unknown"]
    assert m["confusion"]["counts"] == [[2, 0, 1], [1, 1, 0], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)  # b (unseen) answered "unknown" counts as right
    assert m["accuracy_answered"] == pytest.approx(3 / 4)  # known classes, unknown answers left out
    assert m["unknown_rate"] == pytest.approx(2 / 6)
    assert m["per_class_recall"] == pytest.approx({"a": 2 / 3, "real": 1 / 2, "b": 1.0})
    assert m["unknown_rate_by_class"] == pytest.approx({"a": 1 / 3, "real": 0.0, "b": 1.0})
    assert "accuracy_ci" not in m
    lo, hi = attribution_metrics(true * 20, pred * 20, ["a", "real"], n_boot=300)["accuracy_ci"]
    assert lo < 4 / 6 < hi and hi - lo < 0.3
    with pytest.raises(ValueError, match="neither"):
        attribution_metrics(["a"], ["c"], ["a"])


def test_confusion_plot_is_a_png(tmp_path):
    m = attribution_metrics(["real", "a", "a"], ["real", "a", "unknown"], ["a", "real"])
    path = plot_confusion_matrix(m, tmp_path / "sub" / "conf.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_generator_labels():
    rows = pd.DataFrame({"label": [0, 1, 1], "generator": ["real", "cyclegan", "blend"]})
    assert list(generator_labels(rows)) == ["real", "cyclegan", "blend"]


def test_cnn_embedding_feature(data, tmp_path):
    """A fitted CNN's penultimate embedding as a feature block; its weights are checked on use."""
    import torch

    import forensics.detectors as D

    x, y = data["train"]
    few = np.arange(0, len(y), 3)  # a tiny CNN on a third of the images: the embedding only has to exist
    cnn = D.create("cnn", epochs=1, batch_size=16, weights="scratch", augment="none", device="cpu")
    cnn.fit(x[few], (y[few] != "real").astype(int)).save(tmp_path / "cnn")
    att = GeneratorAttributor(features="dct+cnn", cnn_detector=str(tmp_path / "cnn")).fit(x, y, *data["val"])
    assert att.n_features_in_ > SIZE * SIZE  # DCT coefficients plus the embedding
    xt, _ = data["test"]
    att.save(tmp_path / "att")
    again = GeneratorAttributor.load(tmp_path / "att")
    assert np.allclose(again.predict_proba(xt[:16]), att.predict_proba(xt[:16]), atol=1e-6)
    with torch.no_grad():  # a CNN retrained or edited after the attributor was fitted must be noticed
        next(cnn.model_.parameters()).add_(1e-3)
    cnn.save(tmp_path / "cnn")
    with pytest.raises(ValueError, match="CNN weights changed"):
        GeneratorAttributor.load(tmp_path / "att").predict(xt[:2])
