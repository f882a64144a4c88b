"""Score a runtime :class:`~usedge.runtime.predictor.Predictor` on a labelled split (``usedge eval --bundle``):
raw frames in, typed results out, the same report and submission files as :mod:`usedge.metrics.scoring`.
No torch."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
    seen: dict[str, list[int]] = {}
    scores: dict[str, list[float]] = {}
    accepted: dict[str, list[bool]] = {}
    for task_id, batch in batches:
        images = [s.load_image() for s in batch]
        for s, im, res in zip(batch, images, predictor.predict_batch(images, tasks=[task_id])):
            count = seen.setdefault(task_id, [0, 0])
            count[0] += 1
            count[1] += not res.accepted
            scores.setdefault(task_id, []).append(res.gate.scores.get("ood", np.nan) if res.gate else np.nan)
            accepted.setdefault(task_id, []).append(res.accepted)
            pred = _as_metric_input(res[task_id])
            report.update(task_id, pred, s.target())
            if writer:
                h, w = im.shape[:2]
                write_prediction(writer, s.task, s, (pred, 0.0) if s.task.kind is TaskKind.DETECTION else pred, w, h)
    if writer:
        writer.close()
    report.gate = gate_rates(seen, getattr(predictor, "gate", None))
    report.selective = None
    if report.gate.get("distance_check"):
        from usedge.metrics.selective import selective_report

        report.selective = selective_report(report.per_sample(), {t: np.array(v) for t, v in scores.items()},
                                            {t: np.array(v) for t, v in accepted.items()})
    return report


def gate_rates(seen: dict[str, list[int]], gate) -> dict:
    """What the frame gate did on a labelled split: per task (images, rejected) and overall; every image was
    scored either way (the report's metrics are of all of them)."""
    if gate is None:
        return {"enabled": False}
    total = sum(n for n, _ in seen.values())
    rejected = sum(r for _, r in seen.values())
    return {"enabled": True, "distance_check": gate.ood_available, "note": gate.note, "images": total,
            "rejected": rejected, "rejected_fraction": rejected / total if total else 0.0,
            "tasks": {t: {"images": n, "rejected": r} for t, (n, r) in seen.items()}}


def _as_metric_input(result) -> object:
    from usedge.runtime.results import ClassificationResult, DetectionResult, SegmentationResult

    if isinstance(result, SegmentationResult):
        return result.mask
    if isinstance(result, ClassificationResult):
        return result.probs
    if isinstance(result, DetectionResult):
        return result.box
    return result.points
