"""Torch-free decoding of named outputs: segmentation resize, best box, top-k NMS, points."""
import numpy as np
import pytest

from usedge.data.decode import best_box, box_iou, decode, segmentation_map, top_boxes
from usedge.tasks import get_task


def _grid(h=4, w=4):
    boxes = np.zeros((4, h, w), np.float32)
    obj = np.full((1, h, w), -10.0, np.float32)
    return boxes, obj


def test_box_iou_hand_computed():
    a = np.array([0.0, 0.0, 2.0, 2.0])
    others = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5, 5, 6, 6], [1, 1, 1, 1]])
    np.testing.assert_allclose(box_iou(a, others), [1 / 7, 1.0, 0.0, 0.0])


def test_top_boxes_suppresses_overlaps_and_keeps_separate_objects():
    boxes, obj = _grid()
    # two objects: cells (0,0) and (0,1) see nearly the same box, cell (3,3) a different one
    boxes[:, 0, 0], obj[0, 0, 0] = [0.1, 0.1, 0.4, 0.4], 3.0
    boxes[:, 0, 1], obj[0, 0, 1] = [0.12, 0.1, 0.42, 0.4], 2.0
    boxes[:, 3, 3], obj[0, 3, 3] = [0.6, 0.6, 0.9, 0.9], 1.0
    kept, scores = top_boxes(boxes, obj, k=5, iou=0.5)
    np.testing.assert_allclose(kept, [[0.1, 0.1, 0.4, 0.4], [0.6, 0.6, 0.9, 0.9]], atol=1e-6)
    assert scores[0] > scores[1] > 0.5
    # the best of top_boxes is best_box
    box, score = best_box(boxes, obj)
    np.testing.assert_allclose(box, kept[0], atol=1e-6)
    assert score == pytest.approx(scores[0])
    # with a looser IoU threshold the duplicate survives; k caps the count; min_score drops weak cells
    assert len(top_boxes(boxes, obj, k=5, iou=0.95)[0]) == 3
    assert len(top_boxes(boxes, obj, k=1)[0]) == 1
    assert len(top_boxes(boxes, obj, min_score=0.9)[0]) == 1


def test_segmentation_map_resizes_logits_to_the_original_image():
    logits = np.zeros((2, 4, 4), np.float32)
    logits[1, :2, :2] = 5.0  # top-left quarter is foreground
    mask = segmentation_map(logits, width=40, height=20)
    assert mask.shape == (20, 40) and mask.dtype == np.uint8
    assert mask[:8, :18].all() and not mask[12:, 22:].any()


def test_decode_scales_boxes_and_points_to_pixels():
    det = get_task("thyroid_nodule_det")
    boxes, obj = _grid()
    boxes[:, 1, 1], obj[0, 1, 1] = [0.25, 0.5, 0.5, 1.0], 0.0
    out = {det.output_names[0]: boxes[None], det.output_names[1]: obj[None]}
    box, score = decode(det, out, 0, width=200, height=100)
    np.testing.assert_allclose(box, [50, 50, 100, 100])
    assert score == pytest.approx(0.5)
    reg = get_task("fetal_femur")
    pts = decode(reg, {reg.output_names[0]: np.array([[[0.5, 0.25], [1.0, 0.0]]])}, 0, 200, 100)
    np.testing.assert_allclose(pts, [[100, 25], [200, 0]])


@pytest.mark.parametrize("c", [2, 3, 5])
def test_class_map_and_resized_segmentation_match_plain_argmax(c):
    import cv2

    from usedge.data.decode import class_map, segmentation_map

    logits = np.random.default_rng(c).standard_normal((c, 64, 48)).astype(np.float32)
    np.testing.assert_array_equal(class_map(logits), logits.argmax(0))
    up = cv2.resize(np.ascontiguousarray(logits.transpose(1, 2, 0)), (100, 130), interpolation=cv2.INTER_LINEAR)
    up = up[..., None] if up.ndim == 2 else up
    agree = (segmentation_map(logits, 100, 130) == up.argmax(-1)).mean()
    assert agree > 0.9995   # identical up to float rounding at exact ties


def _full_frame_contours(mask, class_names, min_area=4.0):
    """The straightforward reference: findContours over the whole frame, class by class."""
    import cv2

    out = {}
    for i, name in enumerate(class_names[1:], start=1):
        found, _ = cv2.findContours((mask == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        out[name] = [c.reshape(-1, 2) for c in found if cv2.contourArea(c) >= min_area]
    return out


@pytest.mark.parametrize("where", ["inside", "touching every edge", "one corner pixel", "empty"])
def test_contours_inside_the_foreground_box_equal_full_frame_contours(where):
    from usedge.runtime.results import SegmentationResult

    rng = np.random.default_rng(4)
    mask = np.zeros((120, 160), np.uint8)
    if where == "inside":
        mask[30:70, 40:90] = 1
        mask[50:60, 100:130] = 2
        mask[45:55, 55:65] = 0                                    # a hole
    elif where == "touching every edge":
        mask[:, :] = (rng.random((120, 160)) > 0.6).astype(np.uint8) * rng.integers(1, 3, (120, 160))
        mask[0, :] = 1
        mask[:, -1] = 2
    elif where == "one corner pixel":
        mask[-3:, -3:] = 1
    names = ("background", "a", "b")
    got = SegmentationResult("t", mask, names).contours()
    want = _full_frame_contours(mask, names)
    assert got.keys() == want.keys()
    for name in names[1:]:
        assert len(got[name]) == len(want[name])
        assert all(np.array_equal(a, b) for a, b in zip(got[name], want[name]))
