"""What a dense map of a given resolution can score at best: the Dice of PERFECT logits at m×m.

For every segmentation task, phantom images at 256² (the size the targets are measured on): the one-hot
ground truth is area-averaged down to m×m (a perfect stride-s prediction), resized back bilinearly and
arg-maxed, the way the Predictor decodes logits. m = input / stride: 32 (128² / 4), 48 (192² / 4),
64 (256² / 4 or 128² / 2), 128 (128² / 1). Pick the input size and dense stride from this table and
benchmarks/bench_train_step.py; docs/models.md has the choice.

    python benchmarks/bench_dense_ceiling.py [--images 25]
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from usedge.data.phantom.generator import generate_sample
from usedge.tasks import ALL_TASKS, TaskKind

MAPS = (32, 48, 64, 128)


def ceiling(mask: np.ndarray, classes: int, m: int) -> float:
    h, w = mask.shape
    planes = [cv2.resize(cv2.resize((mask == c).astype(np.float32), (m, m), interpolation=cv2.INTER_AREA), (w, h),
                         interpolation=cv2.INTER_LINEAR) for c in range(classes)]
    pred = np.argmax(np.stack(planes, -1), -1)
    dice = [2 * ((pred == c) & (mask == c)).sum() / ((pred == c).sum() + (mask == c).sum())
            for c in range(1, classes) if (pred == c).any() or (mask == c).any()]
    return float(np.mean(dice))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=25)
    args = ap.parse_args()
    print("| task | " + " | ".join(f"{m}²" for m in MAPS) + " |")
    print("|---" * (len(MAPS) + 1) + "|")
    table = []
    for spec in (t for t in ALL_TASKS if t.kind is TaskKind.SEGMENTATION):
        masks = [generate_sample(spec.id, np.random.default_rng([5, 9, i])).label for i in range(args.images)]
        row = [np.mean([ceiling(mk, spec.num_classes, m) for mk in masks]) for m in MAPS]
        table.append(row)
        print(f"| {spec.id} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    print("| **mean** | " + " | ".join(f"**{v:.3f}**" for v in np.mean(table, 0)) + " |")


if __name__ == "__main__":
    main()
