"""INT8 vs fp32 latency, all 27 heads in one pass, batch 1, 2 threads: the student backbones on OpenVINO and
ONNX Runtime (the INT8-aware architecture choice), and ONNX Runtime's own INT8 formats on the default
student (QDQ vs QOperator, S8S8 vs U8S8, graph optimisation level).

Every row runs in a process of its own (no leftover runtime threads); rows are interleaved over --rounds
rounds and the table gives the median of the per-round p50s. INT8 graphs: usedge's PTQ (NNCF, signed
symmetric Q/DQ, the graph bundles ship) on 32 phantom images; weights are random (timing does not depend
on them) except the default student, which is the packaged one.

    python benchmarks/bench_int8.py backbones [--sizes 128:2,256:4] [--rounds 2]
    python benchmarks/bench_int8.py ort [--rounds 3]
    python benchmarks/bench_int8.py layers BUNDLE [--runs 300]
        # OpenVINO's per-layer counters (PERF_COUNT) of the bundle's fp32 and int8 graphs, summed by layer type and
        # kernel: where the time of each goes, and what int8 leaves in float
    python benchmarks/bench_int8.py bundle BUNDLE [BUNDLE ...] [--rounds 4] [--caps native,AVX2]
        # a bundle's own fp32 and int8 graphs; --caps adds OpenVINO rows under ONEDNN_MAX_CPU_ISA=CAP (AVX2: the
        # kernels of CPUs without VNNI, on any machine; ONNX Runtime ignores the cap and is timed natively only)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BACKBONES = {"mnv4-small (student-s)": "timm/mobilenetv4_conv_small",
             "mnv3-large (student-m)": "timm/mobilenetv3_large_100",
             "efficientnet_b0 (student-l)": "timm/efficientnet_b0",
             "resnet18": "timm/resnet18"}
RUNTIMES = ("openvino", "onnxruntime")


def calibration(size: int, n: int = 32) -> np.ndarray:
    """Phantom images of every task, preprocessed as the runtime does."""
    from usedge.data.phantom.generator import PhantomConfig, generate_sample
    from usedge.data.preprocess import PreprocessSpec, preprocess
    from usedge.tasks import ALL_TASKS

    rng = np.random.default_rng(0)
    spec = PreprocessSpec(size=size)
    ids = [t.id for t in ALL_TASKS]
    return np.stack([preprocess(generate_sample(ids[i % len(ids)], rng, PhantomConfig(size=256)).image,
                                spec) for i in range(n)])


def export_pair(config, model, folder: Path, tag: str) -> tuple[Path, Path]:
    from usedge.models.onnx import export_onnx
    from usedge.quantize.int8 import head_arithmetic_scopes, quantize_onnx

    fp32, int8 = folder / f"{tag}.fp32.onnx", folder / f"{tag}.int8.onnx"
    export_onnx(model, config, fp32, dynamic_batch=False)
    quantize_onnx(fp32, calibration(config.input_size), int8, head_arithmetic_scopes(config.task_specs))
    return fp32, int8


def time_one(path: str, size: int, runtime: str, threads: int, runs: int, level: str = "all") -> float:
    """p50 ms of one runtime on one ONNX file (run in a child process)."""
    from usedge._timing import timed

    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    if runtime == "onnxruntime" and level != "all":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                         "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return float(np.median(timed(lambda: sess.run(None, {name: x}), runs, warmup=20)))
    from usedge.backends import open_backend

    backend = open_backend(runtime, path, threads=threads)
    return float(np.median(timed(lambda: backend.infer(x), runs, warmup=20)))


def child(args, path: Path, size: int, runtime: str, level: str = "all", cap: str = "native") -> float:
    import os

    env = dict(os.environ)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if cap != "native":
        env["ONEDNN_MAX_CPU_ISA"] = cap
    out = subprocess.run([sys.executable, __file__, "child", "--threads", str(args.threads), "--runs", str(args.runs),
                          "--child", str(path), str(size), runtime, level], capture_output=True, text=True, check=True,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def backbones(args, tmp: Path) -> None:
    from dataclasses import replace

    import torch

    from usedge.models import build_model
    from usedge.models.presets import resolve_config

    rows = {}
    for label, backbone in BACKBONES.items():
        for size, stride in args.sizes:
            config = replace(resolve_config("student-s"), backbone=backbone, input_size=size, dense_stride=stride)
            torch.manual_seed(0)
            model = build_model(config).eval()
            params = sum(p.numel() for p in model.parameters()) / 1e6
            rows[(label, size, stride)] = (params, *export_pair(config, model, tmp, f"b{len(rows)}"))
    p50: dict = {}
    for _ in range(args.rounds):
        for key, (_, fp32, int8) in rows.items():
            for runtime in RUNTIMES:
                for prec, path in (("fp32", fp32), ("int8", int8)):
                    p50.setdefault((*key, runtime, prec), []).append(child(args, path, key[1], runtime))
    print("| backbone | params M | input / dense stride | OV fp32 | OV int8 | OV int8 speed-up | ORT fp32 | ORT int8 "
          "| ORT int8 speed-up |\n|---|---|---|---|---|---|---|---|---|")
    for (label, size, stride), (params, _, _) in rows.items():
        m = {(r, p): float(np.median(p50[(label, size, stride, r, p)])) for r in RUNTIMES for p in ("fp32", "int8")}
        print(f"| {label} | {params:.2f} | {size}² / {stride} | {m['openvino', 'fp32']:.2f} | {m['openvino', 'int8']:.2f} "
              f"| {m['openvino', 'fp32'] / m['openvino', 'int8']:.2f}x | {m['onnxruntime', 'fp32']:.2f} "
              f"| {m['onnxruntime', 'int8']:.2f} | {m['onnxruntime', 'fp32'] / m['onnxruntime', 'int8']:.2f}x |")


def ort_formats(args, tmp: Path) -> None:
    """ONNX Runtime's quantize_static variants vs usedge's NNCF Q/DQ graph, on the packaged default student."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from usedge.export.defaults import resolve_model

    model, config, _ = resolve_model(None)
    fp32, nncf_int8 = export_pair(config, model, tmp, "default")
    calib = calibration(config.input_size)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"images": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.items, None)

    variants = {"fp32": (fp32, "all"), "usedge Q/DQ (NNCF, S8S8), ORT_ENABLE_ALL": (nncf_int8, "all"),
                "usedge Q/DQ, ORT_ENABLE_EXTENDED": (nncf_int8, "extended"),
                "usedge Q/DQ, ORT_ENABLE_BASIC": (nncf_int8, "basic")}
    for fmt in ("QDQ", "QOperator"):
        for act in ("QInt8", "QUInt8"):
            path = tmp / f"ort_{fmt}_{act}.onnx"
            quantize_static(str(fp32), str(path), Reader(), quant_format=getattr(QuantFormat, fmt),
                            activation_type=getattr(QuantType, act), weight_type=QuantType.QInt8, per_channel=True)
            variants[f"ORT quantize_static {fmt}, {'S8S8' if act == 'QInt8' else 'U8S8'}"] = (path, "all")
    p50: dict = {}
    for _ in range(args.rounds):
        for name, (path, level) in variants.items():
            p50.setdefault(name, []).append(child(args, path, config.input_size, "onnxruntime", level))
    base = float(np.median(p50["fp32"]))
    print("| ONNX Runtime graph | p50 ms | vs fp32 |\n|---|---|---|")
    for name in variants:
        ms = float(np.median(p50[name]))
        print(f"| {name} | {ms:.2f} | {base / ms:.2f}x |")


def bundle(args, tmp: Path) -> None:
    """Each bundle's model.fp32.onnx and model.int8.onnx on both runtimes (the shipped graphs, not re-exported);
    several bundles are timed in the same rounds, so their ratios compare."""
    from usedge._cpu import native_isa

    cpu = native_isa()
    rows, sizes = [], {}
    for name in args.bundle:
        folder = Path(name)
        meta = json.loads((folder / "metadata.json").read_text())
        sizes[name] = int(meta["input"]["shape"][-1])
        print(f"{folder}: {meta['int8'].get('method', 'ptq')}, {meta['int8'].get('weight_bits', 8)}-bit weights, "
              f"{sizes[name]}²")
        rows += [(name, runtime, "native") for runtime in RUNTIMES]
        rows += [(name, "openvino", c) for c in args.caps if c != "native"]
    p50: dict = {}
    for _ in range(args.rounds):
        for row in rows:
            for prec in ("fp32", "int8"):
                path = Path(row[0]) / f"model.{prec}.onnx"
                p50.setdefault((row, prec), []).append(child(args, path, sizes[row[0]], row[1], cap=row[2]))
    m = {k: float(np.median(v)) for k, v in p50.items()}
    print(f"\nbatch 1, {args.threads} threads, {args.rounds} rounds x {args.runs} runs, one process per row, rows "
          f"interleaved; CPU: {cpu.model} ({cpu.label})\n")
    print("| bundle | runtime | instruction set | fp32 p50 ms | int8 p50 ms | int8 speed-up | per-round speed-up "
          "(min-max) |\n|---|---|---|---|---|---|---|")
    for row in rows:
        f, q = m[row, "fp32"], m[row, "int8"]
        ratios = np.array(p50[row, "fp32"]) / np.array(p50[row, "int8"])
        isa = cpu.label if row[2] == "native" else f"ONEDNN_MAX_CPU_ISA={row[2]}"
        print(f"| {row[0]} | {row[1]} | {isa} | {f:.2f} | {q:.2f} | {f / q:.2f}x | {ratios.min():.2f}-{ratios.max():.2f}x |")


def layers(args, tmp: Path) -> None:
    """Per-layer OpenVINO counters of a bundle's two graphs (batch 1, the backend's own settings)."""
    from collections import Counter, defaultdict

    from usedge.backends.openvino import shared_core

    folder = Path(args.bundle[0])
    size = int(json.loads((folder / "metadata.json").read_text())["input"]["shape"][-1])
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    for prec in ("fp32", "int8"):
        compiled = shared_core().compile_model(str(folder / f"model.{prec}.onnx"), "CPU", {
            "PERF_COUNT": "YES", "INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        for _ in range(20):
            request.infer({0: x})
        total, count = defaultdict(float), Counter()
        for _ in range(args.runs):
            request.infer({0: x})
            for p in request.get_profiling_info():
                if p.status == p.Status.EXECUTED:
                    total[p.node_type, p.exec_type] += p.real_time.total_seconds() * 1e6 / args.runs
                    count[p.node_type, p.exec_type] += 1
        print(f"\n{folder / f'model.{prec}.onnx'}: layers sum to {sum(total.values()) / 1e3:.2f} ms per frame\n\n"
              "| layer type | kernel | layers | µs per frame |\n|---|---|---|---|")
        for (kind, kernel), us in sorted(total.items(), key=lambda kv: -kv[1])[:16]:
            print(f"| {kind} | {kernel} | {count[kind, kernel] // args.runs} | {us:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["backbones", "ort", "bundle", "layers", "child"])
    ap.add_argument("bundle", nargs="*", help="bundle folders (with `bundle`; several are timed side by side)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sizes", default="128:2,256:4", help="input:dense-stride pairs")
    ap.add_argument("--caps", default="native", help="with `bundle`: comma-separated ONEDNN_MAX_CPU_ISA caps for "
                                                         "OpenVINO rows besides the native one, e.g. native,AVX2")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.caps = [c.strip() for c in args.caps.split(",") if c.strip()]
    if args.what == "child":
        path, size, runtime, level = args.child
        print(json.dumps(time_one(path, int(size), runtime, args.threads, args.runs, level)))
        return
    args.sizes = [tuple(int(v) for v in s.split(":")) for s in args.sizes.split(",")]
    import logging

    logging.getLogger("nncf").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        {"backbones": backbones, "ort": ort_formats, "bundle": bundle, "layers": layers}[args.what](args, Path(tmp))


if __name__ == "__main__":
    main()
