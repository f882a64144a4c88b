"""The backends stage: every runtime behind one protocol and one registry (``open_backend("openvino",
"model.onnx")``), and what compares them: ``parity`` (task-level agreement with the torch reference),
``cpu_latency`` and ``int8_check`` (the bundle's int8 exactness check). After bundle and engine (the TensorRT
backend runs engines), before train, distill, quantize and export, which run candidate graphs on it.

Each backend lives in its own module, one ``Backend`` subclass that declares its capabilities (library,
extra, artefact, precisions, device kind, automatic-choice rank) and answers ``available()``,
``skip_reason()``, ``locate()`` and ``open_for()``; ``usedge.load`` and ``usedge bench`` read those instead
of knowing backends by name. The modules import their libraries only when a session opens, so
``import usedge.backends`` pulls in neither OpenVINO, ONNX Runtime, TensorRT nor torch.
"""
from __future__ import annotations

from pathlib import Path

from usedge.backends.base import Backend, InputSpec, LatencyStats, OnnxBackend
from usedge.backends.onnxruntime import ONNXRuntimeBackend
from usedge.backends.openvino import OpenVINOBackend
from usedge.backends.tensorrt import TensorRTBackend
from usedge.backends.torch_backend import TorchBackend
from usedge.errors import ConfigError
from usedge.registry import Registry

#: the one registry of backends: name -> Backend subclass (each declares its capabilities, see Backend)
BACKENDS: Registry[type[Backend]] = Registry("backend")
for _cls in (OpenVINOBackend, ONNXRuntimeBackend, TensorRTBackend, TorchBackend):
    BACKENDS.register(_cls.name, _cls)


def backend_names() -> list[str]:
    """Every backend, CPU runtimes first (fastest first), then TensorRT and torch."""
    return sorted(BACKENDS.names(), key=lambda n: BACKENDS.get(n).preference)


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name`` (its capabilities: library, artefact, precisions, device kind, ...)."""
    _check(name)
    return BACKENDS.get(name)


def backend_input(name: str) -> str:
    """What the backend loads: "onnx", "engine" (TensorRT plan) or "checkpoint" (torch weights)."""
    return backend_class(name).artefact


def auto_order() -> list[str]:
    """The order ``usedge.load(backend="auto")`` tries backends in (those with an ``auto_rank``)."""
    ranked = [n for n in backend_names() if BACKENDS.get(n).auto_rank is not None]
    return sorted(ranked, key=lambda n: BACKENDS.get(n).auto_rank)


def available_backends(onnx_only: bool = True) -> list[str]:
    """Backends whose library is installed here, in :func:`backend_names` order (OpenVINO was faster than
    ONNX Runtime in every case measured on the workplace CPU). ``onnx_only``: only those that run ONNX files."""
    return [n for n in backend_names() if BACKENDS.get(n).available()
            and (not onnx_only or BACKENDS.get(n).artefact == "onnx")]


def open_backend(name: str, path: str | Path, **options) -> Backend:
    return backend_class(name)(path, **options)


def _check(name: str) -> None:
    if name not in BACKENDS:
        raise ConfigError(f"Unknown backend '{name}'.", fix=f"use one of: {', '.join(backend_names())}")


__all__ = ["BACKENDS", "Backend", "InputSpec", "LatencyStats", "OnnxBackend", "auto_order", "available_backends",
           "backend_class", "backend_input", "backend_names", "open_backend"]
