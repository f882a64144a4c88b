"""Detection metric of the FMC-UIA challenge: IoU of the one predicted box with the one ground-truth box.

Boxes are ``(x_min, y_min, x_max, y_max)`` in original-image pixels, continuous coordinates (no +1):
``IoU = |P∩G| / (|P| + |G| - |P∩G|)``, 0.0 when the union is empty. The task score is the mean IoU over
images. Widths and heights are clamped at 0, so an inverted box has area 0; the official code leaves
such areas signed, but its IoU for them is 0.0 as well (the intersection is empty).
"""
from __future__ import annotations

import numpy as np

from usedge.errors import DataError


def _as_boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.shape[-1:] != (4,):
        raise DataError(f"{what} boxes must be xyxy with last dimension 4, got shape {b.shape}.")
    if not np.isfinite(b).all():
        raise DataError(f"{what} boxes contain NaN or inf.")
    return b


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def box_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Element-wise IoU of xyxy boxes ``pred`` and ``gt`` (broadcast shapes ``(..., 4)``) → shape ``(...)``."""
    p, g = _as_boxes(pred, "predicted"), _as_boxes(gt, "ground-truth")
    w = np.clip(np.minimum(p[..., 2], g[..., 2]) - np.maximum(p[..., 0], g[..., 0]), 0, None)
    h = np.clip(np.minimum(p[..., 3], g[..., 3]) - np.maximum(p[..., 1], g[..., 1]), 0, None)
    inter = w * h
    union = _area(p) + _area(g) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def mean_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean IoU over images of boxes (N, 4) vs (N, 4); NaN for N = 0."""
    iou = box_iou(pred, gt)
    return float(iou.mean()) if iou.size else float("nan")
