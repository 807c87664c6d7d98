"""Metrics against scikit-learn on fixed arrays, hand-made known answers, CIs, grouping, video aggregation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from forensics import metrics as M


@pytest.fixture
def fixed() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    y = np.r_[np.zeros(60, int), np.ones(40, int)]
    s = np.round(rng.normal(size=100) + 1.2 * y, 1)  # rounding creates ties on purpose
    return y, s


def test_auc_ap_roc_match_sklearn(fixed):
    y, s = fixed
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    fpr, tpr, thr = M.roc_curve(y, s)
    sk_fpr, sk_tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_log_loss_matches_sklearn(fixed):
    y, s = fixed
    p = 1 / (1 + np.exp(-s))
    assert M.log_loss(y, p) == pytest.approx(skm.log_loss(y, p), rel=1e-9)


def test_tpr_at_fpr_matches_sklearn_curve(fixed):
    y, s = fixed
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    for target in (0.01, 0.05, 0.2):
        assert M.tpr_at_fpr(y, s, target) == pytest.approx(tpr[fpr <= target].max())


def test_known_answers():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    # one real (0.6) outranks one fake (0.4): 15 of 16 pairs ordered
    assert M.roc_auc(y, s) == pytest.approx(15 / 16)
    # threshold between 0.4 and 0.6 gives FPR = FNR = 1/4
    assert M.eer(y, s) == pytest.approx(0.25)
    assert M.tpr_at_fpr(y, s, 0.0) == pytest.approx(0.75)
    acc = M.accuracy_at(y, s, 0.5)
    assert acc == {"accuracy": 0.75, "real_accuracy": 0.75, "fake_accuracy": 0.75}


def test_eer_perfect_and_inverted():
    y = np.array([0, 0, 1, 1])
    assert M.eer(y, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)
    assert M.eer(y, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(1.0)
    assert M.eer(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)


def test_eer_interpolates_between_roc_points():
    # a tie of one real and one fake makes the ROC jump from (0, .5) to (.5, 1): FPR = FNR at 0.25 mid-segment
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.5, 0.5, 0.9])
    assert M.eer(y, s) == pytest.approx(0.25)


def test_threshold_at_fpr_hits_target():
    rng = np.random.default_rng(0)
    reals = rng.normal(size=1000)
    thr = M.threshold_at_fpr(reals, 0.05)
    assert np.mean(reals > thr) <= 0.05
    assert np.mean(reals > thr) >= 0.049
    assert M.threshold_at_fpr(np.array([0.3]), 0.05) == 0.3  # one real: nothing may pass


def test_bootstrap_ci_seeded_and_brackets_estimate(fixed):
    y, s = fixed
    a = M.bootstrap_ci(y, s, "auc", n_boot=300, seed=3)
    b = M.bootstrap_ci(y, s, "auc", n_boot=300, seed=3)
    assert a == b
    assert a[0] < M.roc_auc(y, s) < a[1]
    # the vectorised AUC path equals the generic per-replicate path
    generic = M.bootstrap_ci(y, s, lambda yy, ss: M.roc_auc(yy, ss), n_boot=300, seed=3)
    assert generic == pytest.approx(a)
    lo, hi = M.bootstrap_ci(y, s, "eer", n_boot=100, seed=0)
    assert 0 <= lo <= M.eer(y, s) <= hi <= 1


def test_compute_metrics_keys_and_threshold(fixed):
    y, s = fixed
    p = 1 / (1 + np.exp(-s))
    m = M.compute_metrics(y, p, threshold=0.6, n_boot=50)
    for key in ("auc", "ap", "eer", "tpr@fpr1%", "tpr@fpr5%", "log_loss", "accuracy", "real_accuracy",
                "fake_accuracy", "auc_ci", "fpr_at_threshold"):
        assert key in m
    assert m["n"] == 100 and m["n_real"] == 60


def test_metrics_by_generator_shares_reals():
    df = pd.DataFrame({
        "label": [0, 0, 0, 1, 1, 1, 1],
        "generator": ["real"] * 3 + ["a", "a", "b", "b"],
        "score": [0.1, 0.2, 0.3, 0.9, 0.8, 0.15, 0.25],
    })
    out = M.metrics_by_generator(df, n_boot=0)
    assert out["a"]["auc"] == 1.0
    assert out["b"]["auc"] == pytest.approx(M.roc_auc([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.15, 0.25]))
    assert out["b"]["n"] == 5
    recs = M.metrics_by(df.assign(detector="d", perturbation="none"), ["detector", "perturbation"], n_boot=0)
    assert recs[0]["detector"] == "d" and set(recs[0]["metrics"]) == {"all", "a", "b"}


def test_aggregate_videos():
    df = pd.DataFrame({
        "video_id": ["v1"] * 4 + ["v2"] * 4 + [""],
        "label": [0] * 4 + [1] * 4 + [1],
        "generator": ["real"] * 4 + ["swap"] * 4 + ["x"],
        "score": [0.1, 0.2, 0.9, 0.2, 0.5, 0.6, 0.7, 0.8, 0.99],
    })
    mean = M.aggregate_videos(df, "mean").set_index("video_id")
    assert mean.loc["v1", "score"] == pytest.approx(0.35) and mean.loc["v2", "label"] == 1
    assert len(mean) == 2  # the row without a video is left out
    assert M.aggregate_videos(df, "max").set_index("video_id").loc["v1", "score"] == pytest.approx(0.9)
    top2 = M.aggregate_videos(df, "topk", k=2).set_index("video_id")
    assert top2.loc["v1", "score"] == pytest.approx(0.55)
    with pytest.raises(ValueError):
        M.aggregate_videos(df, "median")


def test_input_checks():
    with pytest.raises(ValueError):
        M.roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError):
        M.roc_auc([0, 2], [0.1, 0.2])
    assert np.isnan(M.roc_auc([1, 1], [0.1, 0.2]))
