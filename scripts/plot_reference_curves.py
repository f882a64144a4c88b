"""Held-out curves of the reference runs side by side (docs/images/reference-curves.png).

    python scripts/plot_reference_curves.py runs/ref-teacher runs/ref-student runs/ref-distill [--out PNG]
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

FAMILIES = [("val_score", "held-out score", None), ("seg", "segmentation Dice", None),
            ("cls", "classification accuracy", None), ("det", "detection IoU", None), ("lmk", "landmark MRE (px)", None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/images/reference-curves.png"))
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from usedge._io import atomic_write_bytes

    fig, axes = plt.subplots(1, len(FAMILIES), figsize=(4 * len(FAMILIES), 3.4))
    for run in args.runs:
        history = json.loads((run / "history.json").read_text())
        steps = [r["step"] for r in history]
        for ax, (key, title, _) in zip(axes, FAMILIES):
            ys = [r["val_score"] if key == "val_score" else r["families"].get(key, float("nan")) for r in history]
            ax.plot(steps, ys, marker="o", label=run.name)
            ax.set(title=title, xlabel="step")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
