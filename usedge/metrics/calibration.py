"""Whether a classifier's probabilities mean what they say: expected calibration error, and temperature scaling
(Guo et al. 2017, "On calibration of modern neural networks"): one positive T per task dividing its logits,
fitted by minimising the negative log-likelihood on held-out images; the predicted class does not change."""
from __future__ import annotations

import numpy as np

#: the temperatures searched (log-spaced, then refined around the best)
_GRID = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    p = softmax(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(p, 1e-12))))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between accuracy and confidence over ``bins`` equal-width bins of the
    top-class probability."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of ``softmax(logits / T)`` on (``logits`` N×C, ``labels`` N)."""
    labels = np.asarray(labels, np.int64)
    losses = [nll(logits, labels, t) for t in _GRID]
    i = int(np.argmin(losses))
    lo, hi = _GRID[max(i - 1, 0)], _GRID[min(i + 1, len(_GRID) - 1)]
    fine = np.linspace(lo, hi, 41)
    return float(fine[int(np.argmin([nll(logits, labels, t) for t in fine]))])


__all__ = ["expected_calibration_error", "fit_temperature", "nll", "softmax"]
