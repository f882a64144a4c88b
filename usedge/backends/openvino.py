"""OpenVINO backend (CPU; GPU / NPU device names pass through). The fastest CPU runtime measured here."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from usedge.backends.base import InputSpec, OnnxBackend, dims_to_spec
from usedge.errors import SourceError, require

_CORE: object | None = None
_CORE_LOCK = threading.Lock()


def shared_core():
    """The one ``openvino.Core`` of this process: made on first use, never released.

    Why one: OpenVINO's CPU plugin (every version up to 2026.4 at least) replaces the signal alternate stack
    of the thread that creates it with one it mmaps, and at its destruction munmaps that memory, restoring
    the previous stack only on the destroying thread and only if its own is still current there. Two Cores
    released in the order they were made, or one released on another thread (a stream worker, the cyclic
    GC), therefore leave a thread's alternate stack pointing at unmapped memory, and the next signal that
    thread handles on it (Ctrl-C, SIGTERM, a DataLoader worker's SIGCHLD) kills the process with SIGSEGV and
    no traceback. One Core that lives as long as the process never runs that destructor early.
    Compiling on one Core from several threads is supported by OpenVINO."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            ov = require("openvino", "cpu", "the OpenVINO backend")
            _CORE = ov.Core()
        return _CORE


class OpenVINOBackend(OnnxBackend):
    """Options: ``device`` ("CPU", "GPU", "NPU", "AUTO"), ``threads`` (INFERENCE_NUM_THREADS; None = all
    cores), ``hint`` ("LATENCY" for batch-1 streaming, "THROUGHPUT" for offline batches),
    ``inference_precision`` (INFERENCE_PRECISION_HINT, "f32" by default: on CPUs with AVX512_BF16 or AMX
    OpenVINO otherwise runs float layers in bf16, so an "fp32" model would silently lose ~3 digits;
    pass "bf16" / "f16" to opt in, or None for the plugin's default)."""

    name = "openvino"
    library = "openvino"
    preference = 0          # faster than ONNX Runtime in every case measured on the workplace CPU
    auto_rank = 1

    def _open(self, path: Path, device: str = "CPU", threads: int | None = None,
              hint: str = "LATENCY", inference_precision: str | None = "f32") -> tuple[InputSpec, list[str]]:
        ov = require("openvino", "cpu", "the OpenVINO backend")
        config: dict[str, object] = {"PERFORMANCE_HINT": hint}
        if inference_precision and device.upper() == "CPU":
            config["INFERENCE_PRECISION_HINT"] = inference_precision
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            core = shared_core()
            model = core.read_model(str(path))
            self.compiled = core.compile_model(model, device, config)
        except RuntimeError as exc:
            raise SourceError(f"OpenVINO cannot load {path} on {device}: {str(exc).splitlines()[0][:300]}",
                              fix="check the file (usedge verify BUNDLE) and the device name (CPU, GPU, NPU).") from None
        self.request = self.compiled.create_infer_request()
        self.version = ov.__version__.split("-")[0]
        port = model.inputs[0]
        dims = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        # the names as the file declares them: compiling can fuse a final Cast and give a port another name first
        # (an FP16 graph's outputs), while the compiled ports keep the model's order
        return dims_to_spec(port.get_any_name(), dims), [o.get_any_name() for o in model.outputs]

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        result = self.request.infer({0: images})
        return {name: np.asarray(result[out]) for name, out in zip(self.output_names, self.compiled.outputs)}

    def _close(self) -> None:
        self.request = None
        self.compiled = None
