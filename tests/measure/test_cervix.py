"""Cervical length against exact geometry: os landmarks at a known distance, lips meeting along a drawn canal, and
the phantom's own landmarks against its lip masks."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from usedge.data.phantom import anatomy_pelvic as pelvic
from usedge.measure import measure
from usedge.runtime.results import FrameResult, LandmarkResult, SegmentationResult

W, H = 320, 240


def by_name(ms):
    return {m.name: m for m in ms}


def os_points(points) -> FrameResult:
    pts = np.asarray(points, np.float64)
    return FrameResult(W, H, {"FUGC": LandmarkResult("FUGC", pts, ("internal_os", "external_os"), W, H)})


def lips(mask) -> FrameResult:
    return FrameResult(W, H, {"cervix_multi": SegmentationResult(
        "cervix_multi", mask, ("background", "anterior_lip", "posterior_lip"))})


def test_cervical_length_from_landmarks_in_mm_with_non_square_pixels():
    got = by_name(measure(os_points([(60.0, 100.0), (180.0, 150.0)]), (0.1, 0.2)))["CL"]
    assert got.unit == "mm" and got.value == pytest.approx(math.hypot(120 * 0.1, 50 * 0.2))
    assert by_name(measure(os_points([(60.0, 100.0), (400.0, 150.0)]), (0.1, 0.1)))["CL"].withheld


@pytest.mark.parametrize("angle", [0.0, 20.0, -35.0])
def test_cervical_length_from_the_lips_is_the_canal_between_them(angle):
    """Two lips, one above and one below a straight canal of 150 px, rotated by ``angle``."""
    mask = np.zeros((H, W), np.uint8)
    c, half = np.array([160.0, 120.0]), 75.0
    d = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    n = np.array([-d[1], d[0]])
    for label, side in ((1, -1), (2, 1)):
        quad = np.array([c - d * half, c + d * half, c + d * half + side * n * 30, c - d * half + side * n * 30])
        cv2.fillPoly(mask, [np.round(quad).astype(np.int32)], label)
    got = by_name(measure(lips(mask), (0.2, 0.2)))["CL_mask"]
    assert got.value == pytest.approx(150 * 0.2, abs=0.6)
    assert got.detail["traced"] >= got.value - 1e-3          # traced is rounded to 3 decimals


def test_the_phantom_os_landmarks_and_lips_give_the_same_length():
    """The generator draws the FUGC points and the cervix_multi lips from one scene per seed."""
    errors = []
    for seed in range(8):
        pts = np.asarray(pelvic.fugc(np.random.default_rng(seed), 256).label, np.float64)
        mask = np.asarray(pelvic.cervix_multi(np.random.default_rng(seed), 256).label)
        r = FrameResult(256, 256, {
            "FUGC": LandmarkResult("FUGC", pts, ("internal_os", "external_os"), 256, 256),
            "cervix_multi": SegmentationResult("cervix_multi", mask, ("background", "anterior", "posterior"))})
        got = by_name(measure(r, (0.3, 0.3)))
        errors.append(abs(got["CL"].value - got["CL_mask"].value) / got["CL"].value)
    assert max(errors) < 0.05 and float(np.mean(errors)) < 0.03, errors


def test_lips_that_do_not_meet_are_withheld():
    mask = np.zeros((H, W), np.uint8)
    cv2.rectangle(mask, (50, 50), (150, 90), 1, -1)
    cv2.rectangle(mask, (50, 120), (150, 160), 2, -1)                   # a gap: no canal
    got = by_name(measure(lips(mask), (0.2, 0.2)))["CL_mask"]
    assert got.value is None and "do not meet" in got.withheld
    assert by_name(measure(lips(np.zeros((H, W), np.uint8)), None))["CL_mask"].withheld
