"""Lesion sizes and LV size against drawn shapes of known size; EF over a synthetic cine of known volumes."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from usedge.measure import measure
from usedge.measure.cardiac import area_length_volume, ejection_fraction
from usedge.runtime.results import DetectionResult, FrameResult, SegmentationResult

W, H = 400, 300


def by_name(ms):
    return {m.name: m for m in ms}


def nodules(*ellipses) -> FrameResult:
    mask = np.zeros((H, W), np.uint8)
    for centre, axes, angle in ellipses:
        cv2.ellipse(mask, centre, axes, angle, 0, 360, 1, -1)
    return FrameResult(W, H, {"thyroid_nodule": SegmentationResult("thyroid_nodule", mask, ("background", "nodule"))})


def test_every_lesion_gets_its_axes_area_and_orientation():
    r = nodules(((120, 150), (60, 25), 30.0), ((300, 150), (20, 40), 0.0))     # a wide one, a tall one
    ms = [m for m in measure(r, (0.1, 0.1)) if m.name.startswith("thyroid_nodule.")]
    first = {m.name: m for m in ms if m.detail["lesion"] == 0}
    second = {m.name: m for m in ms if m.detail["lesion"] == 1}
    assert first["thyroid_nodule.long_axis"].value == pytest.approx(2 * 60.5 * 0.1, abs=0.25)
    assert first["thyroid_nodule.short_axis"].value == pytest.approx(2 * 25.5 * 0.1, abs=0.25)
    assert first["thyroid_nodule.area"].unit == "mm2"
    assert first["thyroid_nodule.area"].value == pytest.approx(math.pi * 60 * 25 * 0.01, rel=0.03)
    assert first["thyroid_nodule.taller_than_wide"].value == 0.0
    assert second["thyroid_nodule.taller_than_wide"].value == 1.0
    assert second["thyroid_nodule.long_axis"].value == pytest.approx(2 * 40.5 * 0.1, abs=0.25)


def test_a_lesion_cut_by_the_edge_or_nothing_segmented_is_withheld():
    ms = measure(nodules(((10, 150), (40, 20), 0.0)), (0.1, 0.1))
    assert len(ms) == 1 and ms[0].value is None and "touches the image edge" in ms[0].withheld
    empty = measure(FrameResult(W, H, {"breast_lesion": SegmentationResult(
        "breast_lesion", np.zeros((H, W), np.uint8))}), None)
    assert [m.withheld for m in empty] == ["breast_lesion: no lesion segmented"]


def test_detected_boxes_are_sized_and_low_scores_withheld():
    det = DetectionResult("uterine_fibroid_det", np.array([100.0, 50.0, 160.0, 150.0]), 0.9, W, H)
    got = by_name(measure(FrameResult(W, H, {"uterine_fibroid_det": det}), (0.2, 0.3)))
    assert got["uterine_fibroid_det.long_axis"].value == pytest.approx(30.0)        # 100 px tall x 0.3 mm
    assert got["uterine_fibroid_det.short_axis"].value == pytest.approx(12.0)
    assert got["uterine_fibroid_det.taller_than_wide"].value == 1.0
    weak = DetectionResult("uterine_fibroid_det", np.array([100.0, 50.0, 160.0, 150.0]), 0.2, W, H)
    ms = measure(FrameResult(W, H, {"uterine_fibroid_det": weak}), (0.2, 0.3))
    assert len(ms) == 1 and "no box scores" in ms[0].withheld


def heart(length_px=160, half_width=40, gap=True) -> FrameResult:
    """An LV cavity (1) as a half-ellipse capped by the mitral plane at y = 220, the atrium (3) below it."""
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (200, 220), (half_width, length_px), 0, 180, 360, 1, -1)     # apex at y = 220 - length
    cv2.ellipse(mask, (200, 250), (35, 28), 0, 0, 360, 3, -1) if gap else None
    return FrameResult(W, H, {"cardiac_multi": SegmentationResult(
        "cardiac_multi", mask, ("background", "lv_cavity", "lv_myocardium", "left_atrium"))})


def test_lv_length_area_and_area_length_volume():
    got = by_name(measure(heart(), (0.25, 0.25)))
    assert got["LV_length"].value == pytest.approx(160 * 0.25, abs=0.6)
    area = math.pi * 40 * 160 / 2 * 0.25 ** 2
    assert got["LV_area"].unit == "mm2" and got["LV_area"].value == pytest.approx(area, rel=0.03)
    assert got["LV_volume"].value == pytest.approx(area_length_volume(area, 40.0), rel=0.07)
    assert "calibrated" in by_name(measure(heart(), None))["LV_volume"].withheld
    assert "left atrium" in by_name(measure(heart(gap=False), (0.25, 0.25)))["LV_length"].withheld


def test_area_length_volume_of_a_prolate_ellipsoid_is_exact():
    """A prolate ellipsoid of semi-axes L/2 and D/2: its long-axis section has area pi L D / 4 and volume pi L D^2 / 6."""
    length, diameter = 80.0, 40.0
    area = math.pi * length * diameter / 4
    assert area_length_volume(area, length) == pytest.approx(math.pi * length * diameter ** 2 / 6 / 1000, rel=1e-12)


def test_ejection_fraction_over_a_cine():
    vols = [100 - 40 * (0.5 - 0.5 * math.cos(2 * math.pi * i / 20)) for i in range(30)]   # 100 ml -> 60 ml
    vols[5] = None
    ef = ejection_fraction(vols)
    assert ef.value == pytest.approx(40.0, abs=0.1) and ef.detail["ED_frame"] in (0, 20) and ef.detail["ES_frame"] == 10
    assert ejection_fraction(vols[:6]).value is None
