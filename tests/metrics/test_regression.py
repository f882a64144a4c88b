"""Mean radial error."""
from __future__ import annotations

import numpy as np
import pytest

from usedge.errors import DataError
from usedge.metrics import mean_radial_error, radial_errors


def test_radial_errors_by_hand():
    pred = np.array([[0, 0], [3, 4], [10, 10]], float)
    gt = np.array([[0, 0], [0, 0], [7, 14]], float)
    np.testing.assert_allclose(radial_errors(pred, gt), [0.0, 5.0, 5.0])
    assert mean_radial_error(pred, gt) == pytest.approx(10 / 3)


def test_mre_mean_over_points_then_images():
    pred = np.array([[[0, 0], [6, 8]], [[1, 1], [1, 1]]], float)  # image errors: (0, 10), (0, 0)
    gt = np.array([[[0, 0], [0, 0]], [[1, 1], [1, 1]]], float)
    assert mean_radial_error(pred, gt) == pytest.approx((5 + 0) / 2)


def test_shape_mismatch_raises():
    with pytest.raises(DataError):
        radial_errors(np.zeros((2, 2)), np.zeros((3, 2)))
