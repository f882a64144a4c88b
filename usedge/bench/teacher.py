"""The baseline-compatible B4 teacher side by side with the student bundle, in the same run.

Three ways to run the teacher on one frame for all its tasks (random weights: latency does not depend on them):
``as shipped`` (torch fp32, one forward per task, as the official baseline code runs it), ``torch one pass``
(usedge's multi-task forward) and ``OpenVINO one pass`` (the same ONNX export path as the student). The
student's reference row (its fastest batch-1 backend × precision of the bench) is timed again the same way.

Every row runs in its own fresh Python process (``python -m usedge.bench.teacher ROW ...``), so no row is
timed next to thread pools or sessions that an earlier row left open: in one process, OpenVINO's threads
left by the student rows made the "as shipped" row 60× slower than in a clean process (101 s against 1.7 s
per frame at 128²). Ratios are taken between these isolated rows. Needs the ``train`` extra (torch).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from usedge._timing import timed
from usedge.errors import UsedgeError, require

#: The teacher rows, each timed in its own process.
TEACHER_ROWS = ("per-task", "one-pass", "cpu-one-pass")
#: Seconds one isolated row may take (B4 build + ONNX export + timing on 2 cores stays well below).
ROW_TIMEOUT_S = 1800


def bench_teacher(size: int, runs: int = 5, warmup: int = 1, threads: int | None = None) -> list[dict]:
    """Rows {"teacher": how, "p50_ms", "p95_ms", "runs", "pid"} for baseline-b4 at ``size``², all tasks,
    one fresh process per row (see the module docstring)."""
    require("torch", "train", "benchmarking the B4 teacher")
    rows = [_in_child(["teacher", row, "--size", str(size)], runs, warmup, threads) for row in TEACHER_ROWS]
    return [r for r in rows if r]


def bench_student(bundle: str | Path, backend: str, precision: str, runs: int = 20, warmup: int = 3,
                  threads: int | None = None) -> dict | None:
    """The student bundle's batch-1 row re-timed in a fresh process, as the teacher rows are."""
    return _in_child(["student", str(bundle), "--backend", backend, "--precision", precision], runs, warmup, threads)


def _in_child(args: list[str], runs: int, warmup: int, threads: int | None) -> dict | None:
    cmd = [sys.executable, "-m", "usedge.bench.teacher", *args, "--runs", str(runs), "--warmup", str(warmup)]
    if threads:
        cmd += ["--threads", str(threads)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=ROW_TIMEOUT_S, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        raise UsedgeError(f"benchmark row {' '.join(args)} took more than {ROW_TIMEOUT_S} s.",
                          fix="lower --teacher-runs or the bundle's input size") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines and "skipped" in json.loads(lines[-1]):
        return None
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise UsedgeError(f"benchmark row {' '.join(args)} failed in its process (exit {proc.returncode}):\n{tail}",
                          fix="run the command above by hand to see the whole error: " + " ".join(cmd))
    return json.loads(lines[-1])


def time_teacher_row(row: str, size: int, runs: int, warmup: int, threads: int | None) -> dict | None:
    """One teacher row in THIS process (what each child runs); None when no CPU runtime is installed."""
    torch = require("torch", "train", "benchmarking the B4 teacher")
    from usedge.models import build_model
    from usedge.models.presets import resolve_config

    if threads:
        torch.set_num_threads(int(threads))
    config = replace(resolve_config("baseline-b4", "all"), input_size=int(size))
    torch.manual_seed(0)
    model = build_model(config).eval()
    x = torch.randn(1, 3, size, size)
    if row == "per-task":
        def per_task():
            with torch.inference_mode():
                for t in config.tasks:
                    model.forward_task(x, t)
        how = f"as shipped: torch fp32, one forward per task ({len(config.tasks)})"
        return _row(how, timed(per_task, runs, warmup))
    if row == "one-pass":
        def one_pass():
            with torch.inference_mode():
                model(x)
        return _row("torch fp32, one pass", timed(one_pass, runs, warmup))
    return _cpu_one_pass(model, config, x.numpy(), runs, warmup, threads)


def _cpu_one_pass(model, config, arr: np.ndarray, runs: int, warmup: int, threads: int | None) -> dict | None:
    from usedge.backends import available_backends, open_backend
    from usedge.models.onnx import export_onnx

    cpu = [b for b in available_backends() if b == "openvino"] or available_backends()[:1]
    if not cpu:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, config, Path(tmp) / "b4.onnx", dynamic_batch=False, simplify_graph=False).path
        backend = open_backend(cpu[0], path, threads=threads)
        try:
            return _row(f"{cpu[0]} fp32, one pass", timed(lambda: backend.infer(arr), max(runs, 10), 3))
        finally:
            backend.close()


def time_student_row(bundle: str, backend: str, precision: str, runs: int, warmup: int,
                     threads: int | None) -> dict:
    """The bundle's backend on one preprocessed batch-1 frame (what the bench's p50 column times), in THIS
    process (what the student child runs)."""
    from usedge.bench.harness import bench_inputs, open_predictor

    with open_predictor(bundle, backend, precision, threads) as predictor:
        x, _ = bench_inputs(predictor, 1)
        return _row(f"student: {backend} {precision}", timed(lambda: predictor.backend.infer(x), runs, warmup))


def _row(how: str, t: np.ndarray) -> dict:
    return {"teacher": how, "p50_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)), "runs": int(t.size),
            "pid": os.getpid()}


def side_by_side(teacher: list[dict], rows, size: int, student: dict | None = None) -> str:
    """Markdown: the teacher rows, and each one's ratio to the student's fastest batch-1 row (``student``:
    that row re-timed in its own process, used as the reference when given)."""
    ok = [r for r in rows if r.status == "ok" and r.batch == 1 and r.p50_ms]
    lines = [f"## Side by side with the B4 teacher ({size}², batch 1, all tasks)", ""]
    if not ok:
        return "\n".join(lines + ["No student row ran; no ratios.", ""])
    best = min(ok, key=lambda r: r.p50_ms)
    ref = student["p50_ms"] if student else best.p50_ms
    how = (f"Student reference: {best.backend} {best.precision}, p50 {ref:.2f} ms"
           + (" (re-timed in its own process, as each teacher row)." if student else "."))
    lines += [how, "", "| teacher | p50 ms | p95 ms | teacher / student |", "|---|---|---|---|"]
    lines += [f"| {t['teacher']} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} | {t['p50_ms'] / ref:.1f}× |"
              for t in teacher]
    return "\n".join(lines) + "\n"


def _main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m usedge.bench.teacher",
                                description="Time one row of `usedge bench --teacher` in this fresh process; "
                                            "prints one JSON line.")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("teacher")
    t.add_argument("row", choices=TEACHER_ROWS)
    t.add_argument("--size", type=int, required=True)
    s = sub.add_parser("student")
    s.add_argument("bundle")
    s.add_argument("--backend", required=True)
    s.add_argument("--precision", required=True)
    for q in (t, s):
        q.add_argument("--runs", type=int, default=5)
        q.add_argument("--warmup", type=int, default=1)
        q.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.what == "teacher":
        row = time_teacher_row(a.row, a.size, a.runs, a.warmup, a.threads)
    else:
        row = time_student_row(a.bundle, a.backend, a.precision, a.runs, a.warmup, a.threads)
    print(json.dumps(row or {"skipped": "no CPU runtime installed (usedge[cpu])"}), flush=True)


if __name__ == "__main__":
    _main()


__all__ = ["TEACHER_ROWS", "bench_student", "bench_teacher", "side_by_side", "time_student_row",
           "time_teacher_row"]
