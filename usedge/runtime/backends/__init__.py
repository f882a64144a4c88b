"""Backends behind one protocol, one registry: ``open_backend("openvino", "model.onnx")``.

Each backend lives in its own module and is imported only when used, so ``import usedge.runtime`` pulls in
neither OpenVINO, ONNX Runtime, TensorRT nor torch.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from usedge.errors import ConfigError
from usedge.runtime.backends.base import Backend, InputSpec, LatencyStats

#: name -> (module, class, the library it needs, what the model file is)
_REGISTRY = {
    "openvino": ("usedge.runtime.backends.openvino", "OpenVINOBackend", "openvino", "onnx"),
    "onnxruntime": ("usedge.runtime.backends.onnxruntime", "ONNXRuntimeBackend", "onnxruntime", "onnx"),
    "tensorrt": ("usedge.runtime.backends.tensorrt", "TensorRTBackend", "tensorrt", "engine"),
    "torch": ("usedge.runtime.backends.torch_backend", "TorchBackend", "torch", "checkpoint"),
}


def backend_names() -> list[str]:
    return list(_REGISTRY)


def backend_input(name: str) -> str:
    """What the backend loads: "onnx", "engine" (TensorRT plan) or "checkpoint" (torch weights)."""
    _check(name)
    return _REGISTRY[name][3]


def available_backends(onnx_only: bool = True) -> list[str]:
    """Backends whose library is installed here, in order of preference on CPU (OpenVINO was faster than
    ONNX Runtime in every case measured on the workplace CPU). ``onnx_only``: only those that run ONNX files."""
    found = []
    for name, (_, _, lib, kind) in _REGISTRY.items():
        if onnx_only and kind != "onnx":
            continue
        if importlib.util.find_spec(lib) is not None:
            found.append(name)
    return found


def open_backend(name: str, path: str | Path, **options) -> Backend:
    _check(name)
    module, cls, _, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)(path, **options)


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown backend '{name}'.", fix=f"use one of: {', '.join(_REGISTRY)}")


__all__ = ["Backend", "InputSpec", "LatencyStats", "available_backends", "backend_input", "backend_names",
           "open_backend"]
