"""Latency of the student-s variants behind the input-size / dense-stride choice (docs/models.md):
all 27 heads, one pass, batch 1, fp32 on OpenVINO and ONNX Runtime, 2 threads. Each row runs in a process of
its own (no leftover runtime threads), rows interleaved over --rounds rounds; the table gives the median of
the per-round p50s.

    python benchmarks/bench_input_size.py [--threads 2] [--runs 200] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

VARIANTS = [(128, 4), (128, 2), (192, 4), (256, 4)]  # (input side, dense stride)
RUNTIMES = ("openvino", "onnxruntime")


def export(size: int, stride: int, path: Path) -> None:
    from dataclasses import replace

    import torch

    from usedge.models import build_model
    from usedge.models.onnx import export_onnx
    from usedge.models.presets import resolve_config

    config = replace(resolve_config("student-s"), input_size=size, dense_stride=stride)
    torch.manual_seed(0)
    export_onnx(build_model(config).eval(), config, path, dynamic_batch=False)


def time_one(path: str, size: int, runtime: str, threads: int, runs: int) -> float:
    """p50 ms of one runtime on one ONNX file (run in a child process)."""
    from usedge._timing import timed
    from usedge.backends import open_backend

    backend = open_backend(runtime, path, threads=threads)
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    return float(np.median(timed(lambda: backend.infer(x), runs, warmup=20)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        path, size, runtime = args.child
        print(json.dumps(time_one(path, int(size), runtime, args.threads, args.runs)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for size, stride in VARIANTS:
            files[(size, stride)] = Path(tmp) / f"s{size}_d{stride}.onnx"
            export(size, stride, files[(size, stride)])
        p50 = {}
        for _ in range(args.rounds):
            for (size, stride), path in files.items():
                for runtime in RUNTIMES:
                    out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--runs",
                                          str(args.runs), "--child", str(path), str(size), runtime],
                                         capture_output=True, text=True, check=True)
                    p50.setdefault((size, stride, runtime), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| input | dense stride | dense map | OpenVINO fp32 p50 ms | ONNX Runtime fp32 p50 ms |\n|---|---|---|---|---|")
    for size, stride in VARIANTS:
        ov, ort = (np.median(p50[(size, stride, r)]) for r in RUNTIMES)
        print(f"| {size}² | {stride} | {size // stride}² | {ov:.2f} | {ort:.2f} |")


if __name__ == "__main__":
    main()
