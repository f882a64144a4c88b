"""TaskEvaluator / EvalReport over real task specs."""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from usedge.errors import ConfigError, DataError
from usedge.metrics import EvalReport, make_evaluator
from usedge.tasks import ALL_TASKS, get_task

#: computing the metrics needs scikit-learn and scipy (the cpu extra); the tests of the error without them do not
needs_metrics = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("sklearn", "scipy")),
                                   reason="metrics need scikit-learn and scipy (pip install 'usedge[cpu]')")

TASKS = [get_task(t) for t in ("cardiac_multi", "breast_3cls", "thyroid_nodule_det", "FUGC")]


def _filled_report() -> EvalReport:
    report = EvalReport(TASKS)
    gt = np.zeros((8, 8), np.uint8)
    gt[0:2, 0:2] = 1
    gt[4:6, 4:6] = 2  # class 3 (left_atrium) absent
    report.update("cardiac_multi", gt, gt)                  # dice 1,1,1  hd 0,0,0
    pred = gt.copy()
    pred[4:6, 4:6] = 0
    report.update("cardiac_multi", pred[::2, ::2], gt)  # 4x4, resized nearest to 8x8; class 2 missed
    for probs, label in (([0.7, 0.2, 0.1], 0), ([0.1, 0.8, 0.1], 1), ([0.2, 0.3, 0.5], 2), ([0.5, 0.4, 0.1], 1)):
        report.update("breast_3cls", probs, label)
    report.update("thyroid_nodule_det", [0, 0, 2, 2], [0, 0, 2, 4])
    report.update("thyroid_nodule_det", [0, 0, 2, 2], [0, 0, 2, 2])
    report.update("FUGC", [[0, 0], [3, 4]], [[0, 0], [0, 0]])
    return report


@needs_metrics
def test_segmentation_result():
    res = _filled_report().results()["cardiac_multi"]
    diag = math.hypot(8, 8)
    assert res["n"] == 2
    assert res["dice_lv_cavity"] == 1.0 and res["dice_lv_myocardium"] == 0.5 and res["dice_left_atrium"] == 1.0
    assert res["hd_lv_myocardium"] == pytest.approx(diag / 2)
    assert res["dice"] == pytest.approx(2.5 / 3)
    assert res["hd"] == pytest.approx(diag / 6)


@needs_metrics
def test_other_kinds_results():
    res = _filled_report().results()
    assert res["breast_3cls"]["accuracy"] == pytest.approx(0.75) and res["breast_3cls"]["n"] == 4
    assert set(res["breast_3cls"]) == {"accuracy", "f1_macro", "f1_weighted", "auc", "mcc", "n"}
    assert res["thyroid_nodule_det"] == {"iou": pytest.approx(0.75), "n": 2}
    assert res["FUGC"] == {"mre": pytest.approx(2.5), "mre_internal_os": 0.0, "mre_external_os": 5.0, "n": 1}


def test_primary_and_direction():
    primaries = {t.id: (make_evaluator(t).primary, make_evaluator(t).higher_is_better) for t in TASKS}
    assert primaries == {"cardiac_multi": ("dice", True), "breast_3cls": ("accuracy", True),
                         "thyroid_nodule_det": ("iou", True), "FUGC": ("mre", False)}


@needs_metrics
def test_family_summary_markdown_and_json():
    report = EvalReport([*TASKS, get_task("fetal_head")])  # fetal_head gets no images
    for tid, (p, t) in zip(["FUGC"], [([[0, 0], [3, 4]], [[0, 0], [0, 0]])]):
        report.update(tid, p, t)
    summary = report.family_summary()
    assert summary["regression"] == {"mre": 2.5, "tasks": 1}
    assert summary["segmentation"]["tasks"] == 0 and math.isnan(summary["segmentation"]["dice"])
    text = report.to_markdown()
    assert "| FUGC | 1 | 2.5000 |" in text and "### averages per kind" in text
    data = report.to_json()
    json.dumps(data, allow_nan=False)
    assert data["tasks"]["fetal_head"]["dice"] is None and data["tasks"]["FUGC"]["primary"] == "mre"
    full = _filled_report().family_summary()
    assert full["detection"] == {"iou": pytest.approx(0.75), "tasks": 1}


def test_bad_updates_raise():
    report = EvalReport(TASKS)
    with pytest.raises(ConfigError):
        report.update("no_such_task", 0, 0)
    with pytest.raises(DataError):
        report.update("breast_3cls", [0.5, 0.5], 0)
    with pytest.raises(DataError):
        report.update("breast_3cls", [0.5, 0.3, 0.2], 3)
    with pytest.raises(DataError):
        report.update("FUGC", [[0, 0]], [[0, 0]])
    with pytest.raises(DataError):
        report.update("thyroid_nodule_det", [0, 0, 1], [0, 0, 1, 1])


def test_metrics_import_without_scipy_or_sklearn():
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('scipy', 'sklearn'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
from usedge.errors import DependencyError
import usedge.metrics as m
assert m.box_iou([0, 0, 1, 1], [0, 0, 1, 1]) == 1.0
assert m.dice_score(np.ones((2, 2)), np.ones((2, 2))) == 1.0
for call in (lambda: m.hausdorff_distance(np.eye(3), np.eye(3)),
             lambda: m.classification_metrics(np.array([0, 1]), np.eye(2))):
    try:
        call()
    except DependencyError as exc:
        assert 'pip install' in str(exc)
    else:
        raise SystemExit('no DependencyError')
"""
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_metrics
def test_reports_carry_the_official_auc_by_default_and_label_the_variant():
    """The official evaluator gives 0.0 where AUC cannot be computed and averages it in; usedge's variant
    (NaN, skipped) must be asked for, and says it is not the official number."""
    cls = [t for t in ALL_TASKS if t.kind.value == "classification" and t.num_classes == 2][:2]
    rows = {cls[0].id: [(0, 0.2), (0, 0.7), (0, 0.4)], cls[1].id: [(0, 0.2), (1, 0.7), (0, 0.8), (1, 0.9)]}
    out = {}
    for mode in ("official", "defined"):
        report = EvalReport(cls, **({} if mode == "official" else {"auc": mode}))
        with pytest.warns(UserWarning):
            for tid, items in rows.items():
                for label, p1 in items:
                    report.update(tid, [1 - p1, p1], label)
            out[mode] = (report.results(), report.family_summary(), report.to_markdown(), report.to_json())
    res, fam, text, data = out["official"]
    assert res[cls[0].id]["auc"] == 0.0 and res[cls[1].id]["auc"] == pytest.approx(0.75)
    assert fam["classification"]["auc"] == pytest.approx(0.375)  # the official mean: (0.0 + 0.75) / 2
    assert "official evaluator" in text and data["auc"] == "official"
    res, fam, text, data = out["defined"]
    assert math.isnan(res[cls[0].id]["auc"]) and fam["classification"]["auc"] == pytest.approx(0.75)
    assert "NOT the official number" in text and data["auc"] == "defined"
