"""Backends behind one protocol, one registry: ``open_backend("openvino", "model.onnx")``."""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from usedge.errors import ConfigError
from usedge.runtime.backends.base import Backend

_MODULES = {"openvino": ("usedge.runtime.backends.openvino", "OpenVINOBackend"),
            "onnxruntime": ("usedge.runtime.backends.onnxruntime", "ONNXRuntimeBackend")}


def backend_names() -> list[str]:
    return list(_MODULES)


def available_backends() -> list[str]:
    """Backends whose library is installed here."""
    found = []
    for name, lib in (("openvino", "openvino"), ("onnxruntime", "onnxruntime")):
        if importlib.util.find_spec(lib) is not None:
            found.append(name)
    return found


def open_backend(name: str, path: str | Path, **options) -> Backend:
    if name not in _MODULES:
        raise ConfigError(f"Unknown backend '{name}'.", fix=f"use one of: {', '.join(_MODULES)}")
    module, cls = _MODULES[name]
    return getattr(importlib.import_module(module), cls)(path, **options)


__all__ = ["Backend", "available_backends", "backend_names", "open_backend"]
