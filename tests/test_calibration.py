"""Calibration maps are monotone and honest; the decision band keeps its error rates; ECE measures what it says."""
from __future__ import annotations

import numpy as np
import pytest

from forensics.calibration import (
    INCONCLUSIVE,
    LIKELY_MANIPULATED,
    NO_SIGN,
    Calibrator,
    DecisionBand,
    expected_calibration_error,
)


def _overlapping_scores(rng, n=2000):
    labels = rng.integers(0, 2, n)
    # Raw scores squashed toward 0 the way an overconfident detector does (reals at 1e-12, fakes at 1e-3).
    logits = rng.normal(-25 + 18 * labels, 3.0)
    return 1 / (1 + np.exp(-logits)), labels


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_is_monotone_and_round_trips(method, rng):
    scores, labels = _overlapping_scores(rng)
    cal = Calibrator(method).fit(scores, labels)
    grid = np.sort(np.concatenate([scores, np.logspace(-20, -1e-9, 200)]))
    probs = cal.predict(grid)
    assert np.all(np.diff(probs) >= -1e-12), "a calibration map must never reverse the detector's ranking"
    assert probs.min() >= 0 and probs.max() <= 1
    again = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again.predict(scores), cal.predict(scores))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_reduces_ece_of_a_miscalibrated_detector(method, rng):
    scores, labels = _overlapping_scores(rng)
    before = expected_calibration_error(labels, scores)
    test_scores, test_labels = _overlapping_scores(np.random.default_rng(1))
    after = expected_calibration_error(test_labels, Calibrator(method).fit(scores, labels).predict(test_scores))
    assert before > 0.3  # raw scores near 0 for half the fakes: badly calibrated
    assert after < 0.05


def test_ece_of_perfect_and_worst_predictions():
    labels = np.array([0, 0, 1, 1])
    assert expected_calibration_error(labels, labels.astype(float)) == 0.0
    assert expected_calibration_error(labels, 1.0 - labels) == pytest.approx(1.0)


def test_isotonic_record_that_is_not_monotone_is_refused():
    with pytest.raises(ValueError, match="monotone"):
        Calibrator.from_dict({"method": "isotonic", "x_": [0.0, 1.0], "y_": [0.9, 0.1]})


def test_decision_band_keeps_fpr_and_fnr_and_abstains_in_between(rng):
    labels = rng.integers(0, 2, 4000)
    probs = np.clip(rng.normal(0.3 + 0.4 * labels, 0.15), 0, 1)
    band = DecisionBand.fit(labels, probs, target_fpr=0.05, target_fnr=0.05)
    verdicts = band.verdicts(probs)
    assert np.mean(verdicts[labels == 0] == LIKELY_MANIPULATED) <= 0.05
    assert np.mean(verdicts[labels == 1] == NO_SIGN) <= 0.05
    assert band.low < band.high
    assert (verdicts == INCONCLUSIVE).any()
    assert band.verdict(band.high + 1e-9) == LIKELY_MANIPULATED and band.verdict(band.low) == NO_SIGN


def test_decision_band_collapses_when_classes_separate():
    labels = np.array([0] * 50 + [1] * 50)
    probs = np.concatenate([np.linspace(0, 0.2, 50), np.linspace(0.8, 1, 50)])
    band = DecisionBand.fit(labels, probs)
    assert band.low == band.high
    assert not (band.verdicts(probs) == INCONCLUSIVE).any()
