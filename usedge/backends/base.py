"""The Backend base class: one model file in, named numpy outputs out. No torch.

Each backend module implements one class with ``_open`` (load the file, report the input/output names and
input shape) and ``_infer`` (run one validated batch). The base validates every call (input name, dtype,
shape, batch range, finite values) with errors that say how to fix them, and times each call.
"""
from __future__ import annotations

import importlib.util
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from usedge.errors import DataError, SourceError


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
    """An inference session over one model file (ONNX, TensorRT engine, or a torch checkpoint).

    Each backend class also **declares what it is** (the capability contract ``usedge.load`` and
    ``usedge bench`` read instead of knowing backends by name): the library it needs and the extra that
    installs it, the artefact it runs, its precisions and device kind, its place in ``usedge.load``'s automatic
    choice; and it answers :meth:`available`, :meth:`skip_reason`, :meth:`locate` and :meth:`open_for`.
    A new backend is one module with one subclass, registered in ``usedge/backends/__init__.py``.
    """

    name: ClassVar[str]
    #: keep this many recent call times for :meth:`latency`
    history: ClassVar[int] = 4096
    # -- capabilities --------------------------------------------------------------------------------------
    library: ClassVar[str]                       #: the module that must be importable
    extra: ClassVar[str]                         #: the pip extra that installs it
    artefact: ClassVar[str]                      #: "onnx", "engine" (TensorRT plan) or "checkpoint" (torch)
    precisions: ClassVar[tuple[str, ...]]        #: what it runs
    bench_precisions: ClassVar[tuple[str, ...] | None] = None   #: the bench rows of ``--precisions all``
    device_kind: ClassVar[str] = "cpu"           #: "cpu" or "gpu"
    preference: ClassVar[int] = 99               #: order in listings (CPU runtimes first, fastest first)
    auto_rank: ClassVar[int | None] = None       #: order in ``usedge.load(backend="auto")``; None: never auto
    fallback_precision: ClassVar[str] = "fp32"   #: precision="auto" where int8 is absent or failed the gate

    @classmethod
    def available(cls) -> bool:
        """Whether the backend's library is installed here (without importing it)."""
        return importlib.util.find_spec(cls.library) is not None

    @classmethod
    def usable(cls, bundle) -> bool:
        """Whether ``usedge.load(backend="auto")`` may pick it for ``bundle`` (installed, and what it runs is there)."""
        return cls.available()

    @classmethod
    def skip_reason(cls, bundle, precision: str) -> str | None:
        """Why ``precision`` of ``bundle`` cannot run on this backend here, or None when it can."""
        if not cls.available():
            return f"{cls.name}: library not installed (pip install 'usedge[{cls.extra}]')"
        if precision not in cls.precisions:
            return f"{precision}: {cls.name} runs {' / '.join(cls.precisions)} only"
        return None

    @classmethod
    def locate(cls, bundle, precision: str) -> Path:
        """The file (or folder) of ``bundle`` this backend opens for ``precision``."""
        raise NotImplementedError

    @classmethod
    def auto_precision(cls, bundle) -> tuple[str, str] | None:
        """(precision, why) this backend always takes under ``usedge.load(precision="auto")``; None: the shared
        rule (int8 where it passed the gate and is not slower here, else :attr:`fallback_precision`)."""
        return None

    @classmethod
    def bench_options(cls, precision: str, threads: int | None) -> dict:
        """The options ``usedge bench`` opens ``precision`` with (a thread count where the backend takes one)."""
        return {"threads": threads} if threads else {}

    @classmethod
    def open_for(cls, bundle, precision: str, **options) -> Backend:
        """Open ``precision`` of ``bundle`` (what ``usedge.load`` calls)."""
        return cls(cls.locate(bundle, precision), **options)

    def device_name(self) -> str:
        """The device this session runs on, as the bench reports it."""
        return self.device_kind.upper()

    def __init__(self, path: str | Path, **options) -> None:
        self.path = Path(path)
        self.options = options
        self.input, self.output_names = self._open(self.path, **options)
        self._times: deque[float] = deque(maxlen=self.history)
        # held around every native call: close() waits for an in-flight inference on another thread instead of
        # dropping the session under it, and one session (an OpenVINO InferRequest) never runs two batches at once
        self._call_lock = threading.Lock()
        self._closed = False

    # -- to implement ------------------------------------------------------------------------------------
    @abstractmethod
    def _open(self, path: Path, **options) -> tuple[InputSpec, list[str]]:
        """Load the model; return its input spec and output names."""

    @abstractmethod
    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run one validated C-contiguous float32 batch; return every output by name."""

    def close(self) -> None:
        """Release the session: waits for an inference running on another thread, then drops the native handles
        (subclasses implement :meth:`_close`). Safe to call twice; ``infer`` after it raises a clear error."""
        lock = getattr(self, "_call_lock", None)
        if lock is None:                     # _open failed half-way: nothing ran
            self._close()
            return
        with lock:
            if not self._closed:
                self._closed = True
                self._close()

    def _close(self) -> None:
        """Drop the native handles (called once, with no inference running)."""

    def __del__(self) -> None:
        # A backend nobody closed and that sits in a reference cycle is freed by the cyclic GC, which clears its
        # attributes in no particular order (an OpenVINO InferRequest could outlive its CompiledModel by a moment,
        # on whatever thread the GC pass started). Finalizers run before that clearing (PEP 442): release the
        # handles here, in the order _close gives, so a forgotten close() is still an orderly one.
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: modules may already be gone
            pass

    # -- shared ------------------------------------------------------------------------------------------
    @property
    def input_name(self) -> str:
        return self.input.name

    def infer(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a batch: ``{input_name: N×C×H×W float32}`` (or the array itself) -> ``{output name: array}``."""
        images = self.validate(inputs)
        with self._call_lock:
            if self._closed:
                raise SourceError(f"{self.name}: this session is closed.",
                                  fix="open the model again (usedge.load / open_backend); close it only when done.")
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


class OnnxBackend(Backend):
    """A CPU runtime of the bundle's ONNX graphs (fp32 and the INT8 Q/DQ graph)."""

    artefact: ClassVar[str] = "onnx"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")
    device_kind: ClassVar[str] = "cpu"
    extra: ClassVar[str] = "cpu"

    @classmethod
    def auto_precision(cls, bundle) -> tuple[str, str] | None:
        return (bundle.precisions[0], "the only precision in this bundle") if len(bundle.precisions) == 1 else None

    @classmethod
    def skip_reason(cls, bundle, precision: str) -> str | None:
        if cls.available() and precision == "fp16":
            return f"fp16: {cls.name} runs the bundle's fp32 / int8 ONNX only"
        reason = super().skip_reason(bundle, precision)
        if reason is None and precision not in bundle.precisions:
            return f"{precision}: not in this bundle"
        return reason

    @classmethod
    def locate(cls, bundle, precision: str) -> Path:
        if precision == "fp16":
            from usedge.errors import ConfigError

            raise ConfigError(f"{cls.name} runs the bundle's fp32 or int8 ONNX, not fp16.",
                              fix="use precision fp32 or int8 (fp16 is for tensorrt / torch on CUDA).")
        return bundle.model_path(precision)
