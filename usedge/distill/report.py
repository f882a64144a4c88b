"""The distillation report: teachers vs distilled student vs labels-only student, per task.

For every task: the primary metric (Dice, accuracy, IoU; MRE in pixels, lower is better) of each model,
and the student's retention of its teacher's score in % (for MRE: teacher MRE / student MRE, so 97 % means
"3 % worse"). Per model: parameters and CPU latency (ONNX on OpenVINO, 256², batch 1). Written as
Markdown, JSON and a bar-chart PNG.
"""
from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usedge._io import atomic_write_bytes, atomic_write_json, atomic_write_text
from usedge.metrics.evaluator import PRIMARY_METRIC
from usedge.tasks import TaskKind, get_task


@dataclass
class ModelEntry:
    """One evaluated model: its role ('teacher', 'distilled', 'labels-only'), results per task, size, speed."""

    name: str
    role: str
    results: dict[str, dict]
    parameters: int
    latency_ms: float = float("nan")
    runtime: str = ""
    tasks: list[str] = field(default_factory=list)


def primary(task_id: str, result: dict) -> float:
    return float(result.get(PRIMARY_METRIC[get_task(task_id).kind], float("nan")))


def retention(task_id: str, student: float, teacher: float) -> float:
    """Student score as % of the teacher's (inverted for MRE, where lower is better)."""
    if not (math.isfinite(student) and math.isfinite(teacher)):
        return float("nan")
    if get_task(task_id).kind is TaskKind.REGRESSION:
        return 100.0 * teacher / student if student > 0 else float("nan")
    return 100.0 * student / teacher if teacher > 0 else float("nan")


def measure_model(model, config, size: int = 256, runs: int = 50) -> tuple[float, str]:
    """CPU latency (ms) of the model's one-pass ONNX graph at size², and the runtime used."""
    from usedge.backends.cpu_latency import cpu_latency_ms
    from usedge.models.onnx import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, config, Path(tmp) / "m.onnx", dynamic_batch=False, input_size=size,
                           simplify_graph=False).path
        return cpu_latency_ms(path, size=size, runs=runs)


def build_rows(entries: Sequence[ModelEntry], owner: dict[str, str]) -> list[dict]:
    """One row per task: score of each model, retention of each student vs the task's teacher."""
    teachers = {e.name: e for e in entries if e.role == "teacher"}
    students = [e for e in entries if e.role != "teacher"]
    rows = []
    for task in sorted(owner, key=lambda t: (get_task(t).kind.value, t)):
        teacher = teachers.get(owner[task])
        t_score = primary(task, teacher.results.get(task, {})) if teacher else float("nan")
        row = {"task": task, "kind": get_task(task).kind.value, "metric": PRIMARY_METRIC[get_task(task).kind],
               "teacher": owner[task], "teacher_score": t_score}
        for s in students:
            score = primary(task, s.results.get(task, {}))
            row[f"{s.role}_score"] = score
            row[f"{s.role}_retention"] = retention(task, score, t_score)
        rows.append(row)
    return rows


def family_summary(rows: list[dict], roles: Sequence[str]) -> list[dict]:
    """Mean score and the worst / mean retention per task kind."""
    out = []
    for kind in ("segmentation", "classification", "detection", "regression"):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        item = {"kind": kind, "tasks": len(sel), "teacher_score": float(np.nanmean([r["teacher_score"] for r in sel]))}
        for role in roles:
            item[f"{role}_score"] = float(np.nanmean([r[f"{role}_score"] for r in sel]))
            ret = [r[f"{role}_retention"] for r in sel]
            item[f"{role}_retention_mean"] = float(np.nanmean(ret))
            item[f"{role}_retention_min"] = float(np.nanmin(ret))
        out.append(item)
    return out


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def to_markdown(entries: Sequence[ModelEntry], rows: list[dict], families: list[dict]) -> str:
    roles = [e.role for e in entries if e.role != "teacher"]
    lines = ["## Models", "", "| model | role | params (M) | CPU latency ms (256², batch 1) | runtime |", "|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e.name} | {e.role} | {e.parameters / 1e6:.2f} | {_fmt(e.latency_ms, 2)} | {e.runtime or 'n/a'} |")
    teacher = next((e for e in entries if e.role == "teacher"), None)
    for e in entries:
        if e.role != "teacher" and teacher:
            lines.append(f"\n{e.name}: {teacher.parameters / max(e.parameters, 1):.1f}× fewer parameters, "
                         f"{teacher.latency_ms / e.latency_ms:.1f}× lower latency than {teacher.name}."
                         if math.isfinite(e.latency_ms) and math.isfinite(teacher.latency_ms) else "")
    lines += ["", "## Per task kind", "", "| kind | tasks | teacher | " +
              " | ".join(f"{r} | {r} retention mean % | {r} retention min %" for r in roles) + " |",
              "|---|---|---|" + "---|---|---|" * len(roles)]
    for f in families:
        lines.append(f"| {f['kind']} | {f['tasks']} | {_fmt(f['teacher_score'])} | " + " | ".join(
            f"{_fmt(f[f'{r}_score'])} | {_fmt(f[f'{r}_retention_mean'], 1)} | {_fmt(f[f'{r}_retention_min'], 1)}"
            for r in roles) + " |")
    lines += ["", "## Per task (MRE in pixels, lower is better; retention = student / teacher, inverted for MRE)", "",
              "| task | metric | teacher | teacher score | " + " | ".join(f"{r} | {r} retention %" for r in roles) + " |",
              "|---|---|---|---|" + "---|---|" * len(roles)]
    for r in rows:
        lines.append(f"| {r['task']} | {r['metric']} | {r['teacher']} | {_fmt(r['teacher_score'])} | " + " | ".join(
            f"{_fmt(r[f'{role}_score'])} | {_fmt(r[f'{role}_retention'], 1)}" for role in roles) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], roles: Sequence[str], path: Path) -> None:
    """Bar chart of retention vs teacher per task (one bar per student), 97 % line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(rows)), 4))
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(roles))
    for i, role in enumerate(roles):
        ax.bar(x + i * width, [r[f"{role}_retention"] for r in rows], width, label=role)
    ax.axhline(97, color="k", lw=0.8, ls="--", label="97 %")
    ax.set_xticks(x + width * (len(roles) - 1) / 2, [r["task"] for r in rows], rotation=70, ha="right", fontsize=8)
    ax.set_ylabel("% of teacher score")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_report(out: Path, entries: Sequence[ModelEntry], owner: dict[str, str], data: str = "") -> dict:
    """Write distill_report.{md,json,png} under ``out``; return the JSON payload. ``data`` names the
    labelled split every model was scored on."""
    rows = build_rows(entries, owner)
    roles = [e.role for e in entries if e.role != "teacher"]
    families = family_summary(rows, roles)
    payload = {"models": [{k: v for k, v in e.__dict__.items() if k != "results"} for e in entries],
               "tasks": rows, "families": families, "data": data}
    atomic_write_json(out / "distill_report.json", payload)
    scored = f"Scored on {data}.\n\n" if data else ""
    atomic_write_text(out / "distill_report.md", "# Distillation report\n\n" + scored + to_markdown(entries, rows, families))
    plot(rows, roles, out / "distill_report.png")
    return payload
