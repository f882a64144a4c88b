"""The benchmark harness behind ``usedge bench``.

One row per (backend, precision, batch). A row that cannot run is kept, with ``status`` saying why and its
numbers empty, so the table always shows every combination asked for. Timings exclude warm-up; ``peak_rss_mb``
is the bench process's peak resident memory after the row (ru_maxrss: monotone over the run, so a row can only
raise it).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
import platform
import resource
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usedge._timing import timed
from usedge.bench.rows import OK, Result, Row
from usedge.errors import ConfigError
from usedge.metrics.evaluator import PRIMARY_METRIC

PRECISIONS = ("fp32", "int8")
KNOWN_PRECISIONS = ("fp32", "int8", "fp16")
#: task family -> (its primary metric in the evaluator's family summary, the table column)
SCORES = {kind.value: (metric, {"mre": "mre_px"}.get(metric, metric)) for kind, metric in PRIMARY_METRIC.items()}


@dataclass(frozen=True)
class BenchRow(Row):
    backend: str
    precision: str
    batch: int
    device: str = ""
    size_mb: float | None = None
    dice: float | None = None
    accuracy: float | None = None
    iou: float | None = None
    mre_px: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    fps: float | None = None
    predictor_p50_ms: float | None = None
    peak_rss_mb: float | None = None
    status: str = OK


COLUMNS: tuple[str, ...] = BenchRow.columns()


@dataclass(frozen=True)
class BenchResult(Result):
    bundle: str
    rows: tuple[BenchRow, ...]
    machine: dict[str, object]
    command: str
    settings: dict[str, object] = field(default_factory=dict)
    row_type = BenchRow


# -- machine -----------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The "model name" line of /proc/cpuinfo where present, else platform.processor() / machine()."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, object]:
    from usedge import __version__

    versions = {name: _version(name) for name in ("openvino", "onnxruntime", "tensorrt", "torch")}
    return {"cpu": cpu_model(), "processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "os": platform.platform(), "python": platform.python_version(), "usedge": __version__,
            **{k: v for k, v in versions.items() if v is not None}}


# -- arguments ---------------------------------------------------------------------------------------------
def parse_backends(backends: str | Sequence[str]) -> list[str]:
    from usedge.backends import backend_names

    names = backend_names()
    wanted = names if backends == "all" else _split(backends)
    unknown = [b for b in wanted if b not in names]
    if unknown or not wanted:
        raise ConfigError(f"Unknown backend(s): {', '.join(unknown) or '(none given)'}.",
                          fix=f"use all or a comma list of: {', '.join(names)}")
    return list(dict.fromkeys(wanted))


def parse_precisions(precisions: str | Sequence[str]) -> list[str]:
    """A comma list / sequence of precisions ("all": every known one; :func:`precisions_for` narrows it)."""
    wanted = list(KNOWN_PRECISIONS) if precisions == "all" else _split(precisions)
    unknown = [p for p in wanted if p not in KNOWN_PRECISIONS]
    if unknown or not wanted:
        raise ConfigError(f"Unknown precision(s): {', '.join(unknown) or '(none given)'}.",
                          fix=f"use all or a comma list of: {', '.join(KNOWN_PRECISIONS)}")
    return list(dict.fromkeys(wanted))


def precisions_for(backend: str, precisions: str | Sequence[str]) -> list[str]:
    """The precisions one backend gets: for "all" those it declares (``bench_precisions``, else
    ``precisions``), else those asked for."""
    if precisions == "all":
        from usedge.backends import backend_class

        cls = backend_class(backend)
        return list(cls.bench_precisions or cls.precisions)
    return parse_precisions(precisions)


def parse_batches(batches: str | int | Sequence[int]) -> list[int]:
    items = _split(batches) if isinstance(batches, str) else [batches] if isinstance(batches, int) else list(batches)
    try:
        out = [int(b) for b in items]
    except (TypeError, ValueError):
        out = []
    if not out or any(b < 1 for b in out):
        raise ConfigError(f"Invalid batch sizes: {batches!r}.", fix="give positive integers, e.g. 1,4.")
    return list(dict.fromkeys(out))


def _split(value: str | Sequence[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(v).strip() for v in items if str(v).strip()]


def _check_counts(runs: int, warmup: int, max_eval_per_task: int) -> None:
    if runs < 1 or warmup < 0 or max_eval_per_task < 1:
        raise ConfigError(f"runs={runs}, warmup={warmup}, max_eval_per_task={max_eval_per_task}.",
                          fix="runs and max_eval_per_task must be >= 1, warmup >= 0.")


# -- why a row cannot run ------------------------------------------------------------------------------------
def skip_reason(bundle, backend: str, precision: str) -> str | None:
    """Why (backend, precision) cannot run on this bundle here, or None when it should: the backend's own
    answer (:meth:`usedge.backends.Backend.skip_reason`)."""
    from usedge.backends import backend_class

    return backend_class(backend).skip_reason(bundle, precision)


def cpu_backends() -> list[str]:
    """The backends that run the bundle's ONNX on the CPU (declared ``artefact`` "onnx", ``device_kind`` "cpu")."""
    from usedge.backends import backend_class, backend_names

    return [n for n in backend_names() if backend_class(n).artefact == "onnx" and backend_class(n).device_kind == "cpu"]


def backend_kind(backend: str) -> str:
    from usedge.backends import backend_class

    return backend_class(backend).device_kind


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (False without torch)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _error_status(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"error: {text}"[:300]


# -- measuring -----------------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _size_mb(bundle, backend: str, predictor) -> float:
    from usedge.backends import backend_class

    files = bundle.meta.files
    artefact = backend_class(backend).artefact
    if artefact == "checkpoint":
        total = sum(e.bytes for n, e in files.items() if n.startswith("torch/"))
    elif artefact == "onnx":
        entry = files.get(Path(predictor.backend.path).name)
        total = entry.bytes if entry else Path(predictor.backend.path).stat().st_size
    else:
        total = Path(predictor.backend.path).stat().st_size
    return total / 1e6


def _device(backend: str, predictor) -> str:
    try:
        return predictor.backend.device_name()
    except Exception:  # noqa: BLE001 - the device name is cosmetic
        return backend_kind(backend).upper()


def _eval_samples(data: str | Path, tasks: Sequence[str], per_task: int) -> list:
    from usedge.data.fmcuia import load_split

    samples = load_split(data, "val", tasks)
    kept, counts = [], dict.fromkeys(tasks, 0)
    for s in samples:
        if counts.get(s.task_id, per_task) < per_task:
            counts[s.task_id] += 1
            kept.append(s)
    if not kept:
        raise ConfigError(f"no val/ images of the bundle's tasks in {data}.",
                          fix="pass --data a folder whose val/ split has the bundle's tasks.")
    return kept


def _scores(predictor, samples: list | None) -> dict[str, float | None]:
    if not samples:
        return {}
    from usedge.runtime.evaluate import evaluate_with_predictor

    summary = evaluate_with_predictor(predictor, samples).family_summary()
    out: dict[str, float | None] = {}
    for kind, (metric, column) in SCORES.items():
        value = summary.get(kind, {}).get(metric)
        out[column] = float(value) if value is not None and math.isfinite(value) else None
    return out


def bench_inputs(predictor, batch: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(preprocessed batch for the bare backend, the same frames raw for the Predictor): ``batch`` copies of
    one model-sized random grey frame."""
    from usedge.data.preprocess import preprocess

    size = predictor.spec.size
    frame = np.random.default_rng(0).integers(0, 255, (size, size), np.uint8)
    x = np.ascontiguousarray(np.repeat(preprocess(frame, predictor.spec)[None], batch, axis=0))
    return x, [frame] * batch


def _measure(predictor, batch: int, runs: int, warmup: int) -> dict[str, float]:
    x, frames = bench_inputs(predictor, batch)
    bare = timed(lambda: predictor.backend.infer(x), runs, warmup)
    full = timed(lambda: predictor.predict_batch(frames), runs, warmup)
    p50 = float(np.median(bare))
    return {"p50_ms": p50, "p95_ms": float(np.percentile(bare, 95)), "p99_ms": float(np.percentile(bare, 99)),
            "fps": batch * 1e3 / p50 if p50 > 0 else math.inf, "predictor_p50_ms": float(np.median(full))}


def open_predictor(bundle, backend: str, precision: str, threads: int | None):
    """The Predictor one bench row times: ``usedge.load`` with the options the backend declares for the bench
    (:meth:`usedge.backends.Backend.bench_options`)."""
    import usedge
    from usedge.backends import backend_class

    if backend == "auto":       # usedge.load chooses; a thread count is what every CPU runtime takes
        options = {"threads": threads} if threads else {}
    else:
        options = backend_class(backend).bench_options(precision, threads)
    return usedge.load(bundle, backend=backend, precision=precision, **options)


def _bench_pair(bundle, backend: str, precision: str, batches: list[int], threads: int | None, runs: int,
                warmup: int, samples: list | None) -> list[BenchRow]:
    """The rows of one (backend, precision): skipped, failed to open, or measured per batch."""
    reason = skip_reason(bundle, backend, precision)
    if reason:
        return [BenchRow(backend, precision, b, status=reason) for b in batches]
    try:
        predictor = open_predictor(bundle, backend, precision, threads)
    except Exception as exc:  # noqa: BLE001 - any failure becomes the row's status
        return [BenchRow(backend, precision, b, status=_error_status(exc)) for b in batches]
    try:
        base = {"device": _device(backend, predictor), "size_mb": _size_mb(bundle, backend, predictor)}
        try:
            base.update(_scores(predictor, samples))
        except Exception as exc:  # noqa: BLE001
            return [BenchRow(backend, precision, b, **base, status=_error_status(exc)) for b in batches]
        return [_bench_batch(predictor, backend, precision, b, runs, warmup, base) for b in batches]
    finally:
        predictor.close()


def _bench_batch(predictor, backend: str, precision: str, batch: int, runs: int, warmup: int,
                 base: dict) -> BenchRow:
    try:
        numbers = _measure(predictor, batch, runs, warmup)
    except Exception as exc:  # noqa: BLE001
        return BenchRow(backend, precision, batch, **base, status=_error_status(exc))
    return BenchRow(backend, precision, batch, **base, **numbers, peak_rss_mb=peak_rss_mb())


def run_bench(bundle: str | Path, backends: str | Sequence[str] = "all", precisions: str | Sequence[str] = "all",
              batches: str | int | Sequence[int] = (1,), threads: int | None = None, runs: int = 100,
              warmup: int = 10, data: str | Path | None = None, max_eval_per_task: int = 20,
              command: str | None = None, progress: Callable[[BenchRow], None] | None = None) -> BenchResult:
    """Benchmark ``bundle`` on every (backend, precision, batch) asked for.

    Args:
        bundle: bundle folder or .zip (``usedge export``).
        backends / precisions: "all" or a comma list / sequence of names ("all" precisions: each backend's
            own (declared by each backend class); an explicit list: every backend gets each, unrunnable rows explained).
        batches: batch sizes (comma list or ints).
        threads: pin the CPU backends' (and torch's) threads; None leaves their defaults.
        runs / warmup: timed calls per row, and untimed calls before them.
        data: a labelled folder whose ``val/`` split scores each (backend, precision) on at most
            ``max_eval_per_task`` images per task; None skips scoring.
        command: recorded in the result (default: this process's command line).
        progress: called with each row as it is done.
    """
    from usedge.bundle import Bundle, load_bundle

    _check_counts(runs, warmup, max_eval_per_task)
    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads}.", fix="pass a positive thread count, or none for the default.")
    names, precs, sizes = parse_backends(backends), parse_precisions(precisions), parse_batches(batches)
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    samples = _eval_samples(data, b.tasks, max_eval_per_task) if data is not None else None
    rows: list[BenchRow] = []
    for backend in names:
        for precision in precisions_for(backend, precisions):
            for row in _bench_pair(b, backend, precision, sizes, threads, runs, warmup, samples):
                rows.append(row)
                if progress:
                    progress(row)
    settings = {"backends": names, "precisions": "all" if precisions == "all" else precs, "batches": sizes,
                "threads": threads, "runs": runs, "warmup": warmup, "data": str(data) if data is not None else None,
                "max_eval_per_task": max_eval_per_task, "eval_images": len(samples or [])}
    return BenchResult(str(b.path), tuple(rows), machine_info(), command or shlex.join(sys.argv), settings)


# -- writers -------------------------------------------------------------------------------------------------
HEADERS = {"backend": "backend", "device": "device", "precision": "precision", "batch": "batch",
           "size_mb": "size MB", "dice": "Dice", "accuracy": "accuracy", "iou": "IoU", "mre_px": "MRE px",
           "p50_ms": "p50 ms", "p95_ms": "p95 ms", "p99_ms": "p99 ms", "fps": "FPS",
           "predictor_p50_ms": "Predictor p50 ms", "peak_rss_mb": "peak RSS MB", "status": "status"}
TABLE_ORDER = ("backend", "device", "precision", "batch", "size_mb", "dice", "accuracy", "iou", "mre_px", "p50_ms",
               "p95_ms", "p99_ms", "fps", "predictor_p50_ms", "peak_rss_mb", "status")
_DIGITS = {"dice": 3, "accuracy": 3, "iou": 3, "fps": 1, "peak_rss_mb": 0, "size_mb": 2}


__all__ = ["COLUMNS", "BenchResult", "BenchRow", "backend_kind", "bench_inputs", "cpu_backends", "cuda_available",
           "machine_info", "parse_backends", "parse_batches", "parse_precisions", "precisions_for", "run_bench",
           "skip_reason"]
