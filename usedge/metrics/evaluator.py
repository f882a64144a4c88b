"""Per-task metric accumulators and an all-task report.

One :class:`TaskEvaluator` per task takes ONE image per :meth:`~TaskEvaluator.update`:

==============  ==========================================  =======================================
kind            prediction, target                          result keys
==============  ==========================================  =======================================
segmentation    class map (any size), gt class map (H, W)   dice, hd, dice_<class>, hd_<class>, n
classification  probabilities (C,), label int               accuracy, f1_macro, f1_weighted, auc, mcc, n
detection       box xyxy px, gt box xyxy px                 iou, n
regression      points (K, 2) px, gt points (K, 2) px       mre, mre_<point>, n
==============  ==========================================  =======================================

Metrics with no images are NaN (``n`` = 0). Definitions: the modules of :mod:`usedge.metrics`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from usedge.errors import ConfigError, DataError
from usedge.metrics.classification import auc_computable, classification_metrics
from usedge.metrics.detection import box_iou
from usedge.metrics.regression import radial_errors
from usedge.metrics.segmentation import segmentation_scores
from usedge.tasks import TaskKind, TaskSpec

#: Metrics averaged over tasks by :meth:`EvalReport.family_summary`, per kind; the first is the primary.
FAMILY_METRICS: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.SEGMENTATION: ("dice", "hd"),
    TaskKind.CLASSIFICATION: ("accuracy", "f1_macro", "f1_weighted", "auc", "mcc"),
    TaskKind.DETECTION: ("iou",),
    TaskKind.REGRESSION: ("mre",),
}
#: the headline metric of each kind (the one map every stage reads: gate, training, distillation report, bench)
PRIMARY_METRIC: dict[TaskKind, str] = {kind: metrics[0] for kind, metrics in FAMILY_METRICS.items()}


def _mean(values: list[float] | np.ndarray, axis: int | None = None) -> Any:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan")
    return arr.mean(axis=axis)


class TaskEvaluator:
    """Accumulates one task's per-image scores; subclasses implement one kind."""

    higher_is_better: bool = True

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.n = 0

    @property
    def primary(self) -> str:
        """Name of the task's headline metric."""
        return FAMILY_METRICS[self.spec.kind][0]

    def update(self, prediction: Any, target: Any) -> None:
        """Add ONE image's prediction and ground truth."""
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        """The task's metrics over all images seen so far."""
        raise NotImplementedError

    def per_sample(self) -> np.ndarray:
        """The headline metric of each image, in update order (for paired comparisons of two models)."""
        raise NotImplementedError


class SegmentationEvaluator(TaskEvaluator):
    """Dice and HD per foreground class, averaged over images, then over classes."""

    def __init__(self, spec: TaskSpec) -> None:
        super().__init__(spec)
        self._dice: list[np.ndarray] = []
        self._hd: list[np.ndarray] = []

    def update(self, prediction: Any, target: Any) -> None:
        dice, hd = segmentation_scores(prediction, target, self.spec.num_classes)
        self._dice.append(dice)
        self._hd.append(hd)
        self.n += 1

    def result(self) -> dict[str, float]:
        names = self.spec.class_names[1:]
        nan = np.full(len(names), np.nan)
        dice = _mean(self._dice, axis=0) if self.n else nan
        hd = _mean(self._hd, axis=0) if self.n else nan
        out: dict[str, float] = {"dice": float(_mean(dice)), "hd": float(_mean(hd))}
        out.update({f"dice_{name}": float(v) for name, v in zip(names, dice)})
        out.update({f"hd_{name}": float(v) for name, v in zip(names, hd)})
        out["n"] = self.n
        return out

    def per_sample(self) -> np.ndarray:
        """Mean Dice over the foreground classes of each image (classes absent from both: left out)."""
        return np.array([float(np.nanmean(d)) if np.isfinite(d).any() else np.nan for d in self._dice])


class ClassificationEvaluator(TaskEvaluator):
    """Collects probabilities and labels; the metrics are computed over all images at :meth:`result`
    (``auc``: the AUC definition, :data:`usedge.metrics.classification.AUC_MODES`)."""

    def __init__(self, spec: TaskSpec, auc: str = "official") -> None:
        super().__init__(spec)
        self.auc = auc
        self._probs: list[np.ndarray] = []
        self._labels: list[int] = []

    def update(self, prediction: Any, target: Any) -> None:
        probs = np.asarray(prediction, dtype=np.float64).reshape(-1)
        if probs.size != self.spec.num_classes:
            raise DataError(f"{self.spec.id}: expected {self.spec.num_classes} class probabilities, "
                            f"got {probs.size}.")
        label = int(target)
        if not 0 <= label < self.spec.num_classes or label != target:
            raise DataError(f"{self.spec.id}: label {target!r} is not a class index in [0, {self.spec.num_classes}).")
        self._probs.append(probs)
        self._labels.append(label)
        self.n += 1

    def result(self) -> dict[str, float]:
        probs = np.stack(self._probs) if self._probs else np.zeros((0, self.spec.num_classes))
        return classification_metrics(np.asarray(self._labels, dtype=np.intp), probs, self.auc)

    @property
    def auc_computable(self) -> bool:
        """False where the official AUC is 0.0 only because a class is absent from these labels."""
        return auc_computable(self._labels, self.spec.num_classes)

    def per_sample(self) -> np.ndarray:
        """1.0 where the top-1 class is right, else 0.0."""
        return np.array([float(np.argmax(p) == y) for p, y in zip(self._probs, self._labels)])


class DetectionEvaluator(TaskEvaluator):
    """IoU of the predicted box with the ground-truth box, averaged over images."""

    def __init__(self, spec: TaskSpec) -> None:
        super().__init__(spec)
        self._iou: list[float] = []

    def update(self, prediction: Any, target: Any) -> None:
        pred, gt = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
        if pred.shape != (4,) or gt.shape != (4,):
            raise DataError(f"{self.spec.id}: boxes must be 4 numbers xyxy, got {pred.shape} and {gt.shape}.")
        self._iou.append(float(box_iou(pred, gt)))
        self.n += 1

    def result(self) -> dict[str, float]:
        return {"iou": float(_mean(self._iou)), "n": self.n}

    def per_sample(self) -> np.ndarray:
        return np.array(self._iou, dtype=np.float64)


class RegressionEvaluator(TaskEvaluator):
    """Mean radial error: per point, averaged over points, then over images (lower is better)."""

    higher_is_better = False

    def __init__(self, spec: TaskSpec) -> None:
        super().__init__(spec)
        self._err: list[np.ndarray] = []

    def update(self, prediction: Any, target: Any) -> None:
        k = self.spec.num_points
        pred, gt = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
        if pred.shape != (k, 2) or gt.shape != (k, 2):
            raise DataError(f"{self.spec.id}: points must have shape ({k}, 2), got {pred.shape} and {gt.shape}.")
        self._err.append(radial_errors(pred, gt))
        self.n += 1

    def result(self) -> dict[str, float]:
        per_point = _mean(self._err, axis=0) if self.n else np.full(self.spec.num_points, np.nan)
        out: dict[str, float] = {"mre": float(_mean(self._err)) if self.n else float("nan")}
        out.update({f"mre_{name}": float(v) for name, v in zip(self.spec.point_names, per_point)})
        out["n"] = self.n
        return out

    def per_sample(self) -> np.ndarray:
        """Mean radial error of each image (lower is better)."""
        return np.array([float(np.mean(e)) for e in self._err], dtype=np.float64)


_EVALUATORS: dict[TaskKind, type[TaskEvaluator]] = {
    TaskKind.SEGMENTATION: SegmentationEvaluator,
    TaskKind.CLASSIFICATION: ClassificationEvaluator,
    TaskKind.DETECTION: DetectionEvaluator,
    TaskKind.REGRESSION: RegressionEvaluator,
}


def make_evaluator(spec: TaskSpec, auc: str = "official") -> TaskEvaluator:
    """The evaluator for ``spec``'s kind (``auc``: the AUC definition of classification tasks)."""
    if spec.kind is TaskKind.CLASSIFICATION:
        return ClassificationEvaluator(spec, auc)
    return _EVALUATORS[spec.kind](spec)


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return "–" if not math.isfinite(value) else f"{value:.4f}"


#: How each AUC definition is labelled in reports.
AUC_LABELS = {
    "official": "AUC: the official evaluator's (0.0 where scikit-learn cannot compute it, e.g. a class absent "
                "from the split)",
    "defined": "AUC: usedge's variant, NOT the official number (NaN with fewer than 2 classes present, "
               "left out of the averages; macro over the present classes otherwise)",
}


class EvalReport:
    """Evaluators for several tasks, their per-kind averages, and Markdown / JSON renderings.

    ``auc`` picks the classification AUC definition (:data:`usedge.metrics.classification.AUC_MODES`):
    ``official`` by default, so reports carry the challenge's numbers.
    """

    def __init__(self, tasks: Sequence[TaskSpec], auc: str = "official") -> None:
        if auc not in AUC_LABELS:
            raise ConfigError(f"unknown AUC definition {auc!r}.", fix=f"use one of: {', '.join(AUC_LABELS)}")
        self.auc = auc
        self.evaluators: dict[str, TaskEvaluator] = {spec.id: make_evaluator(spec, auc) for spec in tasks}

    def update(self, task_id: str, prediction: Any, target: Any) -> None:
        """Add one image of ``task_id``."""
        if task_id not in self.evaluators:
            raise ConfigError(f"task {task_id!r} is not part of this report.",
                              fix=f"use one of: {', '.join(self.evaluators)}")
        self.evaluators[task_id].update(prediction, target)

    def results(self) -> dict[str, dict[str, float]]:
        """``{task_id: metrics}`` for every task, in the order given."""
        return {tid: ev.result() for tid, ev in self.evaluators.items()}

    def per_sample(self) -> dict[str, np.ndarray]:
        """``{task_id: headline metric per image}`` (update order), for paired comparisons."""
        return {tid: ev.per_sample() for tid, ev in self.evaluators.items()}

    def family_summary(self, results: dict[str, dict[str, float]] | None = None) -> dict[str, dict[str, float]]:
        """Per kind: the mean over tasks with ``n > 0`` of each :data:`FAMILY_METRICS` metric (NaNs skipped).

        Each entry also has ``tasks``: how many tasks had images. Kinds with no task in the report are left out.
        """
        results = self.results() if results is None else results
        summary: dict[str, dict[str, float]] = {}
        for kind, names in FAMILY_METRICS.items():
            rows = [results[t] for t, ev in self.evaluators.items() if ev.spec.kind is kind]
            if not rows:
                continue
            seen = [r for r in rows if r["n"] > 0]
            entry: dict[str, float] = {}
            for name in names:
                vals = [r[name] for r in seen if math.isfinite(r[name])]
                entry[name] = float(np.mean(vals)) if vals else float("nan")
            entry["tasks"] = len(seen)
            summary[kind.value] = entry
        return summary

    def to_markdown(self) -> str:
        """One table per kind (a row per task), then a table of per-kind averages."""
        results = self.results()
        lines: list[str] = []
        cls = [ev for ev in self.evaluators.values() if isinstance(ev, ClassificationEvaluator)]
        if cls:
            lines += [f"{AUC_LABELS[self.auc]}.", ""]
            odd = [ev.spec.id for ev in cls if ev.n and not ev.auc_computable]
            if odd:
                lines += [f"AUC not computable (a class absent from the split; official: 0.0, variant: NaN): "
                          f"{', '.join(odd)}.", ""]
        for kind in FAMILY_METRICS:
            tids = [t for t, ev in self.evaluators.items() if ev.spec.kind is kind]
            if not tids:
                continue
            cols = ["n", *FAMILY_METRICS[kind]]
            lines += [f"### {kind.value}", "", "| task | " + " | ".join(cols) + " |",
                      "|---" * (len(cols) + 1) + "|"]
            lines += ["| " + " | ".join([t, *(_fmt(results[t][c]) for c in cols)]) + " |" for t in tids]
            lines.append("")
        lines += ["### averages per kind", "", "| kind | tasks | metrics |", "|---|---|---|"]
        for kind, entry in self.family_summary(results).items():
            text = ", ".join(f"{k} {_fmt(v)}" for k, v in entry.items() if k != "tasks")
            lines.append(f"| {kind} | {entry['tasks']} | {text} |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """``{"tasks": {id: {"kind", "primary", "higher_is_better", **metrics}}, "families": ...}``; NaN → None."""
        results = self.results()
        tasks = {
            tid: {"kind": ev.spec.kind.value, "primary": ev.primary,
                  "higher_is_better": ev.higher_is_better, **results[tid]}
            for tid, ev in self.evaluators.items()
        }
        return _json_value({"tasks": tasks, "families": self.family_summary(results), "auc": self.auc})
