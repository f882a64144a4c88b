"""Overlay drawing cost (usedge.stream.draw): phantom frames of each task family with the bundle's own
predictions, drawn at display sizes 256 / 512 / 1024 for 1 task and all tasks. The stream's VideoSink /
WindowSink and the demo pay this per frame.

    python benchmarks/bench_overlay.py [--bundle out/bundle] [--runs 30] [--json out.json]

To compare two versions side by side, run it twice in one session with PYTHONPATH pointing at the other
checkout (see benchmarks/RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

FRAMES = ("fetal_head", "breast_lesion", "thyroid_nodule_det", "fetal_femur")


def scaled(result, k: int):
    """``result`` on a frame enlarged k times (nearest for masks; boxes and points scaled)."""
    from dataclasses import replace

    from usedge.runtime.results import DetectionResult, LandmarkResult, SegmentationResult

    tasks = {}
    for name, r in result.tasks.items():
        if isinstance(r, SegmentationResult):
            r = replace(r, mask=cv2.resize(r.mask, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST))
        elif isinstance(r, DetectionResult):
            r = replace(r, box=np.asarray(r.box) * k)
        elif isinstance(r, LandmarkResult):
            r = replace(r, points=np.asarray(r.points) * k)
        tasks[name] = r
    return replace(result, width=result.width * k, height=result.height * k, tasks=tasks)


def main() -> None:
    import usedge
    from usedge.data.phantom import generate_sample, sample_rng
    from usedge.data.phantom.generator import PhantomConfig
    from usedge.stream.overlay import draw

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="out/bundle")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    with usedge.load(args.bundle) as p:
        frames = [generate_sample(t, sample_rng(7, "val", t, 0), PhantomConfig(size=256)).image for t in FRAMES]
        for k, side in ((1, 256), (2, 512), (4, 1024)):
            for label, tasks in (("1 task", [p.model_tasks[-1]]), (f"{len(p.model_tasks)} tasks", None)):
                cases = []
                for f in frames:
                    r = p.predict(f, tasks=tasks)
                    cases.append((cv2.resize(f, None, fx=k, fy=k), scaled(r, k)))
                for img, r in cases:  # warm-up
                    draw(img, r)
                t = []
                for _ in range(args.runs):
                    for img, r in cases:
                        s = time.perf_counter()
                        draw(img, r)
                        t.append((time.perf_counter() - s) * 1e3)
                rows.append({"side": side, "tasks": label, "p50_ms": round(float(np.median(t)), 2),
                             "p95_ms": round(float(np.percentile(t, 95)), 2)})
    print(f"usedge {usedge.__file__}")
    print("| display side | tasks drawn | p50 ms | p95 ms |\n|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['side']} | {r['tasks']} | {r['p50_ms']} | {r['p95_ms']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
