"""Score any predictor (torch model, ONNX on OpenVINO / ORT, TensorRT engine) on a labelled split with the
challenge's metrics, through the shared preprocessing and decoding (:mod:`usedge.data.preprocess`,
:mod:`usedge.data.decode`), optionally writing the submission files. No torch.

Used by training validation, the export gate and ``usedge eval``; the runtime's
:func:`usedge.runtime.evaluate.evaluate_with_predictor` scores a bundle's Predictor with the same report.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from usedge.data.decode import decode
from usedge.data.fmcuia import Sample
from usedge.data.preprocess import PreprocessSpec, preprocess_batch
from usedge.data.submission import SubmissionWriter
from usedge.metrics.evaluator import EvalReport
from usedge.tasks import TaskKind, get_task

#: images N×3×S×S float32, task id -> named outputs (at least that task's)
Predict = Callable[[np.ndarray, str], dict[str, np.ndarray]]


def evaluate_predictor(predict: Predict, spec: PreprocessSpec, samples: Sequence[Sample], tasks: Sequence[str],
                       submission: str | Path | None = None, batch_size: int = 16, auc: str = "official") -> EvalReport:
    """Run ``predict`` on every sample of ``tasks`` and return the EvalReport (optionally write a submission;
    ``auc``: the AUC definition, official by default)."""
    report, writer, batches = setup(samples, tasks, submission, batch_size, auc)
    for _, batch in batches:
        _score_batch(predict, spec, batch, report, writer)
    if writer:
        writer.close()
    return report


def setup(samples: Sequence[Sample], tasks: Sequence[str], submission, batch_size: int, auc: str = "official"):
    """(report, writer or None, [(task_id, batch of samples)]) grouped by task, in the samples' order."""
    by_task: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if s.task_id in tasks:
            by_task[s.task_id].append(s)
    report = EvalReport([get_task(t) for t in by_task], auc=auc)
    writer = SubmissionWriter(submission) if submission else None
    batches = [(t, items[i:i + batch_size]) for t, items in by_task.items() for i in range(0, len(items), batch_size)]
    return report, writer, batches


def _score_batch(predict: Predict, pre: PreprocessSpec, batch: list[Sample], report: EvalReport, writer) -> None:
    spec = batch[0].task
    images = [s.load_image() for s in batch]
    out = predict(preprocess_batch(images, pre), spec.id)
    for n, (s, im) in enumerate(zip(batch, images)):
        h, w = im.shape[:2]
        pred = decode(spec, out, n, w, h, pre.seg_decode)
        report.update(s.task_id, pred[0] if spec.kind is TaskKind.DETECTION else pred, s.target())
        if writer:
            write_prediction(writer, spec, s, pred, w, h)


def write_prediction(writer: SubmissionWriter, spec, s: Sample, pred, w: int, h: int) -> None:
    if spec.kind is TaskKind.SEGMENTATION:
        writer.add_segmentation(s, pred)
    elif spec.kind is TaskKind.CLASSIFICATION:
        writer.add_classification(s, pred)
    elif spec.kind is TaskKind.DETECTION:
        writer.add_detection(s, pred[0], (w, h))
    else:
        writer.add_regression(s, pred, (w, h))


__all__ = ["Predict", "evaluate_predictor", "setup", "write_prediction"]
