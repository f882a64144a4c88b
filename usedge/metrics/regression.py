"""Regression (landmark) metric of the FMC-UIA challenge: mean radial error (MRE).

For one image with predicted points ``P`` (K, 2) and ground truth ``G`` (K, 2) as (x, y) in
original-image pixels, the radial error of point k is ``|P_k - G_k|₂``; the image's MRE is the mean over
its K points and the task's MRE the mean over images (lower is better).
"""
from __future__ import annotations

import numpy as np

from usedge.errors import DataError


def radial_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance of each point: ``(..., K, 2)`` vs ``(..., K, 2)`` → ``(..., K)`` pixels."""
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.shape[-1:] != (2,):
        raise DataError(f"points must be (K, 2) xy arrays of equal shape, got {p.shape} and {g.shape}.")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise DataError("points contain NaN or inf.")
    return np.sqrt(np.sum((p - g) ** 2, axis=-1))


def mean_radial_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """MRE: mean over points, then over images, of :func:`radial_errors`; NaN when there are no points."""
    err = radial_errors(pred, gt)
    if err.size == 0:
        return float("nan")
    return float(err.mean(axis=-1).mean())
