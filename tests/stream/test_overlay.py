"""Overlays keep the frame's shape, change pixels where the mask is and leave the rest alone."""
import numpy as np

from usedge.runtime.results import (
    ClassificationResult,
    DetectionResult,
    FrameResult,
    LandmarkResult,
    SegmentationResult,
)
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


def _reference_blend(frame_bgr, masks, opacity):
    """The straightforward composition: later masks on top, each class its palette colour, one blend."""
    from usedge.stream.overlay import _lut

    colour = np.zeros_like(frame_bgr)
    covered = np.zeros(frame_bgr.shape[:2], bool)
    for shift, mask in masks:
        for c in range(1, int(mask.max()) + 1):
            colour[mask == c] = _lut(shift)[c]
            covered |= mask == c
    blend = np.clip(np.rint(frame_bgr * (1.0 - opacity) + colour * opacity), 0, 255).astype(np.uint8)
    out = frame_bgr.copy()
    out[covered] = blend[covered]
    return out


def test_overlapping_multiclass_masks_blend_like_the_straightforward_composition():
    rng = np.random.default_rng(3)
    h, w = 90, 130
    frame = rng.integers(0, 256, (h, w, 3), np.uint8)
    masks = []
    for k, classes in enumerate((2, 4, 1)):                  # overlapping rectangles of several classes
        m = np.zeros((h, w), np.uint8)
        for c in range(1, classes + 1):
            y, x = rng.integers(0, h - 30), rng.integers(0, w - 40)
            m[y:y + 30, x:x + 40] = c
        masks.append(m)
    masks[1] = np.asfortranarray(masks[1])                   # a non-contiguous mask is read too
    result = FrameResult(w, h, {f"t{k}": SegmentationResult(f"t{k}", m, ()) for k, m in enumerate(masks)})
    out = draw(frame, result, opacity=0.4, contours=False)
    expected = _reference_blend(frame, list(enumerate(masks)), 0.4)
    assert np.abs(out.astype(int) - expected).max() <= 1      # OpenCV rounds the blend in its own arithmetic
    assert ((out != frame).any(axis=2) == np.any([m > 0 for m in masks], axis=0)).all()
