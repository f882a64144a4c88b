"""The one latency-timing helper: warm-up calls, then ``runs`` timed calls of a function, in milliseconds.

Used by the bench rows, the teacher side by side, the export's latency table and the distillation report's
CPU figure, so every latency usedge prints is measured the same way.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timed(fn: Callable[[], object], runs: int, warmup: int) -> np.ndarray:
    """``warmup`` untimed calls, then the wall time of each of ``runs`` calls, in ms."""
    for _ in range(warmup):
        fn()
    t = np.empty(runs)
    for i in range(runs):
        s = time.perf_counter()
        fn()
        t[i] = (time.perf_counter() - s) * 1e3
    return t


def timed_interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, np.ndarray]:
    """Like :func:`timed` for several callables, called in turn (a, b, c, a, b, c, ...), so that each sees the
    same moments of a machine whose speed drifts: their ratios are then fair even on a noisy VM."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out = {name: np.empty(runs) for name in fns}
    for i in range(runs):
        for name, fn in fns.items():
            s = time.perf_counter()
            fn()
            out[name][i] = (time.perf_counter() - s) * 1e3
    return out


def summary(times_ms: np.ndarray) -> dict[str, float]:
    """p50 / p95 / p99 of a :func:`timed` result, in ms."""
    return {"p50_ms": float(np.median(times_ms)), "p95_ms": float(np.percentile(times_ms, 95)),
            "p99_ms": float(np.percentile(times_ms, 99))}


__all__ = ["summary", "timed"]
