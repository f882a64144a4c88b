"""ONNX Runtime backend (CPU execution provider; CUDA / TensorRT providers where the installed ORT has them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from usedge.backends.base import InputSpec, OnnxBackend, dims_to_spec
from usedge.errors import ConfigError, SourceError, require


class ONNXRuntimeBackend(OnnxBackend):
    """Options: ``threads`` (intra-op threads; None = ORT's default), ``providers`` (default: CPU only;
    e.g. ["CUDAExecutionProvider", "CPUExecutionProvider"]), ``optimize`` (True: ORT_ENABLE_ALL, the fused
    integer kernels; False: no graph optimization, so a Q/DQ graph runs as float DequantizeLinear -> op ->
    QuantizeLinear: its exact meaning on any CPU, the reference of usedge.backends.int8_check)."""

    name = "onnxruntime"
    library = "onnxruntime"
    preference = 1
    auto_rank = 2

    @classmethod
    def auto_precision(cls, bundle) -> tuple[str, str] | None:
        return super().auto_precision(bundle) or ("fp32", "ONNX Runtime int8 measured slower than fp32 on x86 CPUs")

    def _open(self, path: Path, threads: int | None = None,
              providers: list[str] | None = None, optimize: bool = True) -> tuple[InputSpec, list[str]]:
        ort = require("onnxruntime", "cpu", "the ONNX Runtime backend")
        providers = list(providers or ["CPUExecutionProvider"])
        missing = [p for p in providers if p not in ort.get_available_providers()]
        if missing:
            raise ConfigError(f"ONNX Runtime here has no {missing}.",
                              fix=f"use one of {ort.get_available_providers()} (CUDA needs onnxruntime-gpu).")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                         else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types (InvalidGraph, Fail, ...)
            raise SourceError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:300]}",
                              fix="check that the file is a complete ONNX model (usedge verify BUNDLE).") from None
        self.version = ort.__version__
        first = self.session.get_inputs()[0]
        return dims_to_spec(first.name, list(first.shape)), [o.name for o in self.session.get_outputs()]

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, {self.input.name: images})
        return dict(zip(self.output_names, outs))

    def _close(self) -> None:
        self.session = None
