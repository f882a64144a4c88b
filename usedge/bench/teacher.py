"""The teachers side by side with the student bundle, in the same run.

Teachers, each at its own input size (the official 256² for ``baseline-b4``): the challenge's EfficientNet-B4
+ FPN three ways — ``as shipped`` (torch fp32, one forward per task, as the official baseline code runs it),
``torch one pass`` (usedge's multi-task forward) and ``OpenVINO one pass`` (the same ONNX export path as the
student) — and the ViT teacher (``teacher-vit-s``) in one pass on torch and OpenVINO. Weights are random
unless a trained checkpoint is given (``--teacher-checkpoint``): latency does not depend on them, and the
report says which were used. The student's reference row (its fastest batch-1 backend × precision of the
bench) is timed again the same way, and so is its fp32 OpenVINO row (the same runtime as the teachers').

Every row runs in its own fresh Python process (``python -m usedge.bench.teacher ...``), so no row is
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

#: The teacher rows of each teacher preset, each timed in its own process.
TEACHER_ROWS = {"baseline-b4": ("per-task", "one-pass", "cpu-one-pass"), "teacher-vit-s": ("one-pass", "cpu-one-pass")}
ROWS = ("per-task", "one-pass", "cpu-one-pass")
#: Seconds one isolated row may take (B4 build + ONNX export + timing on 2 cores stays well below).
ROW_TIMEOUT_S = 1800


def bench_teacher(size: int | None = None, runs: int = 5, warmup: int = 1, threads: int | None = None,
                  checkpoints: dict[str, str] | None = None, teachers: tuple[str, ...] = tuple(TEACHER_ROWS),
                  rows: tuple[str, ...] = ROWS) -> list[dict]:
    """Rows {"teacher": how, "model", "size", "params_m", "weights", "p50_ms", "p95_ms", "runs", "pid"} for
    each teacher preset at ``size``² (None: its own input size), all tasks, one fresh process per row (see
    the module docstring). ``checkpoints``: preset -> trained checkpoint whose weights the rows load; ``rows``:
    which of each teacher's rows to time."""
    require("torch", "train", "benchmarking the teachers")
    out = []
    for model in teachers:
        extra = (["--size", str(size)] if size else []) + (["--checkpoint", checkpoints[model]]
                                                           if checkpoints and model in checkpoints else [])
        out += [_in_child(["teacher", model, row, *extra], runs, warmup, threads) for row in TEACHER_ROWS[model]
                if row in rows]
    return [r for r in out if r]


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


def _teacher_model(model: str, size: int | None, checkpoint: str | None):
    torch = require("torch", "train", "benchmarking the teachers")
    from usedge.models import build_model
    from usedge.models.presets import resolve_config

    if checkpoint:
        from usedge.models.checkpoint import load_checkpoint

        net, config, _ = load_checkpoint(checkpoint)
        return net.eval(), config, str(checkpoint)
    config = resolve_config(model, "all")
    config = replace(config, input_size=int(size)) if size else config
    torch.manual_seed(0)
    return build_model(config).eval(), config, "random"


def time_teacher_row(model: str, row: str, size: int | None, runs: int, warmup: int, threads: int | None,
                     checkpoint: str | None = None) -> dict | None:
    """One teacher row in THIS process (what each child runs); None when no CPU runtime is installed."""
    torch = require("torch", "train", "benchmarking the teachers")
    if threads:
        torch.set_num_threads(int(threads))
    net, config, weights = _teacher_model(model, size, checkpoint)
    size = config.input_size
    facts = {"model": config.name, "size": size, "weights": weights,
             "params_m": sum(p.numel() for p in net.parameters()) / 1e6}
    x = torch.randn(1, 3, size, size)
    if row == "per-task":
        if not hasattr(net, "forward_task"):
            raise UsedgeError(f"{model} has no per-task forward (only the baseline B4 does).", fix="drop this row")

        def per_task():
            with torch.inference_mode():
                for t in config.tasks:
                    net.forward_task(x, t)
        how = f"{config.name} as shipped: torch fp32, one forward per task ({len(config.tasks)})"
        return {**_row(how, timed(per_task, runs, warmup)), **facts}
    if row == "one-pass":
        def one_pass():
            with torch.inference_mode():
                net(x)
        return {**_row(f"{config.name}: torch fp32, one pass", timed(one_pass, runs, warmup)), **facts}
    out = _cpu_one_pass(net, config, x.numpy(), runs, warmup, threads)
    return {**out, **facts} if out else None


def _cpu_one_pass(model, config, arr: np.ndarray, runs: int, warmup: int, threads: int | None) -> dict | None:
    from usedge.backends import available_backends, open_backend
    from usedge.models.onnx import export_onnx

    cpu = [b for b in available_backends() if b == "openvino"] or available_backends()[:1]
    if not cpu:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, config, Path(tmp) / "teacher.onnx", dynamic_batch=False, simplify_graph=False).path
        backend = open_backend(cpu[0], path, threads=threads)
        try:
            return _row(f"{config.name}: {cpu[0]} fp32, one pass", timed(lambda: backend.infer(arr), max(runs, 10), 3))
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


def side_by_side(teacher: list[dict], rows, size: int, student: dict | None = None,
                 same_runtime: dict | None = None) -> str:
    """Markdown: the teacher rows, and each one's ratio to the student's fastest batch-1 row (``student``:
    that row re-timed in its own process, used as the reference when given) and, when ``same_runtime`` is
    given (the student's fp32 row on the teachers' CPU runtime, re-timed), to that row too."""
    ok = [r for r in rows if r.status == "ok" and r.batch == 1 and r.p50_ms]
    lines = ["## Side by side with the teachers (batch 1, all tasks, each model at its own input size)", ""]
    if not ok:
        return "\n".join(lines + ["No student row ran; no ratios.", ""])
    best = min(ok, key=lambda r: r.p50_ms)
    ref = student["p50_ms"] if student else best.p50_ms
    how = (f"Student ({size}²) reference: {best.backend} {best.precision}, p50 {ref:.2f} ms"
           + (" (re-timed in its own process, as each teacher row)." if student else "."))
    if same_runtime:
        how += f" Same runtime as the teachers: {same_runtime['teacher'].removeprefix('student: ')}, p50 " \
               f"{same_runtime['p50_ms']:.2f} ms."
    head = "| teacher | input | params (M) | weights | p50 ms | p95 ms | teacher / student |"
    cols = "|---|---|---|---|---|---|---|"
    if same_runtime:
        head, cols = head + " teacher / student fp32 |", cols + "---|"
    lines += [how, "", head, cols]
    for t in teacher:
        line = (f"| {t['teacher']} | {t.get('size', size)}² | {t.get('params_m', float('nan')):.1f} | "
                f"{t.get('weights', 'random')} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} | {t['p50_ms'] / ref:.1f}× |")
        if same_runtime:
            line += f" {t['p50_ms'] / same_runtime['p50_ms']:.1f}× |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m usedge.bench.teacher",
                                description="Time one row of `usedge bench --teacher` in this fresh process; "
                                            "prints one JSON line.")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("teacher")
    t.add_argument("model", help="a teacher preset (baseline-b4, teacher-vit-s)")
    t.add_argument("row", choices=ROWS)
    t.add_argument("--size", type=int, default=None, help="input side (default: the model's own)")
    t.add_argument("--checkpoint", default=None, help="trained weights (default: random)")
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
        row = time_teacher_row(a.model, a.row, a.size, a.runs, a.warmup, a.threads, a.checkpoint)
    else:
        row = time_student_row(a.bundle, a.backend, a.precision, a.runs, a.warmup, a.threads)
    print(json.dumps(row or {"skipped": "no CPU runtime installed (usedge[cpu])"}), flush=True)


if __name__ == "__main__":
    _main()


__all__ = ["TEACHER_ROWS", "bench_student", "bench_teacher", "side_by_side", "time_student_row",
           "time_teacher_row"]
