"""Model outputs (numpy, named as in usedge/tasks.py) -> predictions in ORIGINAL image pixels.

Shared by training evaluation, the export gate, ``usedge eval`` and the runtime Predictor, so every path is
decoded by the same code (``usedge.data.decode`` re-exports it). numpy + OpenCV only.
"""
from __future__ import annotations

import cv2
import numpy as np

from usedge.tasks import TaskKind, TaskSpec


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def class_map(logits: np.ndarray) -> np.ndarray:
    """C×H×W scores -> uint8 H×W argmax over C (first maximum wins, like numpy's argmax).

    Contiguous per-channel comparisons instead of ``argmax(axis=0)``'s strided walk: 2 classes (most tasks)
    cost one comparison, ~100× faster at 256²; more classes ~1.5×.
    """
    c = logits.shape[0]
    if c == 1:
        return (logits[0] > 0).astype(np.uint8)
    if c == 2:
        return (logits[1] > logits[0]).astype(np.uint8)
    best = logits[0].copy()
    idx = np.zeros(logits.shape[1:], np.uint8)
    for k in range(1, c):
        better = logits[k] > best
        idx[better] = k
        np.maximum(best, logits[k], out=best)
    return idx


def segmentation_map(logits: np.ndarray, width: int, height: int, mode: str = "logits") -> np.ndarray:
    """C×h×w logits -> uint8 H×W class map.

    ``mode`` (a model's declared ``seg_decode``): ``logits``: bilinear resize of the logits to the original
    size, then argmax (two classes resize only the logit difference: bilinear interpolation is linear, so the
    sign is the same); ``argmax-nearest``: argmax at h×w, then a nearest resize of the class map (the
    official baseline's ``_save_segmentation``).
    """
    c, h, w = logits.shape
    if (h, w) == (height, width):
        return class_map(logits)
    if mode == "argmax-nearest":
        return cv2.resize(class_map(logits), (width, height), interpolation=cv2.INTER_NEAREST)
    interp = cv2.INTER_LINEAR
    if c <= 2:
        diff = logits[-1] - logits[0] if c == 2 else logits[0]
        up = cv2.resize(np.ascontiguousarray(diff, np.float32), (width, height), interpolation=interp)
        return (up > 0).astype(np.uint8)
    # one resized plane at a time against the running best (the same first-maximum argmax as class_map):
    # two H×W float planes whatever C is, where resizing all C planes first held C of them
    def up(k: int) -> np.ndarray:
        return cv2.resize(np.ascontiguousarray(logits[k], np.float32), (width, height), interpolation=interp)

    best = up(0)
    idx = np.zeros((height, width), np.uint8)
    for k in range(1, c):
        plane = up(k)
        better = plane > best
        idx[better] = k
        np.maximum(best, plane, out=best)
    return idx


def best_box(boxes: np.ndarray, objectness: np.ndarray) -> tuple[np.ndarray, float]:
    """The box (xyxy in [0, 1]) at the highest-objectness cell, and its score (sigmoid)."""
    flat = objectness.reshape(-1)
    i = int(flat.argmax())
    box = boxes.reshape(4, -1)[:, i]
    return box, float(1 / (1 + np.exp(-flat[i])))


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each row of ``others`` (M×4)."""
    ix0, iy0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    ix1, iy1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    union = area(box) + area(others) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def top_boxes(boxes: np.ndarray, objectness: np.ndarray, k: int = 10, iou: float = 0.5,
              min_score: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Multi-object decoding of one grid head: greedy NMS over the cells, best first.

    Args:
        boxes: 4×h×w xyxy in [0, 1]; objectness: 1×h×w logits (one image of the named outputs).
        k: at most this many boxes; iou: suppress boxes overlapping a kept one by more than this;
        min_score: drop cells whose sigmoid objectness is below this.
    Returns:
        (boxes M×4 xyxy in [0, 1], scores M), M <= k, scores descending.
    """
    cand = boxes.reshape(4, -1).T.astype(np.float64)
    scores = 1 / (1 + np.exp(-objectness.reshape(-1).astype(np.float64)))
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= min_score]
    kept: list[int] = []
    while order.size and len(kept) < k:
        i, order = order[0], order[1:]
        kept.append(int(i))
        if order.size:
            order = order[box_iou(cand[i], cand[order]) <= iou]
    return cand[kept], scores[kept]


def segmentation_confidence(logits: np.ndarray) -> float:
    """Mean top-class softmax probability over the pixels whose top class is foreground, of one C×h×w logit
    map at the model's output resolution; NaN when no pixel is foreground."""
    z = np.asarray(logits, np.float32)
    p = softmax(z, axis=0)
    top = p.max(axis=0)
    fg = p.argmax(axis=0) > 0
    return float(top[fg].mean()) if fg.any() else float("nan")


def decode(spec: TaskSpec, outputs: dict[str, np.ndarray], n: int, width: int, height: int,
           seg_decode: str = "logits") -> object:
    """Decode item ``n`` of a batch for an original image of width × height (``seg_decode``: see
    :func:`segmentation_map`).

    Returns: segmentation: uint8 class map H×W; classification: probabilities (C,); detection:
    (xyxy pixel box, score); regression: (K, 2) pixel points.
    """
    if spec.kind is TaskKind.SEGMENTATION:
        return segmentation_map(outputs[spec.output_names[0]][n], width, height, seg_decode)
    if spec.kind is TaskKind.CLASSIFICATION:
        return softmax(outputs[spec.output_names[0]][n].astype(np.float64))
    scale = np.array([width, height], np.float64)
    if spec.kind is TaskKind.DETECTION:
        box, score = best_box(outputs[spec.output_names[0]][n], outputs[spec.output_names[1]][n])
        return np.clip(box, 0, 1) * np.tile(scale, 2), score
    return outputs[spec.output_names[0]][n].astype(np.float64) * scale
