"""One CPU latency figure for an ONNX graph: the first CPU runtime installed here (OpenVINO, the fastest
measured, else ONNX Runtime), batch 1, fp32, timed with the one timing helper (:func:`usedge._timing.timed`).

Used by the distillation report, which needs one latency per model. No torch.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from usedge._timing import timed
from usedge.backends import available_backends, backend_class, open_backend

_LABELS = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}


def cpu_latency_ms(onnx_path: str | Path, size: int = 256, threads: int = 2, runs: int = 50,
                   warmup: int = 10) -> tuple[float, str]:
    """Median latency in ms of one batch-1 ``size``² inference, and the runtime's name ('' if none installed)."""
    names = available_backends()
    if not names:
        return float("nan"), ""
    name = names[0]
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    backend = open_backend(name, onnx_path, threads=threads)
    try:
        t = timed(lambda: backend.infer(x), runs, warmup)
    finally:
        backend.close()
    version = importlib.metadata.version(backend_class(name).library).split("-")[0]
    return float(np.median(t)), f"{_LABELS.get(name, name)} {version} fp32"


__all__ = ["cpu_latency_ms"]
