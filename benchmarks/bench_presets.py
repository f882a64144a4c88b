"""Latency of each model preset, all 27 heads, one pass: torch -> ONNX -> OpenVINO fp32 on CPU.

Usage: python benchmarks/bench_presets.py [--models student-s,student-m,...] [--threads 2] [--runs 200]
Prints a markdown table (params, ONNX MB, p50/p95 ms) and writes it as JSON with --json.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def export_onnx(name: str, path: Path, size: int) -> int:
    import torch

    from usedge.models import build_model

    model = build_model(name).eval()
    names = [o.name for t in model.task_specs.values() for o in t.outputs]
    x = torch.randn(1, 3, size, size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), input_names=["images"], output_names=names, opset_version=17,
                          dynamo=False)
    return sum(p.numel() for p in model.parameters())


def ov_latency(path: Path, size: int, threads: int, runs: int) -> np.ndarray:
    from usedge.backends.openvino import shared_core

    compiled = shared_core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                     "INFERENCE_PRECISION_HINT": "f32"})  # no silent bf16
    req = compiled.create_infer_request()
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    for _ in range(20):
        req.infer({0: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        req.infer({0: x})
        times.append((time.perf_counter() - t) * 1e3)
    return np.array(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="student-s,student-m,student-l,teacher-r50,baseline-b4")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path = Path(tmp) / f"{name}.onnx"
            params = export_onnx(name, path, args.size)
            t = ov_latency(path, args.size, args.threads, args.runs)
            rows.append({"model": name, "params_m": params / 1e6, "onnx_mb": path.stat().st_size / 2**20,
                         "p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95))})
    print(f"OpenVINO fp32, CPU {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"batch 1, {args.size}x{args.size}, all 27 tasks, {args.runs} runs")
    print("| model | params (M) | ONNX (MB) | p50 ms | p95 ms |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params_m']:.2f} | {r['onnx_mb']:.1f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
