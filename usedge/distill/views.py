"""Teach the view classifiers every frame, the whole network free: a short fine-tune of a trained student on
mixed-task phantom batches, each head distilled towards the model it started as (and its labels) on its own
samples, and ``fetal_plane_cls`` / ``organ_cls`` taught on **every** image of the batch what the phantom drew
there (usedge.data.phantom.views; uniform where it shows none of their classes).

Why the backbone too: the frozen-feature refit (usedge.train.views) cannot separate the phantom's abdomen and
thorax sections, whose pooled features overlap (docs/measure.md, "The view check"). The distillation term keeps
every other head where it was. Measured on the packaged default it did not pay (docs/measure.md).

    python scripts/fit_view_heads.py CKPT --out OUT --finetune-steps 1000
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from usedge.data.phantom.views import VIEW_TASKS
from usedge.data.transforms import AugmentConfig
from usedge.distill.losses import KDWeights, task_kd
from usedge.errors import ConfigError, UsedgeError
from usedge.models.presets import ModelConfig
from usedge.tasks import get_task
from usedge.train.losses import task_loss
from usedge.train.views import batch_view_targets


@dataclass(frozen=True)
class ViewTuneConfig:
    steps: int = 1000
    batch_size: int = 32
    tasks_per_batch: int = 8
    lr: float = 1e-4
    view: float = 1.0                  # weight of the view term (every image, every view head)
    kd: float = 1.0                    # distillation towards the starting model, own samples
    gt: float = 1.0                    # labels, own samples
    seed: int = 9003
    workers: int = 1
    log_every: int = 50


def view_loss(out: dict[str, torch.Tensor], batch, tasks: tuple[str, ...]) -> torch.Tensor:
    """Mean over ``tasks`` of the soft-target cross-entropy of each view head on every image of ``batch``."""
    terms = []
    for task in tasks:
        logits = out[get_task(task).output_names[0]].float()
        target = batch_view_targets(task, batch.groups, batch.targets, len(batch)).to(logits.device)
        terms.append(-(target * logits.log_softmax(dim=1)).sum(dim=1).mean())
    return torch.stack(terms).mean()


def tune_loss(specs: dict, out: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], batch, cfg: ViewTuneConfig,
              views: tuple[str, ...]) -> torch.Tensor:
    """Per task of the batch on its own samples: ``kd`` × distillation + ``gt`` × labels; plus ``view`` × the view
    term on every image."""
    w = KDWeights()
    per_task = []
    for task, sl in batch.groups.items():
        spec = specs[task]
        s = {n: out[n][sl] for n in spec.output_names}
        t = {n: ref[n][sl] for n in spec.output_names}
        per_task.append(cfg.kd * task_kd(spec, s, t, w) + cfg.gt * task_loss(spec, s, batch.targets[task]))
    return torch.stack(per_task).mean() + cfg.view * view_loss(out, batch, views)


def phantom_batches(config: ModelConfig, cfg: ViewTuneConfig) -> Iterator:
    """Endless mixed-task batches of fresh augmented phantom images of every task of the model."""
    from usedge.train.batches import MixedBatchSampler, PhantomStream, TaskSampler, collate_mixed

    dataset = PhantomStream(list(config.tasks), config, AugmentConfig(), cfg.seed)
    sizes = dataset.sizes()
    k = min(cfg.tasks_per_batch, len(sizes))
    sampler = MixedBatchSampler(sizes, TaskSampler(sizes, "uniform"), max(1, cfg.batch_size // k) * k, k, cfg.steps,
                                cfg.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_mixed,
                                         num_workers=cfg.workers, generator=torch.Generator().manual_seed(cfg.seed))
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def tune_views(model: torch.nn.Module, config: ModelConfig, cfg: ViewTuneConfig = ViewTuneConfig(),
               batches: Iterator | None = None, log: Callable[[str], None] = print) -> list[float]:
    """Fine-tune ``model`` in place (AdamW, cosine); returns the loss of every step."""
    views = tuple(t for t in VIEW_TASKS if t in model.heads)
    if not views:
        raise ConfigError("This model has neither view classifier (fetal_plane_cls, organ_cls).",
                          fix="tune views on a model trained with those tasks")
    torch.manual_seed(cfg.seed)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    batches = batches if batches is not None else phantom_batches(config, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    model.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        batch = next(batches)
        with torch.no_grad():
            ref = reference(batch.images)
        loss = tune_loss(model.task_specs, model(batch.images), ref, batch, cfg, views)
        if not torch.isfinite(loss):
            raise UsedgeError(f"view fine-tune loss became {float(loss)} at step {step}.", fix="lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % cfg.log_every == 0 or step == cfg.steps:
            log(f"view fine-tune step {step}/{cfg.steps}: loss {np.mean(losses[-cfg.log_every:]):.4f} "
                f"({(time.perf_counter() - t0) / step:.2f} s/step)")
    model.eval()
    return losses


__all__ = ["ViewTuneConfig", "phantom_batches", "tune_loss", "tune_views", "view_loss"]
