"""OpenVINO backend (CPU; also GPU/NPU devices where OpenVINO has them). The fastest CPU runtime measured here."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from usedge.errors import SourceError, require


class OpenVINOBackend:
    name = "openvino"

    def __init__(self, path: str | Path, device: str = "CPU", threads: int | None = None,
                 hint: str = "LATENCY") -> None:
        ov = require("openvino", "cpu", "the OpenVINO backend")
        config = {"PERFORMANCE_HINT": hint}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = ov.Core().compile_model(str(path), device, config)
        except RuntimeError as exc:
            raise SourceError(f"OpenVINO cannot load {path}: {str(exc).splitlines()[0]}",
                              fix="check that the file is a complete ONNX model (usedge verify BUNDLE).") from None
        self.request = self.compiled.create_infer_request()
        self.input_name = self.compiled.inputs[0].get_any_name()
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self.version = ov.__version__.split("-")[0]

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        result = self.request.infer({0: np.ascontiguousarray(images, np.float32)})
        return {name: np.asarray(result[out]) for name, out in zip(self.output_names, self.compiled.outputs)}

    def close(self) -> None:
        self.request = None
        self.compiled = None
