"""Temperature scaling and ECE (usedge.metrics.calibration) and the risk-coverage report (usedge.metrics.selective)
on data whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest

from usedge.metrics.calibration import expected_calibration_error, fit_temperature, softmax
from usedge.metrics.selective import coverage_curve, selective_report


def sampled(t_true: float, n: int = 4000, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / t_true): calibrated at exactly t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, 4))
    p = softmax(z, t_true)
    y = np.array([rng.choice(4, p=row) for row in p])
    return z, y


@pytest.mark.parametrize("t_true", [0.5, 2.0])
def test_fit_temperature_recovers_the_true_temperature_and_lowers_ece(t_true):
    z, y = sampled(t_true)
    t = fit_temperature(z, y)
    assert t == pytest.approx(t_true, rel=0.12)
    assert expected_calibration_error(softmax(z, t), y) < expected_calibration_error(softmax(z), y)
    assert expected_calibration_error(softmax(z, t), y) < 0.03


def test_ece_of_a_confident_wrong_classifier_is_its_confidence():
    probs = np.tile([0.9, 0.1], (50, 1))
    assert expected_calibration_error(probs, np.ones(50, int)) == pytest.approx(0.9)
    assert expected_calibration_error(probs, np.zeros(50, int)) == pytest.approx(0.1)


def test_a_score_that_ranks_errors_last_improves_the_accepted_answers():
    right = np.r_[np.ones(80), np.zeros(20)]
    good_score = np.r_[np.linspace(0, 1, 80), np.linspace(2, 3, 20)]     # errors farthest
    cov, curve = coverage_curve(right, good_score)
    assert cov[-1] == 1 and curve[-1] == pytest.approx(0.8) and curve[79] == 1.0
    rep = selective_report({"organ_cls": right}, {"organ_cls": good_score}, {"organ_cls": good_score < 1.5})
    row = rep["families"]["classification"]
    assert row["accepted"] == 1.0 and row["accepted_fraction"] == pytest.approx(0.8) and row["all"] == pytest.approx(0.8)
    bad = selective_report({"organ_cls": right}, {"organ_cls": -good_score}, {"organ_cls": good_score < 1.5})
    assert bad["families"]["classification"]["area"] < row["area"]
