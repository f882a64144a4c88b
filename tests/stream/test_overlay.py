"""Overlays keep the frame's shape, change pixels where the mask is and leave the rest alone."""
import numpy as np

from usedge.runtime.results import (ClassificationResult, DetectionResult, FrameResult, LandmarkResult,
                                    SegmentationResult)
from usedge.stream import draw


def _result(h=120, w=160):
    mask = np.zeros((h, w), np.uint8)
    mask[40:80, 60:110] = 1
    return FrameResult(w, h, {
        "fetal_head": SegmentationResult("fetal_head", mask, ("bg", "head")),
        "thyroid_nodule_det": DetectionResult("thyroid_nodule_det", np.array([5.0, 90, 40, 115]), 0.9, w, h),
        "FUGC": LandmarkResult("FUGC", np.array([[130.0, 100.0]]), ("tip",), w, h),
        "organ_cls": ClassificationResult("organ_cls", np.array([0.1, 0.9]), ("liver", "kidney")),
    }), mask


def test_overlay_shape_and_mask_pixels():
    result, mask = _result()
    grey = np.full((120, 160), 100, np.uint8)
    out = draw(grey, result, opacity=0.5, hud={"fps": 29.97, "latency ms": 12.0})
    assert out.shape == (120, 160, 3) and out.dtype == np.uint8
    inner = np.zeros_like(mask, bool)
    inner[45:75, 65:105] = True                           # inside the mask, away from the contour
    assert (out[inner] != 100).any(axis=1).all()
    assert (out[55:65, 20:40] == 100).all()               # plain background stays as it was
    assert grey.max() == 100                              # the input is not modified


def test_overlay_colour_and_uint16_inputs():
    result, _ = _result()
    bgr = np.zeros((120, 160, 3), np.uint8)
    assert draw(bgr, result).shape == bgr.shape
    deep = np.full((120, 160), 4000, np.uint16)
    assert draw(deep, result).dtype == np.uint8
