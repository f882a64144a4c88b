"""Landmark heads, measured: heatmap + soft-argmax vs direct regression, same student, same budget.

Trains student-s twice on a phantom set of the three landmark tasks (FUGC, IUGC, fetal_femur) with
identical data, seed, steps and learning rate, changing only ModelConfig.regression, and reports each
run's validation MRE (original pixels) per task and the OpenVINO fp32 latency of the whole 27-task net
with each head kind.

Usage: python benchmarks/compare_landmark_heads.py [--per-task 160] [--epochs 6] [--steps 100] [--out runs/landmark_heads]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

TASKS = "FUGC,IUGC,fetal_femur"


def train_one(data: Path, out: Path, regression: str, args: argparse.Namespace) -> dict:
    from usedge.models.presets import resolve_config
    from usedge.train.loop import TrainConfig, Trainer

    cfg = TrainConfig(data=str(data), out=str(out / regression), model="student-s", tasks=TASKS,
                      epochs=args.epochs, steps_per_epoch=args.steps, batch_size=16, lr=2e-3, seed=0)
    trainer = Trainer(cfg, model_config=replace(resolve_config("student-s", TASKS), regression=regression,
                                                input_size=args.size))
    trainer.fit(progress=True)
    best = max(trainer.history, key=lambda r: r["val_score"])
    return {t: best[f"{t}.mre"] for t in TASKS.split(",")}


def latency(regression: str, runs: int) -> float:
    import sys

    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    from bench_presets import ov_latency

    from usedge.models import build_model
    from usedge.models.presets import resolve_config

    model = build_model(replace(resolve_config("student-s"), regression=regression)).eval()
    names = [o.name for t in model.task_specs.values() for o in t.outputs]
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = Path(tmp) / "m.onnx"
        torch.onnx.export(model, (torch.randn(1, 3, 256, 256),), str(path), input_names=["images"],
                          output_names=names, opset_version=17, dynamo=False)
        return float(np.percentile(ov_latency(path, 256, 2, runs), 50))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-task", type=int, default=160)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("runs/landmark_heads"))
    args = ap.parse_args()
    from usedge.data.phantom import generate_dataset

    data = args.out / "data"
    generate_dataset(data, per_task=args.per_task, seed=7, size=args.size, tasks=TASKS.split(","))
    rows = {}
    for regression in ("heatmap", "direct"):
        rows[regression] = train_one(data, args.out, regression, args)
        rows[regression]["p50_ms"] = latency(regression, args.runs)
    print(f"\n| head | {' | '.join(t + ' MRE px' for t in TASKS.split(','))} | mean MRE px | OV fp32 p50 ms (27 tasks) |")
    print("|---|" + "---|" * (len(TASKS.split(",")) + 2))
    for name, r in rows.items():
        mres = [r[t] for t in TASKS.split(",")]
        print(f"| {name} | " + " | ".join(f"{m:.1f}" for m in mres) + f" | {sum(mres) / len(mres):.1f} | {r['p50_ms']:.2f} |")
    (args.out / "result.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
