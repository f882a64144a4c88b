"""What measuring costs per frame (issue 28 target: <= 10 % of the Predictor's per-frame time at 640x480).

Side by side in one process, rows interleaved over rounds: the packaged default on 640x480 frames (phantom
images of each measured task, upscaled) with every task decoded, (a) the Predictor alone with its masks decoded
(what the stream does for every frame), (b) the same plus ``usedge.measure.measure`` of every measurement the
tasks allow, and (c) ``measure`` alone: its first call on the result (what a stream pays: it also decodes what
the masks cache) and two more calls in random order, with the default robust and with the plain ellipse fit (HC,
AC), which differ only in the fit. Median per-frame milliseconds over rounds.

The frames cycle over every measured task's images, so most of them are of another anatomy than the chosen
tasks' (what a stream of all tasks sees); with the tasks' view classifier among ``--tasks`` their measurements
are withheld there early (usedge.measure.views). ``--own-frames``: only the chosen tasks' own images (an exam).

    python benchmarks/bench_measure.py --rounds 5 --frames 40
    python benchmarks/bench_measure.py --tasks fetal_head,fetal_abdomen_multi,fetal_femur,fetal_plane_cls --own-frames
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def frames(n: int, of: list[str] | None = None) -> list[np.ndarray]:
    """n 640x480 frames cycling over the images of every measured task (or of the measured tasks among ``of``)."""
    from usedge.data.phantom import generate_sample, sample_rng
    from usedge.measure.agreement import measured_tasks

    tasks = sorted(measured_tasks() if of is None else measured_tasks() & set(of))
    out = []
    for i in range(n):
        s = generate_sample(tasks[i % len(tasks)], sample_rng(9000, "val", tasks[i % len(tasks)], i))
        out.append(cv2.resize(s.image, (640, 480), interpolation=cv2.INTER_LINEAR))
    return out


def main(argv: list[str] | None = None) -> int:
    import usedge
    from usedge._cpu import native_isa
    from usedge.measure import measure

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--tasks", default="all")
    ap.add_argument("--own-frames", action="store_true",
                    help="frames of the chosen tasks' own images only (an exam), not of every measured task")
    args = ap.parse_args(argv)
    images = frames(args.frames, args.tasks.split(",") if args.own_frames and args.tasks != "all" else None)
    predictor = usedge.load(tasks=args.tasks)
    for im in images[:5]:
        measure(predictor(im).decode_all(), 0.3)
    rows: dict[str, list[float]] = {"predictor": [], "predictor + measure": [], "measure alone": [],
                                    "measure again (robust fit)": [], "measure again (plain fit)": []}
    rng = np.random.default_rng(0)
    for _ in range(args.rounds):
        t = [0.0, 0.0, 0.0, 0.0, 0.0]
        for im in images:
            t0 = time.perf_counter()
            predictor(im).decode_all()
            t1 = time.perf_counter()
            r = predictor(im).decode_all()
            t2 = time.perf_counter()
            measure(r, 0.3)
            t3 = time.perf_counter()
            t[0] += t1 - t0
            t[1] += t3 - t1
            t[2] += t3 - t2
            for n in rng.permutation(2):                  # the two fits in random order
                t4 = time.perf_counter()
                measure(r, 0.3, ellipse_fit=("robust", "plain")[n])
                t[3 + n] += time.perf_counter() - t4
        for k, v in zip(rows, t):
            rows[k].append(v / len(images) * 1e3)
    med = {k: float(np.median(v)) for k, v in rows.items()}
    print(f"packaged default ({predictor.choice.backend} {predictor.choice.precision}), tasks {args.tasks}, "
          f"640x480, {args.frames} frames ({'own tasks' if args.own_frames else 'every measured task'}) x "
          f"{args.rounds} rounds; CPU: {native_isa().label}\n")
    print("| row | per-frame ms (median of rounds) | per round |")
    print("|---|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {med[k]:.2f} | {min(v):.2f}-{max(v):.2f} |")
    ratio = [b / a for a, b in zip(rows["predictor"], rows["predictor + measure"])]
    print(f"\nmeasuring adds {100 * (med['predictor + measure'] / med['predictor'] - 1):.1f} % "
          f"(per round {100 * (min(ratio) - 1):.1f} to {100 * (max(ratio) - 1):.1f} %)")
    predictor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
