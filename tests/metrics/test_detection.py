"""IoU of xyxy pixel boxes."""
from __future__ import annotations

import numpy as np
import pytest

from usedge.errors import DataError
from usedge.metrics import box_iou, mean_iou


def test_identical_disjoint_touching():
    assert box_iou([10, 20, 30, 60], [10, 20, 30, 60]) == 1.0
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # shared edge, no area


def test_half_overlaps():
    assert box_iou([0, 0, 2, 2], [0, 0, 2, 4]) == pytest.approx(0.5)  # inside, half the area
    assert box_iou([0, 0, 2, 2], [1, 0, 3, 2]) == pytest.approx(2 / 6)  # shifted by half a width


def test_degenerate_boxes_score_zero():
    assert box_iou([5, 5, 5, 5], [5, 5, 5, 5]) == 0.0
    assert box_iou([10, 10, 0, 0], [0, 0, 10, 10]) == 0.0  # inverted prediction


def test_vectorised_and_mean():
    pred = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 1, 1]], float)
    gt = np.array([[0, 0, 2, 2], [0, 0, 2, 4], [5, 5, 6, 6]], float)
    np.testing.assert_allclose(box_iou(pred, gt), [1.0, 0.5, 0.0])
    assert mean_iou(pred, gt) == pytest.approx(0.5)
    with pytest.raises(DataError):
        box_iou([0, 0, 1], [0, 0, 1, 1])
