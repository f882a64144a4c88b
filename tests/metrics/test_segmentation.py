"""Dice / Hausdorff: hand-computed cases, edge cases, and equality with scipy's directed_hausdorff and cv2."""
from __future__ import annotations

import math

import numpy as np
import pytest

from usedge.errors import DataError

pytest.importorskip("scipy", reason="Hausdorff distances use scipy (pip install 'usedge[cpu]')")
from usedge.metrics import dice_score, hausdorff_distance, resize_nearest, segmentation_scores


def _mask(shape, *pixels):
    m = np.zeros(shape, bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def test_both_empty_gives_dice_1_hd_0():
    empty = np.zeros((10, 20), bool)
    assert dice_score(empty, empty) == 1.0
    assert hausdorff_distance(empty, empty) == 0.0


def test_one_empty_gives_dice_0_hd_diagonal():
    empty, one = np.zeros((10, 20), bool), _mask((10, 20), (3, 3))
    assert dice_score(one, empty) == 0.0
    assert hausdorff_distance(one, empty) == pytest.approx(math.sqrt(10**2 + 20**2))  # 22.3607
    assert hausdorff_distance(empty, one) == pytest.approx(math.sqrt(500))


def test_single_pixels_3_4_5():
    a, b = _mask((10, 10), (1, 1)), _mask((10, 10), (4, 5))  # dy 3, dx 4
    assert hausdorff_distance(a, b) == 5.0
    assert dice_score(a, b) == 0.0


def test_far_corners_after_bounding_box_crop():
    a, b = _mask((100, 200), (0, 0)), _mask((100, 200), (99, 199))
    assert hausdorff_distance(a, b) == pytest.approx(math.hypot(99, 199))


def test_dice_and_hd_of_nested_rectangles():
    a = np.zeros((6, 6), bool)
    b = np.zeros((6, 6), bool)
    a[0:2, 0:2] = True  # 4 px
    b[0:2, 0:3] = True  # 6 px, contains a
    assert dice_score(a, b) == pytest.approx(2 * 4 / (4 + 6))  # 0.8
    assert hausdorff_distance(a, b) == 1.0  # column 2 of b is 1 px from a


def test_hd_uses_all_pixels_not_contours():
    # a filled 7x7 square vs its own outline: contours coincide (HD 0 on contours), but the centre
    # pixel of the square is 3 px from the outline -> 3 on all pixels (the official SimpleITK filter).
    filled = np.zeros((9, 9), bool)
    filled[1:8, 1:8] = True
    ring = filled.copy()
    ring[2:7, 2:7] = False
    assert hausdorff_distance(filled, ring) == 3.0


def test_hd_equals_scipy_directed_hausdorff_on_random_masks():
    from scipy.spatial.distance import directed_hausdorff

    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = rng.integers(4, 40, 2)
        a, b = rng.random((h, w)) < 0.05, rng.random((h, w)) < 0.2
        a[rng.integers(h), rng.integers(w)] = b[rng.integers(h), rng.integers(w)] = True
        pa, pb = np.argwhere(a), np.argwhere(b)
        ref = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
        assert hausdorff_distance(a, b) == pytest.approx(ref, abs=1e-12)


def test_multiclass_with_missing_classes():
    gt = np.zeros((4, 5), np.uint8)
    gt[0, 0] = 1  # class 1 present, class 2 absent, class 3 absent
    pred = gt.copy()
    pred[3, 4] = 3  # class 3 predicted but absent from gt
    dice, hd = segmentation_scores(pred, gt, num_classes=4)
    np.testing.assert_allclose(dice, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(hd, [0.0, 0.0, math.sqrt(4**2 + 5**2)])


def test_labels_outside_range_belong_to_no_class():
    gt = np.array([[1, 1], [0, 0]])
    pred = np.array([[1, 7], [0, 0]])
    dice, _ = segmentation_scores(pred, gt, num_classes=2)
    assert dice[0] == pytest.approx(2 * 1 / (1 + 2))


def test_prediction_resized_nearest_to_gt_size():
    pred = np.array([[0, 1], [2, 0]], np.uint8)
    gt = np.kron(pred, np.ones((2, 3), np.uint8))  # 4x6, each label a 2x3 block
    assert np.array_equal(resize_nearest(pred, gt.shape), gt)
    dice, hd = segmentation_scores(pred, gt, num_classes=3)
    np.testing.assert_allclose(dice, [1.0, 1.0])
    np.testing.assert_allclose(hd, [0.0, 0.0])
    # the diagonal of an image with one empty class is the GT size, not the prediction's
    _, hd = segmentation_scores(np.zeros((2, 2)), gt, num_classes=3)
    np.testing.assert_allclose(hd, [math.hypot(4, 6)] * 2)


def test_resize_nearest_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    for _ in range(200):
        sh, sw, dh, dw = (int(v) for v in rng.integers(1, 120, 4))
        m = rng.integers(0, 5, (sh, sw), dtype=np.uint8)
        ref = cv2.resize(m, (dw, dh), interpolation=cv2.INTER_NEAREST)
        assert np.array_equal(resize_nearest(m, (dh, dw)), ref), (sh, sw, dh, dw)


def test_bad_shapes_raise_data_error():
    with pytest.raises(DataError):
        segmentation_scores(np.zeros((2, 2, 3)), np.zeros((2, 2)), 2)
    with pytest.raises(DataError):
        hausdorff_distance(np.ones((2, 2)), np.ones((3, 3)))
