"""Teach a student's view classifiers (fetal_plane_cls, organ_cls) every task's frames, labelled by what the phantom
drew: (1) refit their linear layers on frozen features of all 27 tasks' frames (usedge.train.views), then (2)
fine-tune the whole network briefly, every head distilled towards where it started and the view heads taught on
every image (usedge.distill.views). Why: docs/measure.md, "The view check".

    python scripts/fit_view_heads.py usedge/assets/default_student --out runs/default-views   # ~2 + ~15 min, 2 cores
    python scripts/fit_view_heads.py CKPT --out OUT --finetune-steps 0                         # (1) only
    python scripts/build_default_student.py runs/default-views --data data/phantom-test-2027
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from usedge.train.views import ViewFitConfig

    d = ViewFitConfig()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="a usedge checkpoint folder with fetal_plane_cls and/or organ_cls")
    ap.add_argument("--out", type=Path, required=True, help="the checkpoint folder to write")
    ap.add_argument("--per-task", type=int, default=d.per_task, help=f"phantom frames per task (default {d.per_task})")
    ap.add_argument("--seed", type=int, default=d.seed, help=f"the frames' phantom seed (default {d.seed})")
    ap.add_argument("--epochs", type=int, default=d.epochs, help=f"full-batch optimiser steps (default {d.epochs})")
    ap.add_argument("--finetune-steps", type=int, default=0,
                    help="whole-network fine-tune steps (default 0: none; docs/measure.md: what 1000 and 1500 cost)")
    ap.add_argument("--finetune-lr", type=float, default=1e-4, help="the fine-tune's learning rate (default 1e-4)")
    ap.add_argument("--tune-seed", type=int, default=9003, help="the fine-tune's phantom seed (default 9003)")
    ap.add_argument("--view-weight", type=float, default=1.0, help="weight of the view term in the fine-tune (default 1)")
    args = ap.parse_args(argv)
    from usedge.distill.views import ViewTuneConfig, tune_views
    from usedge.models.checkpoint import load_checkpoint, save_checkpoint
    from usedge.train.views import fit_view_heads

    cfg = ViewFitConfig(per_task=args.per_task, seed=args.seed, epochs=args.epochs)
    model, config, meta = load_checkpoint(args.checkpoint)
    t0 = time.perf_counter()
    report = fit_view_heads(model, config, cfg, progress=lambda s: print(s, flush=True))
    print(json.dumps(report, indent=2), flush=True)
    tune = ViewTuneConfig(steps=args.finetune_steps, lr=args.finetune_lr, view=args.view_weight, seed=args.tune_seed)
    losses = tune_views(model, config, tune, log=lambda s: print(s, flush=True)) if args.finetune_steps > 0 else []
    meta = {**meta, "views": {"fitted_from": str(args.checkpoint), "per_task": cfg.per_task, "seed": cfg.seed,
                              "epochs": cfg.epochs, "report": report,
                              "finetune_steps": args.finetune_steps, "finetune_lr": tune.lr, "view_weight": tune.view,
                              "tune_seed": tune.seed,
                              "finetune_loss_last50": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4),
                              "how": "python scripts/fit_view_heads.py (usedge.train.views, usedge.distill.views)"}}
    save_checkpoint(args.out, model, config, meta)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
