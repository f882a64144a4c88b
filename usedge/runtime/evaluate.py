"""Score a runtime :class:`~usedge.runtime.predictor.Predictor` on a labelled split (``usedge eval --bundle``):
raw frames in, typed results out, the same report and submission files as :mod:`usedge.metrics.scoring`.
No torch."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from usedge.data.fmcuia import Sample
from usedge.metrics.evaluator import EvalReport
from usedge.metrics.scoring import setup, write_prediction
from usedge.tasks import TaskKind


def evaluate_with_predictor(predictor, samples: Sequence[Sample], tasks: Sequence[str] | None = None,
                            submission: str | Path | None = None, batch_size: int = 8,
                            auc: str = "official") -> EvalReport:
    """Score a runtime :class:`~usedge.runtime.predictor.Predictor` (raw frames in, typed results out): the
    accuracy users get from the runtime they run, not from the torch path."""
    report, writer, batches = setup(samples, list(tasks or predictor.tasks), submission, batch_size, auc)
    for task_id, batch in batches:
        images = [s.load_image() for s in batch]
        for s, im, res in zip(batch, images, predictor.predict_batch(images, tasks=[task_id])):
            pred = _as_metric_input(res[task_id])
            report.update(task_id, pred, s.target())
            if writer:
                h, w = im.shape[:2]
                write_prediction(writer, s.task, s, (pred, 0.0) if s.task.kind is TaskKind.DETECTION else pred, w, h)
    if writer:
        writer.close()
    return report


def _as_metric_input(result) -> object:
    from usedge.runtime.results import ClassificationResult, DetectionResult, SegmentationResult

    if isinstance(result, SegmentationResult):
        return result.mask
    if isinstance(result, ClassificationResult):
        return result.probs
    if isinstance(result, DetectionResult):
        return result.box
    return result.points
