"""Model outputs (numpy, named as in usedge/tasks.py) -> predictions in ORIGINAL image pixels.

Shared by ``usedge eval`` on torch checkpoints and, later, by the runtime Predictor on bundles, so both
are scored by the same code. numpy + OpenCV only.
"""
from __future__ import annotations

import cv2
import numpy as np

from usedge.tasks import TaskKind, TaskSpec


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def segmentation_map(logits: np.ndarray, width: int, height: int) -> np.ndarray:
    """C×h×w logits -> uint8 H×W class map: bilinear resize of the logits to the original size, then argmax."""
    c, h, w = logits.shape
    if (h, w) == (height, width):
        return logits.argmax(axis=0).astype(np.uint8)
    hwc = np.ascontiguousarray(logits.transpose(1, 2, 0), dtype=np.float32)
    up = cv2.resize(hwc, (width, height), interpolation=cv2.INTER_LINEAR)
    return (up.argmax(axis=-1) if c > 1 else (up > 0)).astype(np.uint8)


def best_box(boxes: np.ndarray, objectness: np.ndarray) -> tuple[np.ndarray, float]:
    """The box (xyxy in [0, 1]) at the highest-objectness cell, and its score (sigmoid)."""
    flat = objectness.reshape(-1)
    i = int(flat.argmax())
    box = boxes.reshape(4, -1)[:, i]
    return box, float(1 / (1 + np.exp(-flat[i])))


def decode(spec: TaskSpec, outputs: dict[str, np.ndarray], n: int, width: int, height: int) -> object:
    """Decode item ``n`` of a batch for an original image of width × height.

    Returns: segmentation: uint8 class map H×W; classification: probabilities (C,); detection:
    (xyxy pixel box, score); regression: (K, 2) pixel points.
    """
    if spec.kind is TaskKind.SEGMENTATION:
        return segmentation_map(outputs[spec.output_names[0]][n], width, height)
    if spec.kind is TaskKind.CLASSIFICATION:
        return softmax(outputs[spec.output_names[0]][n].astype(np.float64))
    scale = np.array([width, height], np.float64)
    if spec.kind is TaskKind.DETECTION:
        box, score = best_box(outputs[spec.output_names[0]][n], outputs[spec.output_names[1]][n])
        return np.clip(box, 0, 1) * np.tile(scale, 2), score
    return outputs[spec.output_names[0]][n].astype(np.float64) * scale
