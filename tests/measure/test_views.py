"""The view check: a task head answers on every frame, so a measurement is withheld when the frame's own
classifier says it shows another view (usedge.measure.views)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from usedge.measure import measure
from usedge.measure.compute import with_views
from usedge.runtime.results import ClassificationResult, FrameResult, LandmarkResult, SegmentationResult
from usedge.tasks import TASKS

W, H = 400, 300


def plane(label: str, p: float = 0.9) -> ClassificationResult:
    names = TASKS.get("fetal_plane_cls").class_names
    probs = np.full(len(names), (1 - p) / (len(names) - 1))
    probs[names.index(label)] = p
    return ClassificationResult("fetal_plane_cls", probs, names)


def fetal(view: str | None) -> FrameResult:
    """A head mask, an abdomen mask (the same ellipse: what the abdomen head draws on a head section) and two
    femur points, all valid on their own, and (``view``) the plane classifier's answer."""
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (200, 150), (120, 90), 0, 0, 360, 1, -1)
    tasks = {"fetal_head": SegmentationResult("fetal_head", mask, ("background", "head")),
             "fetal_abdomen_multi": SegmentationResult("fetal_abdomen_multi", mask.copy(),
                                                       ("background", "abdomen", "stomach", "umbilical_vein", "spine")),
             "fetal_femur": LandmarkResult("fetal_femur", np.array([[100.0, 100.0], [220.0, 140.0]]),
                                           ("femur_end_a", "femur_end_b"), W, H)}
    if view is not None:
        tasks["fetal_plane_cls"] = plane(view)
    return FrameResult(W, H, tasks)


def by_name(ms):
    return {m.name: m for m in ms}


@pytest.mark.parametrize("view, shown", [("brain", {"HC", "BPD", "OFD", "CI", "GA_HC"}), ("abdomen", {"AC"}),
                                         ("femur", {"FL", "GA_FL"})])
def test_only_the_measurements_of_the_plane_the_classifier_sees_are_reported(view, shown):
    got = by_name(measure(fetal(view), 0.3))
    biometry = {"HC", "BPD", "OFD", "CI", "GA_HC", "AC", "FL", "GA_FL"}
    assert {n for n in biometry if got[n].ok} == shown
    for n in biometry - shown:
        assert f"shows {view!r}" in got[n].withheld and got[n].detail["view"]["label"] == view


def test_the_abdomen_wins_among_all_but_the_thorax_the_head_and_femur_among_all():
    """A frame the classifier calls thorax at 0.6, abdomen at 0.3: the thorax is the section it confuses the abdomen
    with, so AC is measured; HC and FL must win among every class, and are not. Called "other" at 0.6, the frame
    gets no AC either."""
    names = TASKS.get("fetal_plane_cls").class_names
    for rival, ac in (("thorax", True), ("other", False)):
        probs = np.zeros(len(names))
        probs[names.index(rival)], probs[names.index("abdomen")], probs[names.index("brain")] = 0.6, 0.3, 0.1
        r = fetal(None)
        r.tasks["fetal_plane_cls"] = ClassificationResult("fetal_plane_cls", probs, names)
        got = by_name(measure(r, 0.3))
        assert got["AC"].ok is ac and not got["HC"].ok and not got["FL"].ok
        assert f"shows {rival!r}, not 'brain'" in got["HC"].withheld and f"shows {rival!r}, not 'femur'" in got["FL"].withheld
        assert ac or f"shows {rival!r}, not 'abdomen'" in got["AC"].withheld


def test_without_the_classifier_the_measurement_says_its_view_was_not_checked():
    got = by_name(measure(fetal(None), 0.3))
    assert got["HC"].ok and got["AC"].ok           # nothing to check with: both answer, and say so
    assert got["AC"].detail["view"] == {"checked": False, "why": "no fetal_plane_cls in the result"}


def test_a_lesion_is_measured_only_in_the_organ_the_organ_classifier_sees():
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (200, 150), (40, 25), 0, 0, 360, 1, -1)
    names = TASKS.get("organ_cls").class_names
    for organ, ok in (("breast", True), ("thyroid", False)):
        probs = np.full(len(names), 0.02)
        probs[names.index(organ)] = 0.9
        r = FrameResult(W, H, {"breast_lesion": SegmentationResult("breast_lesion", mask, ("background", "lesion")),
                               "organ_cls": ClassificationResult("organ_cls", probs, names)})
        got = [m for m in measure(r, 0.2) if m.name.startswith("breast_lesion")]
        assert all(m.ok for m in got) is ok and len(got) >= 1
        if not ok:
            assert "shows 'thyroid', not 'breast'" in got[0].withheld


def organ(label: str, p: float) -> ClassificationResult:
    names = TASKS.get("organ_cls").class_names
    probs = np.full(len(names), (1 - p) / (len(names) - 1))
    probs[names.index(label)] = p
    return ClassificationResult("organ_cls", probs, names)


@pytest.mark.parametrize("label, p, ok", [("heart", 0.9, True), ("heart", 0.3, False), ("thyroid", 0.9, False)])
def test_the_left_ventricle_is_measured_only_where_the_organ_classifier_sees_a_heart(label, p, ok):
    """The cardiac_multi head outlines a "ventricle" on any frame: its LV size needs organ_cls's heart, at 0.5 or
    more."""
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (200, 220), (40, 160), 0, 180, 360, 1, -1)
    cv2.ellipse(mask, (200, 250), (35, 28), 0, 0, 360, 3, -1)
    r = FrameResult(W, H, {"cardiac_multi": SegmentationResult("cardiac_multi", mask, ("background", "lv_cavity",
                                                                                        "lv_myocardium", "left_atrium")),
                           "organ_cls": organ(label, p)})
    got = by_name(measure(r, 0.25))
    assert {n for n in ("LV_area", "LV_length", "LV_volume") if got[n].ok} == (
        {"LV_area", "LV_length", "LV_volume"} if ok else set())
    if not ok:
        assert ("organ_cls is unsure" if label == "heart" else "shows 'thyroid', not 'heart'") in got["LV_area"].withheld


def test_with_views_adds_the_classifiers_a_stream_needs_when_the_model_has_them():
    assert with_views(["fetal_head"], ["fetal_head", "fetal_plane_cls"]) == ["fetal_head", "fetal_plane_cls"]
    assert with_views(["fetal_head"], ["fetal_head"]) == ["fetal_head"]          # the model has none: unchecked
    assert with_views(["cardiac_multi"], TASKS.names()) == ["cardiac_multi", "organ_cls"]
    assert with_views(["IUGC"], TASKS.names()) == ["IUGC"]                                # no view declared
    assert with_views(["thyroid_nodule", "breast_lesion"], TASKS.names()) == ["thyroid_nodule", "breast_lesion",
                                                                           "organ_cls"]


def test_the_packaged_default_withholds_ac_and_fl_on_phantom_head_frames():
    """Ten phantom head sections: unchecked, the femur head reports an FL on every one; with the plane classifier
    the AC and FL are withheld on (nearly) all of them and the HC kept."""
    import usedge
    from usedge.data.phantom import generate_sample, sample_rng

    checked = usedge.load(tasks="fetal_head,fetal_abdomen_multi,fetal_femur,fetal_plane_cls")
    unchecked = usedge.load(tasks="fetal_head,fetal_abdomen_multi,fetal_femur")
    counts = {"HC": 0, "AC": 0, "FL": 0, "FL unchecked": 0}
    for i in range(10):
        image = generate_sample("fetal_head", sample_rng(7, "val", "fetal_head", i)).image
        got = by_name(measure(checked(image), 0.2))
        for n in ("HC", "AC", "FL"):
            counts[n] += got[n].ok
        counts["FL unchecked"] += by_name(measure(unchecked(image), 0.2))["FL"].ok
        if not got["AC"].ok and got["HC"].ok:
            assert "shows 'brain'" in got["AC"].withheld
    assert counts["FL unchecked"] == 10 and counts["HC"] >= 8 and counts["AC"] <= 2 and counts["FL"] <= 2, counts


def test_cervical_length_needs_the_maternal_cervix_among_all_planes():
    r = FrameResult(W, H, {"FUGC": LandmarkResult("FUGC", np.array([[100.0, 100.0], [180.0, 130.0]]),
                                                  ("internal_os", "external_os"), W, H)})
    for label, ok in (("maternal_cervix", True), ("other", False), ("abdomen", False)):
        r.tasks["fetal_plane_cls"] = plane(label)
        cl = by_name(measure(r, 0.2))["CL"]
        assert cl.ok is ok and (ok or f"shows {label!r}, not 'maternal_cervix'" in cl.withheld)


def test_an_organ_that_wins_a_near_uniform_answer_is_not_enough():
    """organ_cls is taught to be unsure on frames of none of its organs: thyroid winning at 0.3 is such a frame, and
    the nodule is withheld; at 0.6 it is measured."""
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (200, 150), (40, 25), 0, 0, 360, 1, -1)
    names = TASKS.get("organ_cls").class_names
    for p, ok in ((0.3, False), (0.6, True)):
        probs = np.full(len(names), (1 - p) / (len(names) - 1))
        probs[names.index("thyroid")] = p
        r = FrameResult(W, H, {"thyroid_nodule": SegmentationResult("thyroid_nodule", mask, ("background", "nodule")),
                               "organ_cls": ClassificationResult("organ_cls", probs, names)})
        got = [m for m in measure(r, 0.2) if m.name.startswith("thyroid_nodule")]
        assert len(got) >= 1 and all(m.ok for m in got) is ok
        if not ok:
            assert "organ_cls is unsure the frame shows 'thyroid' (0.30 < 0.50)" in got[0].withheld


def test_the_packaged_default_gives_no_lesion_size_cervical_length_or_lv_on_other_organs():
    """Forty phantom frames of organs none of these measurements is taken in (lung, carotid, liver, uterus): the
    default's view classifiers, taught every task's frames (usedge.train.views), withhold the thyroid nodule and
    breast lesion sizes, the FUGC cervical length and the LV size on them. Before that the first three were
    reported on 45 of these 40 frames × 3 measurements, now 15 (docs/measure.md); the LV area, unchecked, on 18 of
    the 40, checked on none. Ten cardiac frames keep their LV size."""
    import usedge
    from usedge.data.phantom import generate_sample, sample_rng

    p = usedge.load(tasks="thyroid_nodule,breast_lesion,FUGC,cardiac_multi,organ_cls,fetal_plane_cls")
    wrong, lv = [], []
    for task in ("lung", "carotid_artery", "liver_lesion_2cls", "uterine_fibroid_det"):
        for i in range(10):
            image = generate_sample(task, sample_rng(7, "val", task, i)).image
            ms = measure(p(image), 0.2)
            wrong += [(task, m.name) for m in ms
                      if m.ok and m.name in ("thyroid_nodule.long_axis", "breast_lesion.long_axis", "CL")]
            lv += [task for m in ms if m.ok and m.name == "LV_area"]
    assert len(wrong) <= 20, wrong        # 15 on 2026-12-04 (INT8; the float model fewer: docs/measure.md)
    assert len(lv) <= 2, lv
    hearts = [measure(p(generate_sample("cardiac_multi", sample_rng(7, "val", "cardiac_multi", i)).image), 0.2)
              for i in range(10)]
    assert sum(any(m.ok and m.name == "LV_area" for m in ms) for ms in hearts) >= 9
