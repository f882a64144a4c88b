"""The Predictor behind NVIDIA Triton Inference Server.

* :class:`FrameHandler`: raw frames (+ an optional task list) -> the Predictor's JSON, one text per frame, with the
  same bounds as ``usedge serve`` (frames above ``max_side`` are analysed downscaled and answered in their own
  pixels). Used by ``usedge serve --triton`` and by the Python-backend model ``usedge triton-repo`` writes.
* :func:`serve_triton`: a real Triton server (NVIDIA PyTriton's ``tritonserver``) started in-process, serving
  the model ``usedge`` over KServe v2 HTTP and gRPC with dynamic batching and Triton's Prometheus metrics.
* :func:`environment_problem`: why PyTriton cannot run here, or None.

Tensors (the same names in the repository's ``usedge`` model): ``frame`` UINT8 [batch, H, W, C] (C = 1 grey,
3 BGR, 4 BGRA), optional ``tasks`` BYTES [batch, 1] ("fetal_head,organ_cls"; empty: the model's tasks),
optional ``region`` INT32 [batch, 4] (the scan region x0, y0, x1, y1 in frame pixels: cropped, as
``Predictor(frame, region=...)``), optional ``mm_per_pixel`` FP32 [batch, 2] (the frame's pixel size, x and y:
the answer then carries the frame's clinical measurements, ``usedge.measure``; no tracking across requests),
``result`` BYTES [batch, 1]: the JSON of ``FrameResult.to_json()``.
docs/triton.md.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from usedge.errors import ConfigError, DataError, SourceError
from usedge.export.triton import FRAME_INPUT, MM_INPUT, QUEUE_DELAY_US, REGION_INPUT, RESULT_OUTPUT, TASKS_INPUT
from usedge.runtime.predictor import MAX_FRAME_PIXELS
from usedge.serve.protocol import MAX_SIDE, _jsonable, fit_side, rescale_result

log = logging.getLogger("usedge")

MODEL_NAME = "usedge"


class FrameHandler:
    """Frames in Triton's layout -> JSON texts; thread-safe (one Predictor call at a time)."""

    def __init__(self, predictor, max_side: int | None = MAX_SIDE, max_pixels: int = MAX_FRAME_PIXELS) -> None:
        self.predictor = predictor
        self.max_side = max_side
        self.max_pixels = max_pixels
        self._lock = threading.Lock()

    def answer(self, frames: Sequence[np.ndarray] | np.ndarray, tasks: Any = None, regions: Any = None,
               mm_per_pixel: Any = None) -> list[bytes]:
        """One request: every frame's JSON, in order."""
        return self.answer_requests([(frames, tasks, regions, mm_per_pixel)])[0]

    def answer_requests(self, requests: Sequence[tuple[Any, ...]]) -> list[list[bytes]]:
        """Several requests ``(frames, tasks[, regions[, mm_per_pixel]])``, run as one Predictor batch per task
        selection. ``tasks`` has one row per frame (or one row for all of them); ``regions`` one (x0, y0, x1, y1)
        scan region per frame in its pixels (or one for all; absent: the whole frame); ``mm_per_pixel`` one
        (x, y) pixel size per frame (or one for all; absent: no measurements). Raises DataError / ConfigError
        naming each bad request (and nothing is answered: PyTriton reports errors per model call)."""
        checked, problems, scales = [], [], []
        for i, (frames, tasks, *rest) in enumerate(requests):
            try:
                images = self._frames(frames)
                checked.append((images, self._tasks(tasks, len(images)),
                                self._regions(rest[0] if rest else None, images)))
                scales.append(self._scales(rest[1] if len(rest) > 1 else None, len(images)))
            except (DataError, ConfigError) as exc:
                problems.append((i, exc))
        if problems:
            raise _combined(problems, len(requests))
        out: list[list[bytes | None]] = [[None] * len(images) for images, _, _ in checked]
        groups: dict[tuple[str, ...] | None, list[tuple[int, int]]] = {}
        for i, (_, selections, _) in enumerate(checked):
            for j, selection in enumerate(selections):
                groups.setdefault(selection, []).append((i, j))
        for selection, places in groups.items():
            sent = [checked[i][0][j] for i, j in places]
            analysed = [fit_side(image, self.max_side) for image in sent]
            regions = [_scaled(checked[i][2][j], frame, image) for (i, j), frame, image in zip(places, sent, analysed)]
            with self._lock:
                results = self.predictor.predict_batch(analysed, regions=regions, tasks=selection)
            for (i, j), frame, image, result in zip(places, sent, analysed, results):
                out[i][j] = self._text(result, frame, image, scales[i][j])
        return out  # type: ignore[return-value]  # every place was filled

    @staticmethod
    def _regions(regions: Any, images: list[np.ndarray]) -> list[tuple[int, int, int, int] | None]:
        """One scan region per frame (x0, y0, x1, y1, x1/y1 exclusive, in the frame's pixels) or None."""
        n = len(images)
        if regions is None:
            return [None] * n
        arr = np.asarray(regions)
        if arr.dtype.kind not in "iu" or arr.size == 0 or arr.size % 4 or len(arr.reshape(-1, 4)) not in (1, n):
            raise DataError(f"region {arr.dtype} {list(arr.shape)}: expected one (x0, y0, x1, y1) of integers per "
                            f"frame ({n} frames).", fix="send INT32 [batch, 4], x1/y1 exclusive, in frame pixels.")
        rows = [tuple(int(v) for v in r) for r in arr.reshape(-1, 4)]
        rows = rows * n if len(rows) == 1 else rows
        for (x0, y0, x1, y1), image in zip(rows, images):
            h, w = image.shape[:2]
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 >= 2 and y1 - y0 >= 2):
                raise DataError(f"region ({x0}, {y0}, {x1}, {y1}) is not inside the {w}×{h} frame.",
                                fix="send x0 < x1 <= width and y0 < y1 <= height (x1/y1 exclusive).")
        return rows

    def _frames(self, frames: Any) -> list[np.ndarray]:
        arr = np.asarray(frames)
        if arr.dtype != np.uint8:
            raise DataError(f"frame dtype is {arr.dtype}: the model takes UINT8 pixels.",
                            fix="send uint8 frames (16-bit: scale to 8 bits first).")
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
            raise DataError(f"frame shape {list(arr.shape)}: expected [batch, height, width, channels] with 1 (grey), "
                            "3 (BGR) or 4 (BGRA) channels.", fix="send H×W grey frames as H×W×1.")
        h, w = arr.shape[1:3]
        if h < 2 or w < 2:
            raise DataError(f"frame is {w}×{h} pixels: too small.", fix="send the whole frame (at least 2×2).")
        if h * w > self.max_pixels:
            raise DataError(f"frame is {w}×{h} = {h * w / 1e6:.3g} MP, above the {self.max_pixels / 1e6:.3g} MP "
                            "limit.", fix="downscale the frame or crop it to the scan region first.")
        return [a[..., 0] if a.shape[-1] == 1 else a for a in arr]

    def _tasks(self, tasks: Any, n: int) -> list[tuple[str, ...] | None]:
        """One task selection per frame (in the order given, duplicates dropped; None: the model's tasks)."""
        if tasks is None:
            return [None] * n
        rows = np.asarray(tasks, dtype=object).reshape(-1) if np.ndim(tasks) else np.asarray([tasks], dtype=object)
        if len(rows) not in (1, n):
            raise DataError(f"{len(rows)} task lists for {n} frames.", fix="send one row of tasks per frame, or one.")
        chosen = []
        for value in rows:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
            chosen.append(self.predictor.select(names) if names else None)
        return chosen * n if len(rows) == 1 else chosen

    @staticmethod
    def _scales(mm: Any, n: int) -> list[tuple[float, float] | None]:
        """One (x, y) pixel size in mm per frame, or None for every frame when the input is absent."""
        if mm is None:
            return [None] * n
        arr = np.asarray(mm, dtype=np.float64)
        if arr.size == 0 or arr.size % 2 or len(arr.reshape(-1, 2)) not in (1, n) or not (
                np.isfinite(arr).all() and (arr > 0).all()):
            raise DataError(f"mm_per_pixel {list(arr.shape)} {arr.reshape(-1)[:4].tolist()}: expected one positive "
                            f"(x, y) pixel size in mm per frame ({n} frames).", fix="send FP32 [batch, 2].")
        rows = [(float(x), float(y)) for x, y in arr.reshape(-1, 2)]
        return rows * n if len(rows) == 1 else rows

    @staticmethod
    def _text(result, sent: np.ndarray, analysed: np.ndarray, mm: tuple[float, float] | None = None) -> bytes:
        if mm is not None:
            from usedge.measure import Scale, measure

            scale = Scale.of(mm)
            if analysed.shape[:2] != sent.shape[:2]:
                scale = scale.resized(analysed.shape[1] / sent.shape[1], analysed.shape[0] / sent.shape[0])
            result.measurements = measure(result, scale)
        payload = result.to_json()
        if analysed.shape[:2] != sent.shape[:2]:
            payload = rescale_result(payload, sent.shape[1], sent.shape[0])
        return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_jsonable).encode()

    def close(self) -> None:
        self.predictor.close()


def _scaled(region, sent: np.ndarray, analysed: np.ndarray):
    """A region in the sent frame's pixels, in the pixels of its downscaled copy."""
    if region is None or analysed.shape[:2] == sent.shape[:2]:
        return region
    sx, sy = analysed.shape[1] / sent.shape[1], analysed.shape[0] / sent.shape[0]
    x0, y0, x1, y1 = region
    return (int(x0 * sx), int(y0 * sy), max(int(x0 * sx) + 2, round(x1 * sx)), max(int(y0 * sy) + 2, round(y1 * sy)))


def _combined(problems: list[tuple[int, Exception]], total: int) -> DataError:
    if total == 1:
        exc = problems[0][1]
        return DataError(getattr(exc, "message", str(exc)), fix=getattr(exc, "fix", None))
    text = "; ".join(f"request {i + 1} of {total}: {getattr(e, 'message', e)}" for i, e in problems)
    return DataError(text, fix="fix the named requests; requests batched with them were not run (resend them).")


# -- the environment PyTriton needs ---------------------------------------------------------------------


def environment_problem() -> str | None:
    """Why ``usedge serve --triton`` cannot run here (architecture, Python, glibc, numpy, the wheel), or None."""
    machine = platform.machine()
    if sys.platform != "linux" or machine not in ("x86_64", "aarch64"):
        return f"PyTriton's tritonserver runs on Linux x86-64 and aarch64 only (this is {sys.platform} {machine})."
    if not (3, 8) <= sys.version_info[:2] <= (3, 13):
        return f"PyTriton ships Python-backend stubs for Python 3.8-3.13 (this is {platform.python_version()})."
    libc, version = platform.libc_ver()
    if libc == "glibc" and version and tuple(int(p) for p in version.split(".")[:2]) < (2, 35):
        return f"PyTriton's tritonserver needs glibc >= 2.35 (Ubuntu 22.04+, Debian 12+); this system has {version}."
    if int(np.__version__.split(".")[0]) >= 2:
        return (f"PyTriton 0.7's Python backend passes tensors through the numpy 1 C API; this environment has "
                f"numpy {np.__version__} (frames arrive as zeros). Install usedge[triton] into its own virtual "
                "environment (`make triton` makes .venv-triton), where pip resolves numpy < 2.")
    try:
        import pytriton  # noqa: F401
    except ImportError:
        return "PyTriton is not installed: pip install 'usedge[triton]' (in its own virtual environment)."
    if stub_library_dir() is None and not _system_libpython_matches():
        return (f"Triton's Python-backend stub loads libpython{_ver()}.so.1.0, and this Python "
                f"({sys.executable}, {platform.python_version()}) has no shared library: use a Python built with "
                "--enable-shared (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared) or Debian's python3 for the venv.")
    return None


def _ver() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def stub_library_dir() -> str | None:
    """The folder holding this interpreter's own ``libpythonX.Y.so.1.0``, or None.

    Triton's Python-backend stub (a separate process) links ``libpythonX.Y.so.1.0`` by name; found in the system
    folder first, it is Debian's 3.11.2 under pyenv's 3.11.7, whose stdlib then fails inside the stub
    (``'_thread.RLock' object has no attribute '_recursion_count'``). Putting this interpreter's LIBDIR first
    on ``LD_LIBRARY_PATH`` makes the stub load the matching library."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return None
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and (Path(libdir) / f"libpython{_ver()}.so.1.0").is_file():
        return str(libdir)
    return None


def _system_libpython_matches() -> bool:
    """A static interpreter whose version the system libpython has exactly (e.g. Debian's python3)."""
    import ctypes.util

    return ctypes.util.find_library(f"python{_ver()}") is not None and sys.executable.startswith("/usr/bin")


# -- the server ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TritonServeConfig:
    """Where and how ``usedge serve --triton`` listens; 127.0.0.1 unless told otherwise."""

    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 8
    queue_delay_us: int = QUEUE_DELAY_US
    max_side: int | None = MAX_SIDE
    verbose: bool = False


def _check_ports(config: TritonServeConfig) -> None:
    """Refuse at once a port that is taken (Triton would otherwise fail its start after a minute's timeout)."""
    if len({config.http_port, config.grpc_port, config.metrics_port}) < 3:
        raise ConfigError("--http-port, --grpc-port and --metrics-port must differ.", fix="give three ports.")
    try:
        family = socket.getaddrinfo(config.host, None)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve --host {config.host!r}: {exc.strerror}.",
                          fix="use an address of this machine, e.g. 127.0.0.1.") from None
    for flag, port in (("--http-port", config.http_port), ("--grpc-port", config.grpc_port),
                       ("--metrics-port", config.metrics_port)):
        with socket.socket(family) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)    # as servers bind: TIME_WAIT is no conflict
            try:
                s.bind((config.host, port))
            except OSError as exc:
                raise ConfigError(f"cannot listen on {config.host}:{port} ({flag}): {exc.strerror}.",
                                  fix=f"pick a free port with {flag}, or stop what uses it.") from None


def serve_triton(predictor, config: TritonServeConfig | None = None,
                 on_ready: Callable[[TritonServeConfig, Path | None], None] | None = None) -> None:
    """Serve ``predictor`` as the Triton model ``usedge`` until SIGINT / SIGTERM. Raises ConfigError when the
    environment cannot run PyTriton (see :func:`environment_problem`)."""
    config = config or TritonServeConfig()
    problem = environment_problem()
    if problem:
        raise ConfigError(f"cannot start Triton: {problem}", fix="docs/triton.md, 'Where it runs'.")
    _check_ports(config)
    libdir = stub_library_dir()
    if libdir:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p)
    if not config.verbose:
        logging.getLogger("pytriton").setLevel(logging.WARNING)
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonLifecyclePolicy

    handler = FrameHandler(predictor, max_side=config.max_side)

    def infer(requests):
        texts = handler.answer_requests([(r.data[FRAME_INPUT], r.data.get(TASKS_INPUT), r.data.get(REGION_INPUT),
                                          r.data.get(MM_INPUT)) for r in requests])
        return [{RESULT_OUTPUT: np.array(t, dtype=object).reshape(-1, 1)} for t in texts]

    # Triton logs every INFO line to stdout: to a file unless --verbose (its path is in the ready message; the
    # folder is removed after a requested stop and kept when Triton stopped on its own)
    log_dir = None if config.verbose else Path(tempfile.mkdtemp(prefix="usedge-triton-"))
    log_file = log_dir / "tritonserver.log" if log_dir else None
    triton_config = TritonConfig(http_address=config.host, http_port=config.http_port, grpc_address=config.host,
                                 grpc_port=config.grpc_port, metrics_address=config.host,
                                 metrics_port=config.metrics_port, allow_gpu_metrics=False,
                                 log_verbose=1 if config.verbose else 0, log_file=log_file, strict_readiness=True)
    batcher = DynamicBatcher(max_queue_delay_microseconds=config.queue_delay_us)
    stop = _StopSignals()
    with stop:
        try:
            # the model goes into a local model store before tritonserver starts, which loads it at startup:
            # /v2/health/ready (strict readiness) is then false until the model is loaded; PyTriton's default
            # starts the server empty and loads the model afterwards, so "ready" came first ("unknown model")
            policy = TritonLifecyclePolicy(launch_triton_on_startup=False, local_model_store=True)
            with Triton(config=triton_config, triton_lifecycle_policy=policy) as triton:
                triton.bind(model_name=MODEL_NAME, infer_func=infer,
                            inputs=[Tensor(name=FRAME_INPUT, dtype=np.uint8, shape=(-1, -1, -1)),
                                    Tensor(name=TASKS_INPUT, dtype=bytes, shape=(1,), optional=True),
                                    Tensor(name=REGION_INPUT, dtype=np.int32, shape=(4,), optional=True),
                                    Tensor(name=MM_INPUT, dtype=np.float32, shape=(2,), optional=True)],
                            outputs=[Tensor(name=RESULT_OUTPUT, dtype=bytes, shape=(1,))],
                            config=ModelConfig(max_batch_size=config.max_batch, batcher=batcher), strict=True)
                triton.run()
                if on_ready:
                    on_ready(config, log_file)
                triton.serve()          # returns on SIGINT / SIGTERM, or when tritonserver or its proxy dies
        except KeyboardInterrupt:
            pass
        except Exception as exc:  # noqa: BLE001 - PyTriton raises its own and its clients' errors
            raise SourceError(f"Triton failed: {type(exc).__name__}: {str(exc)[:300]}",
                              fix=f"see Triton's log ({log_file or 'above'}); usedge --verbose shows it live.") from None
    if not stop.requested:
        raise SourceError("Triton stopped on its own (tritonserver or PyTriton's proxy process ended).",
                          fix=f"see Triton's log ({log_file or 'above'}).")
    if log_dir:
        shutil.rmtree(log_dir, ignore_errors=True)


class _StopSignals:
    """SIGINT / SIGTERM end the server (a KeyboardInterrupt in the main thread) and are remembered as requested,
    so a return of ``serve()`` without one is reported as a failure. Handlers are restored on exit."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        self.requested = True
        raise KeyboardInterrupt

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        else:
            self.requested = True      # not the main thread: no signals here; a return means the caller stopped it
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


__all__ = ["FrameHandler", "MODEL_NAME", "TritonServeConfig", "environment_problem", "serve_triton",
           "stub_library_dir"]
