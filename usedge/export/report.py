"""What an export writes for people: ``report.md`` (size and CPU latency, the per-task fp32 vs int8 gate, how
the int8 graph was made and what stayed float, parity with torch), ``README.md`` (the bundle's model card) and
``report.png`` (fp32 vs int8 per task). Pure functions of the bundle metadata and the gate rows."""
from __future__ import annotations

import io

import numpy as np

from usedge.quantize.gate import GateConfig, GateRow, resolution, to_markdown


def report_markdown(meta: dict, rows: list[GateRow], gate: GateConfig) -> str:
    lines = [f"# Export report — {meta['model']['name']}", "",
             f"Created {meta['created']} by usedge {meta['usedge_version']}.", ""]
    lat = meta["latency"]
    lines += ["## Size and CPU latency (batch 1, "
              f"{lat['conditions']['size']}², {lat['conditions']['threads']} threads)", "",
              "| precision | file MB | " + " | ".join(f"{b} p50 ms" for b in _backends(lat)) + " |",
              "|---|---|" + "---|" * len(_backends(lat))]
    for p in ("fp32", "int8"):
        if p in lat:
            lines.append(f"| {p} | {lat[p]['file_mb']} | " + " | ".join(str(lat[p].get(b, {}).get('p50_ms', 'n/a'))
                                                                      for b in _backends(lat)) + " |")
    if rows:
        lines += ["", "## Per-task accuracy, fp32 vs int8 (held-out split)", "", to_markdown(rows, gate)]
        q = meta["int8"]
        lines.append(method_line(q))
        if "placement" in q:
            pl = q["placement"]
            lines.append(f"Q/DQ placement (docs/export.md rules): {pl['weighted_ops']} weighted ops, "
                         f"{pl['residual_adds']} residual Adds, {len(pl['float_inputs'])} of their inputs float"
                         + (f"; violations {pl['violations']}" if pl["violations"] else "; no violation") + ".")
        lines.append(f"Kept in float: layers {q['float_layers'] or 'none'}; {len(q['float_activations'])} activation "
                     f"tensors chosen by the sensitivity search ({q['attempts']} gate attempts).")
        n = min(q["gate_samples"].values()) if q["gate_samples"] else 0
        lines.append(f"Gate resolution: {resolution(n, gate)}.")
    lines += ["", "## Parity with the torch model", ""]
    for p, by_backend in meta["parity"].items():
        for b, r in by_backend.items():
            if r["passed"] is None:
                lines.append(f"- {p} on {b}: " + agreement_summary(r["tasks"]) + " (informational: " + r["note"] + ")")
            else:
                lines.append(f"- {p} on {b}: {'pass' if r['passed'] else 'MISMATCH'}")
    return "\n".join(lines) + "\n"


def method_line(q: dict) -> str:
    if q.get("method") != "qat":
        return "Method: post-training quantization (NNCF, signed symmetric int8)."
    r = q["qat"]
    return (f"Method: quantization-aware fine-tuning (NNCF fake-quant, {r['folded_batchnorms']} BatchNorms folded, "
            f"{r['quantizers']} quantizers, {r['steps']} steps, distillation loss {r['first_loss']:.4f} -> "
            f"{r['last_loss']:.4f}, {r['seconds']:.0f} s), after post-training quantization "
            + ("failed the gate." if q["attempts"] > 1 else "was skipped (--qat always)."))


def agreement_summary(rows: dict) -> str:
    worst: dict[str, float] = {}
    for row in rows.values():
        for k, v in row.items():
            if not k.startswith("maxabs"):
                worst[k] = max(worst.get(k, v), v) if k == "px" else min(worst.get(k, v), v)
    names = {"dice": "worst Dice", "top1": "worst top-1 agreement", "iou": "worst box IoU", "px": "worst landmark px"}
    return ", ".join(f"{names[k]} {v:.3f}" for k, v in sorted(worst.items()))


def _backends(lat: dict) -> list[str]:
    return sorted({b for p in ("fp32", "int8") if p in lat for b in lat[p] if b != "file_mb"})


def model_card(meta: dict, report: str) -> str:
    tasks = ", ".join(t["id"] for t in meta["tasks"])
    return (f"# {meta['model']['name']} — usedge bundle\n\nBackbone {meta['model']['backbone']}; tasks: {tasks}.\n"
            f"Input `images` {meta['input']['shape']} float32, RGB, ImageNet-normalised "
            f"(see metadata.json `input.preprocess`). Outputs are named `<task>.<field>` (docs/tasks.md).\n\n"
            "Run it: `usedge verify .` then `usedge.runtime` (OpenVINO / ONNX Runtime / TensorRT).\n"
            "Trained on phantom data unless the source says otherwise: not for clinical use.\n\n" + report)


def report_png(meta: dict, rows: list[GateRow]) -> bytes | None:
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(max(7, 0.42 * len(rows)), 3.6))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r.fp32 if r.metric != "mre" else 0 for r in rows], 0.4, label="fp32")
    ax.bar(x + 0.2, [r.int8 if r.metric != "mre" else 0 for r in rows], 0.4, label="int8")
    ax.set_xticks(x, [r.task + ("" if r.passed else " ✗") for r in rows], rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("Dice / accuracy / IoU")
    ax.set_title(f"{meta['model']['name']}: fp32 vs int8 per task (MRE tasks in report.md)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


__all__ = ["agreement_summary", "method_line", "model_card", "report_markdown", "report_png"]
