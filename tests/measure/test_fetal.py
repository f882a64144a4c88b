"""Fetal biometry against exact truth: ellipses drawn with known axes and pixel sizes, points at known places."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from usedge.data.frames import ScanRegion
from usedge.errors import ConfigError
from usedge.measure import MEASUREMENTS, Scale, measure
from usedge.measure.ellipse import MIN_COVERAGE, fit_ellipse, fit_ellipse_robust, ramanujan_perimeter
from usedge.runtime.results import FrameResult, LandmarkResult, SegmentationResult

W, H = 400, 300


def head(a_px: float, b_px: float, angle: float = 0.0, centre=(200, 150), task="fetal_head") -> FrameResult:
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, centre, (int(a_px), int(b_px)), angle, 0, 360, 1, -1)
    names = ("background", "head") if task == "fetal_head" else ("background", "abdomen", "stomach",
                                                                 "umbilical_vein", "spine")
    return FrameResult(W, H, {task: SegmentationResult(task, mask, names)})


def by_name(ms):
    return {m.name: m for m in ms}


def test_ramanujan_is_exact_for_a_circle_and_close_for_an_ellipse():
    assert ramanujan_perimeter(10, 10) == pytest.approx(2 * math.pi * 10, rel=1e-12)
    # the series value of an ellipse with semi-axes 5 and 3 is 25.52699...
    assert ramanujan_perimeter(5, 3) == pytest.approx(25.526999, rel=1e-5)


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0])
def test_head_biometry_in_mm_from_a_drawn_ellipse(angle):
    mm = 0.25
    got = by_name(measure(head(120, 90, angle), (mm, mm)))
    a, b = 120.5 * mm, 90.5 * mm                      # cv2 fills the boundary pixels: outer edge at axis + 0.5
    assert got["HC"].unit == "mm" and got["HC"].value == pytest.approx(ramanujan_perimeter(a, b), rel=0.01)
    assert got["BPD"].value == pytest.approx(2 * b, rel=0.01) and got["OFD"].value == pytest.approx(2 * a, rel=0.01)
    assert got["CI"].unit == "%" and got["CI"].value == pytest.approx(100 * b / a, abs=1.0)
    assert got["HC"].detail["residual"] < 0.01


def test_non_square_pixels_are_scaled_before_the_fit():
    """0.2 mm wide, 0.3 mm tall pixels: a 100 x 60 px axis-aligned ellipse is 20 mm x 18 mm in semi-axes."""
    got = by_name(measure(head(100, 60), (0.2, 0.3)))
    assert got["OFD"].value == pytest.approx(2 * 100.5 * 0.2, rel=0.01)
    assert got["BPD"].value == pytest.approx(2 * 60.5 * 0.3, rel=0.01)


def test_without_calibration_lengths_are_pixels_and_say_so():
    got = by_name(measure(head(80, 60), None))
    assert got["HC"].unit == "px" and got["HC"].value == pytest.approx(ramanujan_perimeter(80.5, 60.5), rel=0.01)
    assert got["CI"].unit == "%"                      # a ratio needs no calibration
    region = ScanRegion(0, 0, W, H, "2D", "tissue", 0.1, 0.1)
    assert by_name(measure(head(80, 60), region))["HC"].unit == "mm"


def test_implausible_inputs_are_withheld_with_the_reason():
    cut = by_name(measure(head(120, 90, centre=(60, 150)), (0.2, 0.2)))       # runs off the left edge
    assert cut["HC"].value is None and "touches the image edge" in cut["HC"].withheld
    lumpy = head(80, 60)
    mask = lumpy["fetal_head"].mask
    cv2.rectangle(mask, (200, 150), (300, 240), 1, -1)                       # a box glued to the head
    bad = by_name(measure(lumpy, (0.2, 0.2)))["HC"]
    assert bad.value is None and "not an ellipse" in bad.withheld
    empty = FrameResult(W, H, {"fetal_head": SegmentationResult("fetal_head", np.zeros((H, W), np.uint8))})
    assert "nothing segmented" in by_name(measure(empty, (0.2, 0.2)))["HC"].withheld
    inner = by_name(measure(head(80, 60), (0.2, 0.2), bpd="outer-inner"))["BPD"]
    assert inner.value is None and "inner edge" in inner.withheld


def _outline(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)


def test_a_shadow_bite_or_a_leak_does_not_move_the_robust_ellipse():
    """A shadow biting into the mask and a structure leaking out of it: the plain least-squares fit follows them,
    the robust fit stays on the rest of the outline and says how much of it it used."""
    centres, truth = ramanujan_perimeter(80, 60), ramanujan_perimeter(80.5, 60.5)   # the outline's pixel centres
    for bite, leak in ((((200, 210), 25), None), (None, ((250, 140), (300, 170)))):
        mask = head(80, 60)["fetal_head"].mask
        if bite:
            cv2.circle(mask, *bite, 0, -1)
        if leak:
            cv2.rectangle(mask, *leak, 1, -1)
        plain, robust = fit_ellipse(_outline(mask)), fit_ellipse_robust(_outline(mask))
        assert abs(plain.perimeter - centres) > 0.01 * centres         # the plain fit is pulled off
        assert robust.perimeter == pytest.approx(centres, rel=0.005)
        assert 0.7 < robust.inliers < 0.95 and robust.coverage >= MIN_COVERAGE
        frame = FrameResult(W, H, {"fetal_head": SegmentationResult("fetal_head", mask)})
        got = by_name(measure(frame, (0.2, 0.2)))["HC"]
        assert got.value == pytest.approx(truth * 0.2, rel=0.01) and 0.7 < got.detail["inliers"] < 0.95
        plain_hc = by_name(measure(frame, (0.2, 0.2), ellipse_fit="plain"))["HC"]     # HC18's plain fit, on request
        assert plain_hc.value is None or abs(plain_hc.value - truth * 0.2) > 0.01 * truth * 0.2
    unknown = by_name(measure(head(80, 60), (0.2, 0.2), ellipse_fit="ransac"))["HC"]
    assert unknown.value is None and "unknown ellipse fit 'ransac'" in unknown.withheld


def test_an_arc_too_short_to_trust_is_withheld():
    """A shadow eating a third of the outline: the robust fit still finds the ellipse, but its inliers cover too
    little of the circumference to trust it, and the measurement is withheld with that reason."""
    r = head(80, 60)
    cv2.circle(r["fetal_head"].mask, (200, 230), 100, 0, -1)
    fit = fit_ellipse_robust(_outline(r["fetal_head"].mask))
    assert fit.a == pytest.approx(80, rel=0.02) and fit.residual < 0.01 and fit.coverage < MIN_COVERAGE
    hc = by_name(measure(r, (0.2, 0.2)))["HC"]
    assert hc.value is None and "of the circumference" in hc.withheld


def test_abdominal_circumference_uses_the_whole_abdomen_outline():
    r = head(110, 100, task="fetal_abdomen_multi")
    cv2.circle(r["fetal_abdomen_multi"].mask, (200, 150), 20, 2, -1)         # the stomach inside the abdomen
    ac = by_name(measure(r, (0.3, 0.3)))["AC"]
    assert ac.value == pytest.approx(ramanujan_perimeter(110.5 * 0.3, 100.5 * 0.3), rel=0.01)


def test_femur_length_from_its_end_points():
    pts = np.array([[100.0, 100.0], [160.0, 180.0]])
    r = FrameResult(W, H, {"fetal_femur": LandmarkResult("fetal_femur", pts, ("femur_end_a", "femur_end_b"), W, H)})
    fl = by_name(measure(r, (0.2, 0.3)))["FL"]
    assert fl.value == pytest.approx(math.hypot(60 * 0.2, 80 * 0.3)) and fl.unit == "mm"
    out = FrameResult(W, H, {"fetal_femur": LandmarkResult("fetal_femur", np.array([[-5.0, 10], [50, 60]]),
                                                           ("femur_end_a", "femur_end_b"), W, H)})
    assert "outside the image" in by_name(measure(out, (0.2, 0.2)))["FL"].withheld


def test_only_the_measurements_whose_tasks_are_present_run_and_each_declares_itself():
    assert set(by_name(measure(head(80, 60), None))) == {"HC", "BPD", "OFD", "CI", "GA_HC"}
    for name in MEASUREMENTS.names():
        spec = MEASUREMENTS.get(name).spec
        assert spec.tasks and spec.unit and spec.method and spec.source
    m = measure(head(80, 60), (0.2, 0.2), names=["HC"])[0].to_json()
    assert m["name"] == "HC" and m["unit"] == "mm" and isinstance(m["value"], float)
    with pytest.raises(ConfigError):
        Scale(0.2, None)
    with pytest.raises(ConfigError):
        Scale(0.0, 0.2)
