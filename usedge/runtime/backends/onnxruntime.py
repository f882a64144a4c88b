"""ONNX Runtime backend (CPU execution provider; CUDA / TensorRT providers where installed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from usedge.errors import SourceError, require


class ONNXRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None, providers: list[str] | None = None) -> None:
        ort = require("onnxruntime", "cpu", "the ONNX Runtime backend")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types (InvalidGraph, Fail, ...)
            raise SourceError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:300]}",
                              fix="check that the file is a complete ONNX model (usedge verify BUNDLE).") from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.version = ort.__version__

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(images, np.float32)})
        return dict(zip(self.output_names, outs))

    def close(self) -> None:
        self.session = None
