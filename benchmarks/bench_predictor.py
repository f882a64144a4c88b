"""Predictor overhead: bare backend inference vs the full Predictor (validate, crop, resize, normalise, infer,
decode to original pixels, typed results), per backend and precision, side by side in one run.

Target (issue 6): Predictor overhead <= 30 % over bare inference at 256², batch 1.

Usage:
    python benchmarks/bench_predictor.py [--bundle B] [--runs 300] [--threads 2] [--json out.json]
Without --bundle it exports an untrained student-s at 256² (fp32; latency does not depend on the weights) to
~/.cache/usedge/bench/student-s-256.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache" / "usedge" / "bench"


def default_bundle() -> Path:
    out = CACHE / "student-s-256"
    if (out / "metadata.json").is_file():
        return out
    import torch

    from usedge.data.phantom import generate_dataset
    from usedge.export.pipeline import ExportConfig, run_export
    from usedge.models import build_model
    from usedge.models.checkpoint import save_checkpoint
    from usedge.models.presets import resolve_config

    config = resolve_config("student-s", "all")
    torch.manual_seed(0)
    ckpt = save_checkpoint(CACHE / "student-s-256-ckpt", build_model(config).eval(), config)
    data = CACHE / "phantom-tiny"
    if not (data / "phantom.json").is_file():
        generate_dataset(data, per_task=2, seed=0, size=256, progress=False)
    run_export(ExportConfig(model=str(ckpt), data=str(data), out=str(out), int8=False, latency_runs=5))
    return out


def frames(size: int) -> dict[str, np.ndarray]:
    """A model-sized grey frame, and a 640×480 screen grab whose scan region is 512×400."""
    rng = np.random.default_rng(0)
    return {f"{size}x{size} grey": rng.integers(0, 255, (size, size), np.uint8),
            "640x480 BGR, 512x400 region": rng.integers(0, 255, (480, 640, 3), np.uint8)}


def timed(fn, runs: int) -> np.ndarray:
    """Milliseconds of ``runs`` calls after 20 warm-up calls (usedge.bench's timer)."""
    from usedge._timing import timed as bench_timed

    return bench_timed(fn, runs, warmup=20)


def bench(bundle: Path, runs: int, threads: int) -> list[dict]:
    import usedge
    from usedge.backends import available_backends
    from usedge.bundle import load_bundle
    from usedge.data.preprocess import preprocess

    b = load_bundle(bundle)
    rows = []
    for backend in available_backends():
        for precision in b.precisions:
            p = usedge.load(b, backend=backend, precision=precision, threads=threads)
            size = p.spec.size
            for label, frame in frames(size).items():
                region = (64, 40, 576, 440) if frame.shape[0] != size else None
                x = preprocess(frame if region is None else frame[40:440, 64:576], p.spec)[None]
                bare = timed(lambda: p.backend.infer(x), runs)
                full = timed(lambda: p(frame, region=region), runs)
                parts = p(frame, region=region).timings_ms
                rows.append({"backend": backend, "precision": precision, "frame": label, "size": size,
                             "bare_p50_ms": float(np.median(bare)), "predictor_p50_ms": float(np.median(full)),
                             "predictor_p99_ms": float(np.percentile(full, 99)),
                             "overhead_pct": 100 * (np.median(full) / np.median(bare) - 1),
                             "pre_ms": parts["preprocess"], "post_ms": parts["postprocess"]})
                print(_row(rows[-1]), flush=True)
            p.close()
    return rows


def _row(r: dict) -> str:
    return (f"| {r['backend']} | {r['precision']} | {r['frame']} | {r['bare_p50_ms']:.2f} | "
            f"{r['predictor_p50_ms']:.2f} | {r['predictor_p99_ms']:.2f} | {r['overhead_pct']:+.1f} % | "
            f"{r['pre_ms']:.2f} | {r['post_ms']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    bundle = args.bundle or default_bundle()
    print(f"bundle {bundle}; {platform.processor() or platform.machine()}, {args.threads} threads, batch 1, "
          f"{args.runs} runs after 20 warm-up")
    print("| backend | precision | frame | bare p50 ms | Predictor p50 ms | Predictor p99 ms | overhead | "
          "pre ms | post ms |\n|---|---|---|---|---|---|---|---|---|")
    rows = bench(bundle, args.runs, args.threads)
    if args.json:
        args.json.write_text(json.dumps({"bundle": str(bundle), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
