"""Evaluation metrics of the FMC-UIA challenge, matching the official ``evaluate.py``.

* segmentation: Dice and Hausdorff distance (pixels) per foreground class → :mod:`.segmentation`
* classification: accuracy, macro / weighted F1, ROC AUC, MCC → :mod:`.classification`
* detection: IoU of the one predicted box → :mod:`.detection`
* regression: mean radial error (pixels) → :mod:`.regression`

Only numpy is imported here; scipy (Hausdorff distance) and scikit-learn (classification metrics) are
imported when a function needs them and raise :class:`usedge.errors.DependencyError` if missing.

Example::

    from usedge.metrics import EvalReport
    report = EvalReport(parse_tasks("all"))
    report.update("fetal_head", pred_mask, gt_mask)
    print(report.to_markdown())
"""
from __future__ import annotations

from usedge.metrics.classification import classification_metrics, normalise_probs, roc_auc
from usedge.metrics.detection import box_iou, mean_iou
from usedge.metrics.evaluator import (
    FAMILY_METRICS,
    ClassificationEvaluator,
    DetectionEvaluator,
    EvalReport,
    RegressionEvaluator,
    SegmentationEvaluator,
    TaskEvaluator,
    make_evaluator,
)
from usedge.metrics.regression import mean_radial_error, radial_errors
from usedge.metrics.segmentation import dice_score, hausdorff_distance, resize_nearest, segmentation_scores

__all__ = [
    "FAMILY_METRICS",
    "ClassificationEvaluator",
    "DetectionEvaluator",
    "EvalReport",
    "RegressionEvaluator",
    "SegmentationEvaluator",
    "TaskEvaluator",
    "box_iou",
    "classification_metrics",
    "dice_score",
    "hausdorff_distance",
    "make_evaluator",
    "mean_iou",
    "mean_radial_error",
    "normalise_probs",
    "radial_errors",
    "resize_nearest",
    "roc_auc",
    "segmentation_scores",
]
