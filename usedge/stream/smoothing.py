"""Temporal smoothing of a result stream (off by default).

``alpha`` is the weight of the newest frame in an exponential moving average (1.0 = no smoothing, 0.3 =
strong smoothing, ~3 frames of memory). Per kind:

* classification: EMA of the probabilities (label = argmax of the smoothed probabilities);
* landmarks: EMA of the points; detection: EMA of the box corners and the score;
* segmentation: EMA of the per-class one-hot maps, with hysteresis: a pixel changes class only once the new
  class's smoothed share reaches ``mask_threshold`` (>= 0.5 makes it the majority), so edges stop flickering.

State is per task and is reset when the frame size changes (a new probe / preset / source).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from usedge.errors import ConfigError
from usedge.runtime.results import (
    ClassificationResult,
    DetectionResult,
    FrameResult,
    LandmarkResult,
    SegmentationResult,
    TaskResult,
)

__all__ = ["Smoother", "SmoothingConfig", "TaskSmoothing"]


def _check_unit(name: str, value: float, low_open: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not ((0.0 < value) if low_open else (0.0 <= value)) or value > 1.0:
        raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}.",
                          fix="use e.g. 0.5 (1.0 = no smoothing, smaller = smoother but slower to follow).")
    return float(value)


@dataclass(frozen=True)
class TaskSmoothing:
    """Smoothing of one task: ``alpha`` (weight of the newest frame), ``mask_threshold`` (segmentation
    hysteresis), ``enabled``."""

    alpha: float = 0.5
    mask_threshold: float = 0.5
    enabled: bool = True

    def __post_init__(self) -> None:
        _check_unit("TaskSmoothing.alpha", self.alpha)
        _check_unit("TaskSmoothing.mask_threshold", self.mask_threshold)


@dataclass(frozen=True)
class SmoothingConfig:
    """Stream smoothing: defaults for every task, overridden per task.

    Args:
        alpha: default weight of the newest frame, in (0, 1].
        mask_threshold: default segmentation hysteresis threshold, in (0, 1].
        per_task: task id -> :class:`TaskSmoothing`, an alpha (float), or None / False to leave that task raw.
    """

    alpha: float = 0.5
    mask_threshold: float = 0.5
    per_task: Mapping[str, TaskSmoothing | float | bool | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        default = TaskSmoothing(self.alpha, self.mask_threshold)
        resolved = {str(k): self._resolve(k, v, default) for k, v in dict(self.per_task).items()}
        object.__setattr__(self, "per_task", MappingProxyType(resolved))

    @staticmethod
    def _resolve(task: str, value, default: TaskSmoothing) -> TaskSmoothing:
        if isinstance(value, TaskSmoothing):
            return value
        if value is None or value is False:
            return TaskSmoothing(default.alpha, default.mask_threshold, enabled=False)
        if value is True:
            return default
        if isinstance(value, (int, float)):
            return TaskSmoothing(_check_unit(f"per_task[{task!r}]", value), default.mask_threshold)
        raise ConfigError(f"per_task[{task!r}] = {value!r} is not a smoothing setting.",
                          fix="use a TaskSmoothing, an alpha in (0, 1], or None to disable smoothing for the task.")

    def for_task(self, task: str) -> TaskSmoothing:
        return self.per_task.get(task) or TaskSmoothing(self.alpha, self.mask_threshold)


class Smoother:
    """Applies a :class:`SmoothingConfig` to consecutive :class:`FrameResult` s (one stream, in order)."""

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config or SmoothingConfig()
        self._state: dict[str, object] = {}
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        self._state.clear()
        self._size = None

    def __call__(self, result: FrameResult) -> FrameResult:
        if (result.width, result.height) != self._size:
            self.reset()
            self._size = (result.width, result.height)
        tasks = {name: self._smooth(name, r) for name, r in result.tasks.items()}
        return FrameResult(result.width, result.height, tasks, region=result.region,
                           timings_ms=dict(result.timings_ms), index=result.index, timestamp_s=result.timestamp_s)

    def _smooth(self, name: str, r: TaskResult) -> TaskResult:
        cfg = self.config.for_task(name)
        if not cfg.enabled:
            return r
        if isinstance(r, ClassificationResult):
            probs = self._ema(name, np.asarray(r.probs, np.float64), cfg.alpha)
            return ClassificationResult(r.task, probs / max(probs.sum(), 1e-12), r.class_names, r.temperature)
        if isinstance(r, LandmarkResult):
            return LandmarkResult(r.task, self._ema(name, np.asarray(r.points, np.float64), cfg.alpha),
                                  r.point_names, r.width, r.height)
        if isinstance(r, DetectionResult):
            both = self._ema(name, np.append(np.asarray(r.box, np.float64), r.score), cfg.alpha)
            return DetectionResult(r.task, both[:4], float(both[4]), r.width, r.height, r.boxes, r.scores)
        if isinstance(r, SegmentationResult):
            return SegmentationResult(r.task, self._mask(name, r, cfg), r.class_names)
        return r

    def _ema(self, name: str, value: np.ndarray, alpha: float) -> np.ndarray:
        prev = self._state.get(name)
        if not isinstance(prev, np.ndarray) or prev.shape != value.shape:
            out = value.copy()
        else:
            out = alpha * value + (1.0 - alpha) * prev
        self._state[name] = out
        return out.copy()

    def _mask(self, name: str, r: SegmentationResult, cfg: TaskSmoothing) -> np.ndarray:
        """EMA of the one-hot class maps (C×H×W float32), hysteresis on the argmax."""
        n = max(len(r.class_names), int(r.mask.max()) + 1)
        onehot = (r.mask[None] == np.arange(n, dtype=r.mask.dtype)[:, None, None]).astype(np.float32)
        prev = self._state.get(name)
        if not isinstance(prev, tuple) or prev[0].shape != onehot.shape:
            self._state[name] = (onehot, r.mask.copy())
            return r.mask.copy()
        share, shown = prev
        share *= np.float32(1.0 - cfg.alpha)
        share += np.float32(cfg.alpha) * onehot
        best = share.argmax(0).astype(np.uint8)
        confident = np.take_along_axis(share, best[None].astype(np.intp), 0)[0] >= cfg.mask_threshold
        shown = np.where(confident, best, shown).astype(np.uint8)
        self._state[name] = (share, shown)
        return shown.copy()
