"""The Backend base class: one model file in, named numpy outputs out. No torch.

Each backend module implements one class with ``_open`` (load the file, report the input/output names and
input shape) and ``_infer`` (run one validated batch). The base validates every call (input name, dtype,
shape, batch range, finite values) with errors that say how to fix them, and times each call.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from usedge.errors import DataError


@dataclass(frozen=True)
class InputSpec:
    """What the model takes: N×C×H×W float32 with ``batch_min <= N <= batch_max`` (None: unbounded)."""

    name: str
    channels: int
    height: int
    width: int
    batch_min: int = 1
    batch_max: int | None = None


@dataclass(frozen=True)
class LatencyStats:
    calls: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float


def dims_to_spec(name: str, dims: list) -> InputSpec:
    """An ONNX-style input shape (ints, or str/None/-1 for dynamic axes) -> InputSpec."""
    def fixed(d):
        return int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else None

    if len(dims) != 4 or any(fixed(d) is None for d in dims[1:]):
        raise DataError(f"model input '{name}' has shape {dims}; usedge expects N×3×H×W with fixed C, H, W.",
                        fix="export with `usedge export` (fixed spatial size, dynamic or fixed batch).")
    batch = fixed(dims[0])
    return InputSpec(name, fixed(dims[1]), fixed(dims[2]), fixed(dims[3]),
                     batch_min=batch or 1, batch_max=batch)


class Backend(ABC):
    """An inference session over one model file (ONNX, TensorRT engine, or a torch checkpoint)."""

    name: ClassVar[str]
    #: keep this many recent call times for :meth:`latency`
    history: ClassVar[int] = 4096

    def __init__(self, path: str | Path, **options) -> None:
        self.path = Path(path)
        self.options = options
        self.input, self.output_names = self._open(self.path, **options)
        self._times: deque[float] = deque(maxlen=self.history)

    # -- to implement ------------------------------------------------------------------------------------
    @abstractmethod
    def _open(self, path: Path, **options) -> tuple[InputSpec, list[str]]:
        """Load the model; return its input spec and output names."""

    @abstractmethod
    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run one validated C-contiguous float32 batch; return every output by name."""

    def close(self) -> None:
        """Release the session (subclasses drop their handles)."""

    # -- shared ------------------------------------------------------------------------------------------
    @property
    def input_name(self) -> str:
        return self.input.name

    def infer(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a batch: ``{input_name: N×C×H×W float32}`` (or the array itself) -> ``{output name: array}``."""
        images = self.validate(inputs)
        start = time.perf_counter()
        out = self._infer(images)
        self._times.append((time.perf_counter() - start) * 1e3)
        return out

    def validate(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        spec = self.input
        if isinstance(inputs, Mapping):
            unknown = set(inputs) - {spec.name}
            if unknown or spec.name not in inputs:
                raise DataError(f"{self.name}: inputs {sorted(inputs)} do not match the model's input "
                                f"'{spec.name}'.", fix=f"pass {{'{spec.name}': images}}.")
            inputs = inputs[spec.name]
        if not isinstance(inputs, np.ndarray):
            raise DataError(f"{self.name}: expected a numpy array, got {type(inputs).__name__}.",
                            fix="pass np.ndarray images (use usedge.load(...) to feed raw frames).")
        if inputs.dtype != np.float32:
            raise DataError(f"{self.name}: input dtype is {inputs.dtype}, the model takes float32.",
                            fix="convert with images.astype(np.float32), or feed raw frames to the Predictor.")
        want = (spec.channels, spec.height, spec.width)
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != want:
            raise DataError(f"{self.name}: input shape {inputs.shape}, the model takes N×{want[0]}×{want[1]}×"
                            f"{want[2]}.", fix="preprocess with usedge.data.preprocess (or use the Predictor).")
        n = inputs.shape[0]
        if n < spec.batch_min or (spec.batch_max is not None and n > spec.batch_max):
            hi = spec.batch_max if spec.batch_max is not None else "any"
            raise DataError(f"{self.name}: batch of {n}, the model takes {spec.batch_min}..{hi}.",
                            fix="split the batch, or export / build with a larger batch range.")
        if not np.isfinite(inputs).all():
            raise DataError(f"{self.name}: input holds NaN or infinity.", fix="check the frame source.")
        return np.ascontiguousarray(inputs)

    def latency(self) -> LatencyStats:
        t = np.asarray(self._times, np.float64)
        if t.size == 0:
            return LatencyStats(0, float("nan"), float("nan"), float("nan"), float("nan"))
        p50, p95, p99 = np.percentile(t, [50, 95, 99])
        return LatencyStats(int(t.size), float(p50), float(p95), float(p99), float(t.mean()))

    def reset_latency(self) -> None:
        self._times.clear()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, options={self.options})"
