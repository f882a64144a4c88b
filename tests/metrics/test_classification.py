"""Accuracy, F1, AUC, MCC: hand-computed values and edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from usedge.errors import DataError

pytest.importorskip("sklearn", reason="classification metrics use scikit-learn (pip install 'usedge[cpu]')")
from usedge.metrics import classification_metrics, normalise_probs, roc_auc


def _onehot(pred, c):
    return np.eye(c)[pred] * 0.8 + 0.2 / c  # argmax = pred, rows sum to 1


def test_binary_auc_uses_positive_class_probability():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    # positive/negative pairs ranked correctly: (0.35>0.1), (0.8>0.1), (0.8>0.4) -> 3 of 4
    assert roc_auc(y, np.stack([1 - p1, p1], 1)) == pytest.approx(0.75)


def test_probabilities_are_renormalised():
    p = np.array([[2.0, 2.0], [1.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalise_probs(p), [[0.5, 0.5], [0.25, 0.75], [0.5, 0.5]])
    y = np.array([0, 0, 1, 1])
    raw = np.array([[9, 1], [6, 4], [13, 7], [2, 8]], float)  # p1 after renormalising: .1 .4 .35 .8
    assert roc_auc(y, raw) == pytest.approx(0.75)
    with pytest.raises(DataError):
        normalise_probs(np.array([[-1.0, 2.0]]))


MC_Y = np.array([0, 0, 1, 1, 2, 2])
MC_P = np.array([[0.6, 0.3, 0.1], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3],
                 [0.5, 0.2, 0.3], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2]])


def test_multiclass_macro_ovr_auc_by_hand():
    # class 0: 6/8 pairs; class 1: 4 + one tie (0.5) = 4.5/8; class 2: 5/8
    expected = (6 / 8 + 4.5 / 8 + 5 / 8) / 3
    assert roc_auc(MC_Y, MC_P) == pytest.approx(expected)
    from sklearn.metrics import roc_auc_score

    assert roc_auc(MC_Y, MC_P) == pytest.approx(roc_auc_score(MC_Y, MC_P, multi_class="ovr", average="macro"))


def test_defined_multiclass_auc_with_absent_class_uses_present_classes():
    y = np.array([0, 0, 1, 1])
    p = MC_P[:4]
    # class 0: pos .6 .3 vs neg .2 .5 -> 1 + 1 + 1 + 0 = 3/4; class 1: pos .5 .2 vs neg .3 .4 -> 2/4
    with pytest.warns(UserWarning, match="absent"):
        assert roc_auc(y, p, "defined") == pytest.approx((3 / 4 + 2 / 4) / 2)


def test_defined_single_class_auc_is_nan_not_a_crash():
    y = np.array([1, 1, 1])
    p = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    with pytest.warns(UserWarning, match="undefined"):
        out = classification_metrics(y, p, auc="defined")
    assert math.isnan(out["auc"])
    assert out["accuracy"] == pytest.approx(1 / 3)
    assert out["n"] == 3


def test_mcc_known_value():
    # TP 2, FN 1, TN 2, FP 1 -> (2*2 - 1*1) / sqrt(3*3*3*3) = 1/3
    y = np.array([1, 1, 1, 0, 0, 0])
    out = classification_metrics(y, _onehot([1, 1, 0, 0, 0, 1], 2))
    assert out["mcc"] == pytest.approx(1 / 3)
    assert out["accuracy"] == pytest.approx(4 / 6)


def test_macro_vs_weighted_f1_on_imbalanced_labels():
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = [0, 0, 0, 1, 1, 0]
    # class 0: P 3/4, R 3/4 -> F1 0.75 (support 4); class 1: P 1/2, R 1/2 -> F1 0.5 (support 2)
    out = classification_metrics(y, _onehot(pred, 2))
    assert out["f1_macro"] == pytest.approx((0.75 + 0.5) / 2)
    assert out["f1_weighted"] == pytest.approx((4 * 0.75 + 2 * 0.5) / 6)
    assert out["accuracy"] == pytest.approx(4 / 6)


def test_macro_f1_ignores_classes_absent_from_labels_and_predictions():
    # 3 classes, class 2 neither true nor predicted: macro over {0, 1} only (sklearn without labels=)
    y = np.array([0, 1, 1])
    with pytest.warns(UserWarning, match="official evaluator"):
        out = classification_metrics(y, _onehot([0, 1, 0], 3))
    # class 0: P 1/2 R 1 -> 2/3; class 1: P 1 R 1/2 -> 2/3
    assert out["f1_macro"] == pytest.approx(2 / 3)


def test_constant_prediction_gives_zero_mcc_and_zero_f1_for_missed_class():
    y = np.array([0, 0, 0, 0, 1])
    out = classification_metrics(y, _onehot([0, 0, 0, 0, 0], 2))
    assert out["mcc"] == 0.0
    assert out["f1_macro"] == pytest.approx((8 / 9 + 0) / 2)


def test_empty_and_bad_inputs():
    out = classification_metrics(np.zeros(0, int), np.zeros((0, 3)))
    assert out["n"] == 0 and math.isnan(out["accuracy"])
    with pytest.raises(DataError):
        classification_metrics(np.array([3]), np.array([[0.5, 0.5]]))
    with pytest.raises(DataError):
        classification_metrics(np.array([0, 1]), np.array([[0.5, 0.5]]))


def _official_evaluator_auc(y_true, y_probs, num_classes):
    """The AUC lines of the official evaluate.py (Evaluator.evaluate_classification), verbatim in logic."""
    from sklearn.metrics import roc_auc_score

    auc = 0.0
    try:
        if num_classes == 2:
            auc = roc_auc_score(y_true, y_probs[:, 1])
        elif num_classes > 2:
            auc = roc_auc_score(y_true, y_probs, average="macro", multi_class="ovr")
    except Exception:  # noqa: BLE001 - as the official code
        auc = 0.0
    return auc


@pytest.mark.parametrize("y, p", [
    (MC_Y, MC_P),                                       # every class present: a real AUC
    (np.array([0, 0, 1, 1]), MC_P[:4]),                 # multiclass, class 2 missing: sklearn raises
    (np.array([0, 0, 1, 1]), np.stack([1 - MC_P[:4, 0], MC_P[:4, 0]], 1)),
])
def test_official_auc_is_the_official_evaluators_number(y, p):
    assert roc_auc(y, p) == _official_evaluator_auc(y, p, p.shape[1])
    assert classification_metrics(y, p)["auc"] == _official_evaluator_auc(y, p, p.shape[1])


def test_official_auc_is_zero_where_it_cannot_be_computed():
    """scikit-learn 1.2.2 (the baseline's pin) raised for one class present and the official code reports
    0.0; newer scikit-learn returns NaN there, which must not leak into the official number."""
    y = np.array([1, 1, 1])
    p = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    with pytest.warns(UserWarning, match="official evaluator"):
        assert roc_auc(y, p) == 0.0
    with pytest.warns(UserWarning, match="official evaluator"):
        assert roc_auc(np.array([0, 0, 1, 1]), MC_P[:4]) == 0.0


def test_unknown_auc_definition_is_refused():
    from usedge.errors import ConfigError

    with pytest.raises(ConfigError, match="AUC definition"):
        roc_auc(MC_Y, MC_P, "mean")
