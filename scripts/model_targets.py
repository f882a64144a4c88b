"""The default student's accuracy targets (issue 14), checked on `usedge eval` output (eval.json).

    python scripts/model_targets.py runs/eval-int8/eval.json [more eval.json ...]

Targets, on held-out phantom images of a seed never trained or selected on: segmentation mean Dice >= 0.85
with no task below 0.60; classification mean accuracy >= 0.90; detection mean IoU >= 0.70; landmark MRE
<= 8 px (mean of the three landmark tasks, on 256-px images). Prints a Markdown table per file.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

TARGETS = [  # (label, kind, metric, how, bound)
    ("segmentation mean Dice", "segmentation", "dice", "mean>=", 0.85),
    ("segmentation worst task Dice", "segmentation", "dice", "min>=", 0.60),
    ("classification mean accuracy", "classification", "accuracy", "mean>=", 0.90),
    ("detection mean IoU", "detection", "iou", "mean>=", 0.70),
    ("landmark mean MRE (px)", "regression", "mre", "mean<=", 8.0),
]


def check(path: Path) -> list[tuple[str, float, str, bool, str]]:
    tasks = json.loads(path.read_text())["tasks"]
    rows = []
    for label, kind, metric, how, bound in TARGETS:
        vals = {t: r[metric] for t, r in tasks.items() if r["kind"] == kind and r.get(metric) is not None}
        if not vals:
            continue
        agg, op = how[:-2], how[-2:]
        value = min(vals.values()) if agg == "min" else sum(vals.values()) / len(vals)
        ok = value >= bound if op == ">=" else value <= bound
        worst = min(vals, key=vals.get) if agg == "min" else ""
        rows.append((label, value, f"{'≥' if op == '>=' else '≤'} {bound:g}", ok, worst))
    return rows


def main() -> None:
    for arg in sys.argv[1:]:
        print(f"\n{arg}\n\n| target | measured | required | met |\n|---|---|---|---|")
        for label, value, bound, ok, worst in check(Path(arg)):
            note = f" ({worst})" if worst else ""
            print(f"| {label} | {value:.3f}{note} | {bound} | {'yes' if ok else '**no**'} |")


if __name__ == "__main__":
    main()
