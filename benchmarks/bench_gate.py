"""What the frame gate, temperature scaling and mask confidences cost per frame: the packaged default on four
640x480 phantom frames, predict + to_json, with them (``usedge.load()``) and without (``gate=False,
calibrate=False``), alternating twice in one process (each Predictor closed before the next opens).

    python benchmarks/bench_gate.py
"""
from __future__ import annotations

import time

import cv2
import numpy as np


def main() -> None:
    import usedge
    from usedge._cpu import cpu_isa
    from usedge.data.phantom import generate_sample, sample_rng

    images = [generate_sample(t, sample_rng(9, "val", t, 0)).image
              for t in ("fetal_head", "thyroid_nodule", "cardiac_multi", "FUGC")]
    frames = [cv2.resize(i, (640, 480)) for i in images]
    rows = {}
    for name, options in (("without", {"gate": False, "calibrate": False}), ("with", {}),
                          ("without ", {"gate": False, "calibrate": False}), ("with ", {})):
        with usedge.load(**options) as p:
            for f in frames * 5:
                p(f).to_json(contours=False)
            times, gate = [], []
            for _ in range(60):
                for f in frames:
                    t0 = time.perf_counter()
                    r = p(f)
                    r.to_json(contours=False)
                    times.append(time.perf_counter() - t0)
                    gate.append(r.timings_ms.get("gate", 0.0))
        rows[name] = float(np.median(times) * 1e3)
        print(f"{name.strip():8s} {rows[name]:.2f} ms per frame (predict + to_json), gate stage "
              f"{np.median(gate):.3f} ms")
    ratio = (rows["with"] + rows["with "]) / (rows["without"] + rows["without "])
    print(f"with / without: {ratio:.3f}x  ({cpu_isa().label}, {time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
