"""Phantom generation speed on ONE core: frames/s overall and per task (generate_sample only, no file I/O).

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_phantom.py [--size 256] [--n 40] [--tasks all] [--json out.json]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def main() -> None:
    from usedge.data.phantom import PhantomConfig, generate_sample
    from usedge.data.phantom.generator import sample_rng
    from usedge.data.phantom.physics import PRESETS, get_geometry, variants
    from usedge.tasks import parse_tasks

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--n", type=int, default=40, help="samples per task (after 2 warm-up samples)")
    ap.add_argument("--tasks", default="all")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    config = PhantomConfig(size=args.size)
    start = time.perf_counter()      # one-time cost per process: the cached remap tables of every geometry
    n_geom = sum(get_geometry(p, args.size, v) is not None for p in PRESETS for v in range(variants(p)))
    warm_s = time.perf_counter() - start
    rows = []
    total_t, total_n = 0.0, 0
    for spec in parse_tasks(args.tasks):
        for i in range(2):
            generate_sample(spec.id, sample_rng(1, "train", spec.id, i), config)
        rngs = [sample_rng(0, "train", spec.id, i) for i in range(args.n)]
        start = time.perf_counter()
        for rng in rngs:
            generate_sample(spec.id, rng, config)
        dt = time.perf_counter() - start
        rows.append({"task_id": spec.id, "ms_per_frame": round(dt / args.n * 1e3, 3),
                     "frames_per_s": round(args.n / dt, 1)})
        total_t += dt
        total_n += args.n
    overall = total_n / total_t
    width = max(len(r["task_id"]) for r in rows)
    print(f"{'task':<{width}}  ms/frame  frames/s")
    for r in sorted(rows, key=lambda r: -r["ms_per_frame"]):
        print(f"{r['task_id']:<{width}}  {r['ms_per_frame']:8.2f}  {r['frames_per_s']:8.1f}")
    slowest = max(rows, key=lambda r: r["ms_per_frame"])
    print(f"\noverall: {overall:.1f} frames/s at {args.size}x{args.size} on 1 thread "
          f"(slowest: {slowest['task_id']} {slowest['frames_per_s']:.1f} frames/s); "
          f"one-time remap tables: {n_geom} geometries in {warm_s:.2f} s")
    if args.json:
        result = {"size": args.size, "n_per_task": args.n, "threads": 1, "frames_per_s": round(overall, 1),
                  "geometry_warmup_s": round(warm_s, 3), "geometries": n_geom,
                  "slowest": slowest, "tasks": rows, "python": platform.python_version(),
                  "numpy": np.__version__, "opencv": cv2.__version__, "machine": platform.machine(),
                  "processor": platform.processor() or platform.machine()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
