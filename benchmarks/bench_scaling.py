"""Scaling curves: latency (bare backend and full Predictor) vs input size, batch and tasks decoded per frame,
on the CPU backends, in one run (the harness behind ``usedge bench --scaling``).

Usage:
    python benchmarks/bench_scaling.py [--bundle out/bundle | --model student-s] [--threads 2] [--runs 50]
        [--sizes 128,256,384,512] [--batches 1,2,4,8,16] [--tasks 1,3,9,27] [--size 256] [--out runs/scaling]
With --bundle the bundle's torch/ weights are re-exported at each size; with --model a fresh preset (random
weights: latency does not depend on them). Writes scaling.md / .csv / .json / .png to --out.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def main() -> None:
    from usedge.bench.scaling import BATCHES, SIZES, TASK_COUNTS, run_scaling, scaling_markdown, write_scaling_reports

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, help="bundle whose torch/ weights are re-exported (default: out/bundle)")
    ap.add_argument("--model", help="a preset with random weights instead (e.g. student-s)")
    ap.add_argument("--backends", default="all", help="CPU backends: all installed, or a comma list")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--tasks", default=",".join(map(str, TASK_COUNTS)))
    ap.add_argument("--size", type=int, help="input size of the batch and task curves (default: the model's)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("runs/scaling"))
    args = ap.parse_args()
    bundle = args.bundle or (Path("out/bundle") if args.model is None else None)
    result = run_scaling(bundle, model=args.model, backends=args.backends, sizes=args.sizes, batches=args.batches,
                         task_counts=args.tasks, size=args.size, threads=args.threads, runs=args.runs,
                         warmup=args.warmup, rounds=args.rounds,
                         command=shlex.join(["python", "benchmarks/bench_scaling.py", *sys.argv[1:]]))
    print(scaling_markdown(result))
    print("wrote " + ", ".join(str(p) for p in write_scaling_reports(result, args.out).values()))


if __name__ == "__main__":
    main()
