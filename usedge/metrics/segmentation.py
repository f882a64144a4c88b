"""Segmentation metrics of the FMC-UIA challenge: Dice and Hausdorff distance per foreground class.

Definitions (those of the official ``evaluate.py``):

* the predicted class map is first resized to the ground-truth size with OpenCV's ``INTER_NEAREST``
  rule (:func:`resize_nearest` reproduces it in numpy);
* for every foreground class ``c`` (1 .. C-1) of every image, with ``A = pred == c`` and ``B = gt == c``:
  ``dice = 2|A∩B| / (|A| + |B|)``, 1.0 when both are empty;
  ``hd = max(max_{a∈A} min_{b∈B} |a-b|, max_{b∈B} min_{a∈A} |a-b|)`` over ALL mask pixels (pixel
  centres, unit spacing), 0.0 when both are empty and the image diagonal ``sqrt(H² + W²)`` when exactly
  one is empty;
* per class the scores are averaged over images, then over foreground classes.

The official code computes HD with SimpleITK's ``HausdorffDistanceImageFilter``, which works on all
non-zero pixels via a distance map; :func:`hausdorff_distance` does the same with
``scipy.ndimage.distance_transform_edt`` (exact Euclidean distances), cropped to the bounding box of
``A ∪ B`` (exact too: every point of either set lies in the box).
"""
from __future__ import annotations

import math

import numpy as np

from usedge.errors import DataError, require


def _nearest_index(src: int, dst: int) -> np.ndarray:
    """Source index of each destination index under OpenCV INTER_NEAREST: ``min(floor(i / (dst/src)), src-1)``."""
    scale = 1.0 / (dst / src)  # the same two float operations OpenCV performs
    return np.minimum(np.floor(np.arange(dst) * scale).astype(np.intp), src - 1)


def resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D label map to ``shape`` (H, W) exactly as ``cv2.resize(..., INTER_NEAREST)`` does."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DataError(f"a class map must be 2-D (H, W), got shape {mask.shape}.",
                        fix="pass the argmax class map, not logits or an RGB image")
    if mask.shape == tuple(shape):
        return mask
    rows = _nearest_index(mask.shape[0], int(shape[0]))
    cols = _nearest_index(mask.shape[1], int(shape[1]))
    return mask[np.ix_(rows, cols)]


def dice_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice of two boolean masks: ``2|A∩B| / (|A| + |B|)``; 1.0 when both are empty."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    total = int(pred.sum()) + int(gt.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, gt).sum()) / total


def _bounding_slices(mask: np.ndarray) -> tuple[slice, slice]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def hausdorff_distance(pred: np.ndarray, gt: np.ndarray) -> float:
    """Symmetric Hausdorff distance in pixels between all pixels of two boolean masks.

    0.0 when both are empty; the diagonal ``sqrt(H² + W²)`` of the mask when exactly one is empty.
    """
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise DataError(f"mask shapes differ: {pred.shape} vs {gt.shape}.", fix="resize the prediction first")
    has_pred, has_gt = bool(pred.any()), bool(gt.any())
    if not has_pred and not has_gt:
        return 0.0
    if not (has_pred and has_gt):
        h, w = pred.shape
        return math.sqrt(h * h + w * w)
    ndimage = require("scipy.ndimage", "train", "Hausdorff distance")
    box = _bounding_slices(pred | gt)
    pred, gt = pred[box], gt[box]
    to_gt = ndimage.distance_transform_edt(~gt)[pred].max()
    to_pred = ndimage.distance_transform_edt(~pred)[gt].max()
    return float(max(to_gt, to_pred))


def segmentation_scores(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Dice and HD of each foreground class (1 .. num_classes-1) of ONE image.

    Args:
        pred: predicted class map, any size (resized nearest to ``gt``'s size).
        gt: ground-truth class map (H, W).
        num_classes: classes including background.

    Returns:
        ``(dice, hd)``, two float arrays of length ``num_classes - 1``. Labels outside
        ``[0, num_classes)`` belong to no class (as in the official code).
    """
    gt = np.asarray(gt)
    if gt.ndim != 2:
        raise DataError(f"a ground-truth class map must be 2-D (H, W), got shape {gt.shape}.")
    pred = resize_nearest(pred, gt.shape)
    dice = np.empty(num_classes - 1)
    hd = np.empty(num_classes - 1)
    for c in range(1, num_classes):
        a, b = pred == c, gt == c
        dice[c - 1] = dice_score(a, b)
        hd[c - 1] = hausdorff_distance(a, b)
    return dice, hd
