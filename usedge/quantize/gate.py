"""The per-task accuracy gate: INT8 must keep the float model's score on every task.

Defaults: no task loses more than 1 point (Dice / accuracy / IoU × 100) and no MRE grows by more than 5 %.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from usedge.tasks import TaskKind, get_task

PRIMARY = {TaskKind.SEGMENTATION: "dice", TaskKind.CLASSIFICATION: "accuracy", TaskKind.DETECTION: "iou",
           TaskKind.REGRESSION: "mre"}


@dataclass(frozen=True)
class GateConfig:
    max_drop_points: float = 1.0       # Dice / accuracy / IoU, in points (× 100)
    max_mre_increase: float = 0.05     # relative


@dataclass(frozen=True)
class GateRow:
    task: str
    metric: str
    fp32: float
    int8: float
    change: str          # "-0.42 pt" or "+1.3 %"
    passed: bool


def judge(task: str, fp32: dict, int8: dict, gate: GateConfig) -> GateRow:
    metric = PRIMARY[get_task(task).kind]
    a, b = float(fp32.get(metric, math.nan)), float(int8.get(metric, math.nan))
    if not (math.isfinite(a) and math.isfinite(b)):
        return GateRow(task, metric, a, b, "n/a", False)
    if metric == "mre":
        rel = (b - a) / a if a > 0 else (0.0 if b == 0 else math.inf)
        return GateRow(task, metric, a, b, f"{100 * rel:+.1f} %", rel <= gate.max_mre_increase)
    drop = 100 * (a - b)
    return GateRow(task, metric, a, b, f"{-drop:+.2f} pt", drop <= gate.max_drop_points)


def apply_gate(fp32: dict[str, dict], int8: dict[str, dict], gate: GateConfig = GateConfig()) -> list[GateRow]:
    """One row per task present in the float results."""
    return [judge(t, fp32[t], int8.get(t, {}), gate) for t in fp32]


def failing(rows: list[GateRow]) -> list[str]:
    return [r.task for r in rows if not r.passed]


def to_markdown(rows: list[GateRow], gate: GateConfig) -> str:
    lines = [f"Gate: no task loses more than {gate.max_drop_points:g} point (Dice/accuracy/IoU × 100); "
             f"MRE grows by at most {100 * gate.max_mre_increase:g} %.", "",
             "| task | metric | fp32 | int8 | change | gate |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.task} | {r.metric} | {r.fp32:.4f} | {r.int8:.4f} | {r.change} | {'pass' if r.passed else 'FAIL'} |")
    return "\n".join(lines) + "\n"
