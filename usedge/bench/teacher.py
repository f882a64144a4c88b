"""The baseline-compatible B4 teacher side by side with the student bundle, in the same run.

Three ways to run the teacher on one frame for all its tasks (random weights: latency does not depend on them):
``as shipped`` (torch fp32, one forward per task, as the official baseline code runs it), ``torch one pass``
(usedge's multi-task forward) and ``OpenVINO one pass`` (the same ONNX export path as the student). Ratios are
taken against the student's fastest batch-1 row of the same run. Needs the ``train`` extra (torch).
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from usedge.bench.harness import timed
from usedge.errors import require


def bench_teacher(size: int, runs: int = 5, warmup: int = 1, threads: int | None = None) -> list[dict]:
    """Rows {"teacher": how, "p50_ms", "p95_ms"} for baseline-b4 at ``size``² on every task."""
    torch = require("torch", "train", "benchmarking the B4 teacher")
    from usedge.export.onnx import export_onnx
    from usedge.models import build_model
    from usedge.models.presets import resolve_config
    from usedge.runtime.backends import available_backends, open_backend

    if threads:
        torch.set_num_threads(int(threads))
    config = replace(resolve_config("baseline-b4", "all"), input_size=int(size))
    torch.manual_seed(0)
    model = build_model(config).eval()
    x = torch.randn(1, 3, size, size)

    def per_task():
        with torch.inference_mode():
            for t in config.tasks:
                model.forward_task(x, t)

    def one_pass():
        with torch.inference_mode():
            model(x)

    rows = [_row(f"as shipped: torch fp32, one forward per task ({len(config.tasks)})", timed(per_task, runs, warmup)),
            _row("torch fp32, one pass", timed(one_pass, runs, warmup))]
    cpu = [b for b in available_backends() if b == "openvino"] or available_backends()[:1]
    if cpu:
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, config, Path(tmp) / "b4.onnx", dynamic_batch=False, simplify_graph=False).path
            backend = open_backend(cpu[0], path, threads=threads)
            arr = x.numpy()
            rows.append(_row(f"{cpu[0]} fp32, one pass", timed(lambda: backend.infer(arr), max(runs, 10), 3)))
    return rows


def _row(how: str, t: np.ndarray) -> dict:
    return {"teacher": how, "p50_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)), "runs": int(t.size)}


def side_by_side(teacher: list[dict], rows, size: int) -> str:
    """Markdown: the teacher rows, and each one's ratio to the student's fastest batch-1 row."""
    ok = [r for r in rows if r.status == "ok" and r.batch == 1 and r.p50_ms]
    lines = [f"## Side by side with the B4 teacher ({size}², batch 1, all tasks)", ""]
    if not ok:
        return "\n".join(lines + ["No student row ran; no ratios.", ""])
    best = min(ok, key=lambda r: r.p50_ms)
    lines += [f"Student reference: {best.backend} {best.precision}, p50 {best.p50_ms:.2f} ms.", "",
              "| teacher | p50 ms | p95 ms | teacher / student |", "|---|---|---|---|"]
    lines += [f"| {t['teacher']} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} | {t['p50_ms'] / best.p50_ms:.1f}× |"
              for t in teacher]
    return "\n".join(lines) + "\n"


__all__ = ["bench_teacher", "side_by_side"]
