"""Evaluate a torch model on a labelled split with the challenge's metrics; optionally write the
submission files. Post-processing is the runtime's (usedge.runtime.postprocess), so a checkpoint and
its exported bundle are scored by the same code."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from usedge.data.fmcuia import Sample
from usedge.data.submission import SubmissionWriter
from usedge.data.transforms import normalize, to_gray_or_bgr_uint8, to_rgb
from usedge.metrics import EvalReport
from usedge.models.presets import ModelConfig
from usedge.runtime.postprocess import decode
from usedge.tasks import TaskKind, get_task


def preprocess(image: np.ndarray, config: ModelConfig) -> np.ndarray:
    import cv2

    rgb = to_rgb(to_gray_or_bgr_uint8(image))
    size = config.input_size
    interp = cv2.INTER_AREA if max(rgb.shape[:2]) > size else cv2.INTER_LINEAR
    return normalize(cv2.resize(rgb, (size, size), interpolation=interp), config.mean, config.std)


def target_of(s: Sample) -> object:
    kind = s.task.kind
    if kind is TaskKind.SEGMENTATION:
        return s.load_mask()
    if kind is TaskKind.CLASSIFICATION:
        return s.label
    if kind is TaskKind.DETECTION:
        return np.asarray(s.box, np.float64)
    return np.asarray(s.points, np.float64)


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, config: ModelConfig, samples: Sequence[Sample],
                   submission: str | Path | None = None, batch_size: int = 16, device: str = "cpu") -> EvalReport:
    """Score ``model`` on ``samples`` (any subset of tasks the model has)."""
    model.eval()
    by_task: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if s.task_id in model.task_ids:
            by_task[s.task_id].append(s)
    report = EvalReport([get_task(t) for t in by_task])
    writer = SubmissionWriter(submission) if submission else None
    for task_id, items in by_task.items():
        for start in range(0, len(items), batch_size):
            _score_batch(model, config, items[start:start + batch_size], report, writer, device)
    if writer:
        writer.close()
    return report


def _score_batch(model, config, batch: list[Sample], report: EvalReport, writer, device: str) -> None:
    spec = batch[0].task
    images = [s.load_image() for s in batch]
    x = torch.from_numpy(np.stack([preprocess(im, config) for im in images])).to(device)
    out = {k: v.float().cpu().numpy() for k, v in model(x, tasks=[spec.id]).items()}
    for n, (s, im) in enumerate(zip(batch, images)):
        h, w = im.shape[:2]
        pred = decode(spec, out, n, w, h)
        if spec.kind is TaskKind.DETECTION:
            report.update(s.task_id, pred[0], target_of(s))
        else:
            report.update(s.task_id, pred, target_of(s))
        if writer:
            _write(writer, spec, s, pred, w, h)


def _write(writer: SubmissionWriter, spec, s: Sample, pred, w: int, h: int) -> None:
    if spec.kind is TaskKind.SEGMENTATION:
        writer.add_segmentation(s, pred)
    elif spec.kind is TaskKind.CLASSIFICATION:
        writer.add_classification(s, pred)
    elif spec.kind is TaskKind.DETECTION:
        writer.add_detection(s, pred[0], (w, h))
    else:
        writer.add_regression(s, pred, (w, h))
