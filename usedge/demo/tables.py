"""The tables the demo page shows: per-task results (with mm where the scan region gives a scale), latency per
stage, a video's summary. No Gradio, no torch."""
from __future__ import annotations

from typing import Any

import numpy as np

from usedge.runtime.results import (
    ClassificationResult,
    DetectionResult,
    FrameResult,
    LandmarkResult,
    SegmentationResult,
)
from usedge.tasks import get_task


# -- tables ------------------------------------------------------------------------------------------------
def _fmt_pt(p: np.ndarray) -> str:
    return f"({p[0]:.0f}, {p[1]:.0f})"


def result_rows(result: FrameResult, mm_per_px: float | None = None) -> list[list[Any]]:
    """One row per task: task, organ, kind, result, score, detail (see :data:`RESULT_COLUMNS`)."""
    rows = []
    for name, r in result.tasks.items():
        spec = get_task(name)
        kind = spec.kind.value
        if isinstance(r, ClassificationResult):
            top = np.argsort(r.probs)[::-1][:3]
            rows.append([name, spec.organ, kind, r.label, round(r.score, 3),
                         "top-3: " + ", ".join(f"{r.class_names[i]} {r.probs[i]:.2f}" for i in top)])
        elif isinstance(r, DetectionResult):
            x0, y0, x1, y1 = (float(v) for v in r.box)
            rows.append([name, spec.organ, kind, f"box ({x0:.0f}, {y0:.0f}) – ({x1:.0f}, {y1:.0f})",
                         round(float(r.score), 3), f"{x1 - x0:.0f}×{y1 - y0:.0f} px"])
        elif isinstance(r, LandmarkResult):
            pts = "; ".join(f"{n} {_fmt_pt(p)}" for n, p in zip(r.point_names, r.points))
            rows.append([name, spec.organ, kind, f"{len(r.points)} landmarks", None, pts])
        elif isinstance(r, SegmentationResult):
            areas = {k: v for k, v in r.areas.items() if v > 0}
            unit = (lambda a: f"{a * mm_per_px ** 2:.0f} mm²") if mm_per_px else (lambda a: f"{a} px")
            detail = ", ".join(f"{k} {unit(v)}" for k, v in areas.items()) or "nothing found"
            rows.append([name, spec.organ, kind, f"{len(areas)} structure(s)", None, detail])
    return rows


def latency_rows(timings_ms: dict[str, float], overlay_ms: float | None = None) -> list[list[Any]]:
    rows = [[k, round(float(timings_ms[k]), 2)] for k in ("preprocess", "infer", "postprocess") if k in timings_ms]
    if overlay_ms is not None:
        rows.append(["overlay", round(overlay_ms, 2)])
    total = sum(r[1] for r in rows)
    rows.append(["total", round(total, 2)])
    rows.append(["fps (1 / total)", round(1e3 / total, 1) if total > 0 else None])
    return rows


def summary_rows(summary: dict) -> list[list[Any]]:
    """Tracker summary -> rows of (what, p50 ms, p99 ms / value)."""
    rows = [[stage, round(v["p50"], 2), round(v["p99"], 2)] for stage, v in summary.get("latency_ms", {}).items()]
    for key in ("frames_in", "frames_out", "dropped", "errors", "fps_out"):
        if summary.get(key) is not None:
            rows.append([key, summary[key], None])
    return rows
