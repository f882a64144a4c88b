"""Seconds per training step (forward + backward + AdamW) of model variants, batch 32 of 8 tasks x 4 images
(the mixed-batch recipe: one forward, each head on its own samples), random inputs, CPU threads as given.

    python benchmarks/bench_train_step.py [--threads 2] [--steps 6]
"""
from __future__ import annotations

import argparse
import time

import torch

from usedge.models.presets import ModelConfig, build_model, resolve_config

VARIANTS = [  # (label, config)
    ("student-s 128² stride 4", ModelConfig(input_size=128, dense_stride=4)),
    ("student-s 128² stride 2", ModelConfig(input_size=128, dense_stride=2)),
    ("student-s 192² stride 4", ModelConfig(input_size=192, dense_stride=4)),
    ("student-s 256² stride 4", ModelConfig(input_size=256, dense_stride=4)),
    ("student-s wide neck (96/64) 128² stride 2", ModelConfig(input_size=128, dense_stride=2, neck_channels=96,
                                                              dense_channels=64)),
    ("mobilenetv4_conv_medium (96/64) 128² stride 2", ModelConfig(backbone="timm/mobilenetv4_conv_medium",
                                                                  input_size=128, dense_stride=2,
                                                                  neck_channels=96, dense_channels=64)),
    ("teacher-vit-s (ViT-S/16 + simple pyramid, 128/96) 256² stride 4", "teacher-vit-s"),
    ("teacher-vit-s at 128² (8×8 tokens) stride 4", ModelConfig(backbone="timm/vit_small_patch16_224", input_size=128,
                                                               neck_channels=128, dense_channels=96)),
    ("baseline-b4 (EfficientNet-B4 + FPN, official) 256²", "baseline-b4"),
]


def step_seconds(config: ModelConfig | str, steps: int) -> tuple[float, float]:
    config = resolve_config(config)
    model = build_model(config).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    size = config.input_size
    x = torch.randn(32, 3, size, size)
    groups = {t: slice(4 * i, 4 * i + 4) for i, t in enumerate(model.task_ids[::3][:8])}
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = model(x, groups=groups)
        loss = sum(v.float().mean() for v in out.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(sorted(times[1:])[len(times[1:]) // 2]), sum(p.numel() for p in model.parameters()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--only", default="", help="run the variants whose label contains this text")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"| variant | parameters (M) | s / step (batch 32, {args.threads} threads) |\n|---|---|---|")
    for label, config in VARIANTS:
        if args.only not in label:
            continue
        sec, params = step_seconds(config, args.steps)
        print(f"| {label} | {params:.2f} | {sec:.3f} |", flush=True)


if __name__ == "__main__":
    main()
