"""Predictions as images: for each task, held-out images with the ground truth beside the prediction.

    usedge eval --bundle B --data D --montage runs/eval/montage.png

Scores say how often a model is right; a montage shows HOW it is wrong (a mask on the wrong organ, points
swapped, a box around the shadow). Each tile pair is drawn with :func:`usedge.stream.overlay.draw`, the
overlay users see, from a :class:`~usedge.runtime.results.FrameResult` built from the label (left) and the
Predictor's result (right).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from usedge._io import atomic_write_bytes
from usedge.data.fmcuia import Sample
from usedge.runtime.results import FrameResult, make_result
from usedge.stream.overlay import draw
from usedge.tasks import TaskKind

TILE = 224


def truth_result(s: Sample, width: int, height: int) -> FrameResult:
    """The label of one sample as a FrameResult (class: one-hot probabilities; box: score 1)."""
    spec, target = s.task, s.target()
    if spec.kind is TaskKind.CLASSIFICATION:
        decoded: object = np.eye(spec.num_classes)[int(target)]  # type: ignore[call-overload]
    elif spec.kind is TaskKind.DETECTION:
        decoded = (np.asarray(target, float), 1.0)
    else:
        decoded = target
    return FrameResult(width, height, {spec.id: make_result(spec.id, decoded, width, height)})


def _tile(image: np.ndarray, result: FrameResult, caption: str) -> np.ndarray:
    out = cv2.resize(draw(image, result, opacity=0.45), (TILE, TILE), interpolation=cv2.INTER_AREA)
    cv2.rectangle(out, (0, TILE - 18), (TILE, TILE), (0, 0, 0), -1)
    cv2.putText(out, caption, (4, TILE - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def prediction_montage(predictor, samples: Sequence[Sample], path: str | Path, per_task: int = 1,
                       columns: int = 3) -> Path:
    """Write a PNG: for the first ``per_task`` samples of each task, 'truth' and 'prediction' tiles side by
    side (``columns`` pairs per row). Returns the path."""
    picked: dict[str, list[Sample]] = {}
    for s in samples:
        if s.task_id in predictor.model_tasks and len(picked.setdefault(s.task_id, [])) < per_task:
            picked[s.task_id].append(s)
    pairs = []
    for task, chosen in picked.items():
        for s in chosen:
            image = s.load_image()
            h, w = image.shape[:2]
            pred = predictor.predict(image, tasks=[task])
            pairs.append(np.hstack([_tile(image, truth_result(s, w, h), f"{task}: truth"),
                                    _tile(image, pred, f"{task}: prediction")]))
    if not pairs:
        raise ValueError("no samples of the predictor's tasks to draw")
    blank = np.zeros_like(pairs[0])
    rows = [np.hstack(pairs[i:i + columns] + [blank] * (columns - len(pairs[i:i + columns])))
            for i in range(0, len(pairs), columns)]
    ok, png = cv2.imencode(".png", np.vstack(rows))
    path = Path(path)
    atomic_write_bytes(path, png.tobytes())
    return path
