"""Summarise `usedge export` bundles: method, gate verdict, float activations by the placement rules, mean
int8 change per family, and the export's side-by-side latency (OpenVINO / ONNX Runtime, fp32 vs int8).

    python scripts/int8_summary.py runs/int8-study/*/ > runs/int8-study/summary.md
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from usedge.bundle.qdq import check_placement
from usedge.tasks import get_task

FAMILY = {"segmentation": "seg", "classification": "cls", "detection": "det", "regression": "lmk"}


def family_changes(gate: list[dict]) -> dict[str, float]:
    """Mean int8 change per family: points for seg/cls/det, % of fp32 MRE for landmarks (negative = loss)."""
    out: dict[str, list[float]] = {}
    for r in gate:
        fam = FAMILY[get_task(r["task"]).kind.value]
        change = (-100 * (r["int8"] - r["fp32"]) / r["fp32"]) if r["metric"] == "mre" else 100 * (r["int8"] - r["fp32"])
        out.setdefault(fam, []).append(change)
    return {k: sum(v) / len(v) for k, v in out.items()}


def row(folder: Path) -> str:
    meta = json.loads((folder / "metadata.json").read_text())
    q, lat = meta.get("int8", {}), meta.get("latency", {})
    placement = check_placement(folder / "model.int8.onnx")
    fam = family_changes(q.get("gate", []))
    worst = min(q.get("gate", []), key=lambda r: r["int8"] - r["fp32"] if r["metric"] != "mre" else r["fp32"] - r["int8"],
                default=None)
    failing = [r["task"] for r in q.get("gate", []) if not r["passed"]]

    def ms(p, b):
        v = lat.get(p, {}).get(b, {}).get("p50_ms")
        return v if v is not None else math.nan

    ov = ms("fp32", "openvino") / ms("int8", "openvino")
    ort = ms("fp32", "onnxruntime") / ms("int8", "onnxruntime")
    return (f"| {folder.name} | {q.get('method', '-')} | {'pass' if q.get('passed') else 'FAIL ' + ', '.join(failing)} "
            f"| {len(placement.float_inputs)} ({len(q.get('float_activations', []))}) | "
            + " | ".join(f"{fam.get(k, math.nan):+.2f}" for k in ("seg", "cls", "det")) + f" | {fam.get('lmk', math.nan):+.1f} % "
            f"| {worst['task'] if worst else '-'} {worst['change'] if worst else ''} "
            f"| {ms('fp32', 'openvino'):.2f} / {ms('int8', 'openvino'):.2f} ({ov:.2f}x) "
            f"| {ms('fp32', 'onnxruntime'):.2f} / {ms('int8', 'onnxruntime'):.2f} ({ort:.2f}x) |")


def main() -> None:
    folders = [Path(a) for a in sys.argv[1:] if (Path(a) / "metadata.json").is_file()]
    print("Δ: mean over the family of int8 minus fp32; + means int8 scored better (for landmarks: smaller error).\n")
    print("| bundle | method | gate | float conv/Add inputs (of them by the fallback) | seg Δ pt | cls Δ pt | det Δ pt "
          "| landmark Δ (MRE, % of fp32) | worst task | OpenVINO fp32 / int8 ms | ORT fp32 / int8 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for f in folders:
        print(row(f))


if __name__ == "__main__":
    main()
