"""Threading / latency knobs per backend at batch 1 (the streaming case), measured side by side, interleaved
so that machine load affects every setting alike. Picks the defaults documented in docs/runtime.md.

Usage:
    python benchmarks/bench_backend_knobs.py [--bundle B] [--precision fp32] [--rounds 5] [--runs 60]
Without --bundle: the untrained student-s 256² bundle of bench_predictor.py.
"""
from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np
from bench_predictor import default_bundle, timed

SETTINGS = {
    "openvino": [{"threads": t, "hint": h} for t in (1, 2) for h in ("LATENCY", "THROUGHPUT")],
    "onnxruntime": [{"threads": t} for t in (1, 2)],
}


def main() -> None:
    from usedge.backends import available_backends, open_backend
    from usedge.bundle import load_bundle

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    b = load_bundle(args.bundle or default_bundle())
    size = b.preprocess.size
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    sessions = {(name, tuple(sorted(opt.items()))): open_backend(name, b.model_path(args.precision), **opt)
                for name in available_backends() for opt in SETTINGS.get(name, [{}])}
    times: dict = {k: [] for k in sessions}
    for _ in range(args.rounds):          # interleave: every setting sees the same machine state
        for key, s in sessions.items():
            times[key].append(timed(lambda: s.infer(x), args.runs))
    print(f"{b.path} {args.precision}, {size}², batch 1; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; {args.rounds} rounds × {args.runs} runs, interleaved")
    print("| backend | options | p50 ms | p95 ms |\n|---|---|---|---|")
    for (name, opt), t in times.items():
        t = np.concatenate(t)
        print(f"| {name} | {dict(opt)} | {np.median(t):.2f} | {np.percentile(t, 95):.2f} |")


if __name__ == "__main__":
    main()
