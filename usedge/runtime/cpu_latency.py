"""CPU latency of an ONNX graph on OpenVINO (preferred: fastest CPU runtime measured here) or ONNX Runtime.

Used by reports that need one latency figure per model; the Backend protocol of the runtime issue will
subsume it. No torch.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def cpu_latency_ms(onnx_path: str | Path, size: int = 256, threads: int = 2, runs: int = 50,
                   warmup: int = 10) -> tuple[float, str]:
    """Median latency in ms of one batch-1 ``size``² inference, and the runtime's name ('' if none installed)."""
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    try:
        import openvino as ov

        compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                                     "PERFORMANCE_HINT": "LATENCY",
                                                                     "INFERENCE_PRECISION_HINT": "f32"})
        req = compiled.create_infer_request()
        run, name = (lambda: req.infer({0: x})), f"OpenVINO {ov.__version__.split('-')[0]} fp32"
    except ImportError:
        try:
            import onnxruntime as ort
        except ImportError:
            return float("nan"), ""
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        run, name = (lambda: sess.run(None, feed)), f"ONNX Runtime {ort.__version__} fp32"
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3), name
