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


def gate_html(gate) -> str:
    """The frame gate's banner: for a rejected frame, why (the results below are not to be used); for an accepted
    one a quiet line with its distance; nothing when the gate is off."""
    import html

    if gate is None:
        return ""
    if not gate.accepted:
        return ("<div class='usedge-gate-rejected' style='background:#b00020;color:#fff;padding:6px 10px;"
                "border-radius:4px;font-weight:600'>frame rejected: " + html.escape("; ".join(gate.reasons))
                + "<br><span style='font-weight:400'>the results shown are not to be trusted</span></div>")
    if "ood" in gate.scores:
        return (f"<p class='usedge-gate-ok' style='color:#555'>frame gate: accepted (distance "
                f"{gate.scores['ood']:.2f} ≤ {gate.thresholds.ood:.2f})</p>")
    return f"<p class='usedge-gate-ok' style='color:#555'>frame gate: quality checks passed; {html.escape(gate.note)}</p>"


def measurement_html(measurements, tracked: dict | None = None) -> str:
    """The measurements beside the overlay: name, value, unit, calibration and, for a withheld one (greyed), why;
    with ``tracked`` (a live stream) the value filtered over the recent frames and its spread."""
    import html

    if not measurements and not tracked:
        return "<p class='usedge-measure-none'>No measurement for these tasks.</p>"
    head = "<tr><th>measurement</th><th>value</th><th>unit</th><th>calibration</th><th>note</th></tr>"
    rows = []
    for m in measurements or ():
        t = (tracked or {}).get(m.name)
        cal = m.calibration or {}
        where = ("none: lengths in px" if cal.get("source", "none") == "none" else
                 f"{cal['source']}: {cal['mm_per_px'][0]:.4g} × {cal['mm_per_px'][1]:.4g} mm/px")
        if m.value is None:
            value, note, cls = "withheld", m.withheld or "", " class='usedge-withheld'"
        else:
            value = "yes" if m.unit == "bool" and m.value else "no" if m.unit == "bool" else f"{m.value:.2f}"
            note = ", ".join(f"{k} {v}" for k, v in (m.detail or {}).items() if k in ("text", "lesion", "convention"))
            if t is not None and t.value is not None:
                note = (note + "; " if note else "") + (f"stream: {t.value:.2f} ± {t.spread:.2f} over "
                                                        f"{t.accepted}/{t.seen} frames")
            cls = ""
        cells = [m.name, value, m.unit, where, note]
        rows.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table class='usedge-measurements'>{head}{''.join(rows)}</table>"
