"""The multi-task training loop behind ``usedge train``.

Each step draws one task (uniformly, or with temperature over task sizes) and one single-task batch of
it; backbone and neck are shared, so every task's gradient trains them. AdamW with two groups (backbone;
neck + heads — the official baseline left its FPN decoder out of every group, we do not), cosine schedule
with warm-up, AMP on GPU, label-consistent augmentation. Each epoch: eval on val, metrics CSV, curves
PNG, ``last/`` (resumable) and ``best/`` checkpoints, all written atomically.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from usedge._io import atomic_write_json, atomic_write_text
from usedge.data.fmcuia import Sample, find_splits, load_split
from usedge.data.transforms import AugmentConfig
from usedge.errors import ConfigError, UsedgeError
from usedge.models.presets import ModelConfig, build_model, resolve_config
from usedge.train.checkpoint import load_train_state, save_checkpoint
from usedge.train.dataset import TaskDataset, collate, load_items
from usedge.train.distributed import DistContext, ShardedBatchSampler
from usedge.train.evaluate import evaluate_model
from usedge.train.losses import task_loss


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run (recorded in the checkpoint)."""

    data: str
    out: str = "runs/train"
    model: str = "student-s"
    tasks: str = "all"
    epochs: int = 10
    steps_per_epoch: int = 0          # 0: one pass over the training images
    batch_size: int = 16
    input_size: int = 0               # 0: the preset's (256); images are resized to this square side
    lr: float = 1e-3
    backbone_lr_mult: float = 0.5
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    sampling: str = "uniform"         # uniform | temperature
    temperature: float = 2.0
    augment: bool = True
    freeze_norm: bool = False         # BatchNorm in eval mode (tiny per-process batches, fine-tuning)
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    val_fraction: float = 0.2         # used only when the data set has no val/ split
    extra: dict = field(default_factory=dict)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def split_samples(cfg: TrainConfig, task_ids: list[str]) -> tuple[list[Sample], list[Sample]]:
    """Train and val samples; val is a deterministic hold-out of train when the set has no val/."""
    train = load_split(cfg.data, "train", task_ids)
    if "val" in find_splits(cfg.data):
        return train, load_split(cfg.data, "val", task_ids)
    rng = np.random.default_rng(cfg.seed)
    is_val = rng.random(len(train)) < cfg.val_fraction
    return [s for s, v in zip(train, is_val) if not v], [s for s, v in zip(train, is_val) if v]


class TaskSampler:
    """Draws the task of each step: uniform, or p ∝ n^(1/T) over task sizes."""

    def __init__(self, sizes: dict[str, int], mode: str, temperature: float, seed: int) -> None:
        if mode not in ("uniform", "temperature"):
            raise ConfigError(f"Unknown sampling '{mode}'.", fix="use 'uniform' or 'temperature'.")
        self.tasks = list(sizes)
        w = np.ones(len(sizes)) if mode == "uniform" else np.array([sizes[t] ** (1 / temperature) for t in sizes])
        self.p = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> str:
        return self.tasks[self.rng.choice(len(self.tasks), p=self.p)]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig,
                   extra: list[torch.nn.Parameter] | None = None) -> torch.optim.Optimizer:
    body = model.encoder if hasattr(model, "encoder") else model.backbone
    body_ids = {id(p) for p in body.parameters()}
    rest = [p for p in model.parameters() if id(p) not in body_ids] + list(extra or [])
    groups = [{"params": list(body.parameters()), "lr": cfg.lr * cfg.backbone_lr_mult},
              {"params": rest, "lr": cfg.lr}]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def cosine_with_warmup(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))) * 0.99 + 0.01

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def score_of(results: dict[str, dict]) -> float:
    """One number to pick the best epoch: mean over tasks of Dice / accuracy / IoU and 1/(1 + MRE/10 px)."""
    vals = []
    for r in results.values():
        if "dice" in r:
            vals.append(r["dice"])
        elif "accuracy" in r:
            vals.append(r["accuracy"])
        elif "iou" in r:
            vals.append(r["iou"])
        elif "mre" in r:
            vals.append(1.0 / (1.0 + r["mre"] / 10.0))
    return float(np.nanmean(vals)) if vals else float("nan")


class Trainer:
    """One run: ``Trainer(cfg).fit()`` returns the final eval results and writes everything under cfg.out."""

    def __init__(self, cfg: TrainConfig, model_config: ModelConfig | None = None,
                 model: torch.nn.Module | None = None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        device = resolve_device(cfg.device)
        self.dist = DistContext.from_env(device)
        self.device = self.dist.device(device)
        torch.manual_seed(cfg.seed)
        self.model_config = model_config or resolve_config(cfg.model, cfg.tasks)
        if cfg.input_size % 32:
            raise ConfigError(f"input_size {cfg.input_size} is not a multiple of 32 (the backbone's stride).",
                              fix="use 128, 160, 192, 224, 256, ...")
        if cfg.input_size and model_config is None:
            self.model_config = replace(self.model_config, input_size=cfg.input_size)
        self.model = (model or build_model(self.model_config)).to(self.device)
        self.net = self.dist.wrap(self.model)  # what training steps call (DDP under torchrun)
        train, self.val = split_samples(cfg, list(self.model_config.tasks))
        if not train:
            raise UsedgeError(f"No training samples for the selected tasks in {cfg.data}.",
                              fix="check --data and --tasks (`usedge data summary DIR`).")
        self.loaders = self._loaders(train)
        self.sampler = TaskSampler({t: len(dl.dataset) for t, dl in self.loaders.items()},
                                   cfg.sampling, cfg.temperature, cfg.seed)
        self.steps = cfg.steps_per_epoch or max(1, math.ceil(len(train) / cfg.batch_size))
        self.opt = make_optimizer(self.model, cfg, self.extra_parameters())
        self.sched = cosine_with_warmup(self.opt, min(cfg.warmup_steps, self.steps), self.steps * cfg.epochs)
        self.history: list[dict] = []
        self.start_epoch = 0
        self.best = -math.inf
        if cfg.resume:
            self._resume()

    def _loaders(self, train: list[Sample]) -> dict[str, torch.utils.data.DataLoader]:
        items = load_items(train, self.model_config.input_size)
        by_task: dict[str, list] = {}
        for it in items:
            by_task.setdefault(it.task.id, []).append(it)
        aug = AugmentConfig() if self.cfg.augment else None
        batch, d = self.cfg.batch_size, self.dist
        d.per_rank_batch(batch)
        return {t: torch.utils.data.DataLoader(
                    TaskDataset(v, self.model_config, aug, self.cfg.seed + 1000 * d.rank),
                    batch_sampler=ShardedBatchSampler(len(v), batch, d.rank, d.world, self.cfg.seed + i),
                    collate_fn=collate)
                for i, (t, v) in enumerate(sorted(by_task.items()))}

    def extra_parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters outside the model (e.g. distillation adapters); trained with the heads."""
        return []

    def after_backward(self) -> None:
        """Called between backward and the optimizer step (e.g. to all-reduce gradients DDP does not own)."""

    def checkpoint_meta(self) -> dict:
        """Extra entries for the checkpoint's config.json ``meta``."""
        return {}

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors of :meth:`extra_parameters` to keep in ``last/train_state.pt`` for resuming."""
        return {}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        pass

    def compute_loss(self, task: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of one single-task batch (subclasses add distillation terms)."""
        return task_loss(self.model.task_specs[task], self.net(x, tasks=[task]), y)

    def _batches(self):
        iters = {t: iter(dl) for t, dl in self.loaders.items()}
        while True:
            task = self.sampler()
            try:
                yield task, next(iters[task])
            except StopIteration:
                iters[task] = iter(self.loaders[task])
                yield task, next(iters[task])

    def _step(self, task: str, x: torch.Tensor, y: torch.Tensor | None) -> float:
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True) if y is not None else None
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            loss = self.compute_loss(task, x, y)
        value = self.dist.mean(float(loss.detach()))  # every rank sees the same value: all stop together
        if not math.isfinite(value):
            raise UsedgeError(f"Loss of task {task} became {value} at step {self.sched.last_epoch}.",
                              fix="lower --lr; the last good checkpoint is in " + str(self.out / "last"))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.after_backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], 5.0)
        self.opt.step()
        self.sched.step()
        return value

    def fit(self, progress: bool = True) -> dict:
        from rich.progress import Progress

        batches = self._batches()
        with Progress(disable=not (progress and self.dist.is_main), transient=False) as bar:
            job = bar.add_task("train", total=(self.cfg.epochs - self.start_epoch) * self.steps)
            for epoch in range(self.start_epoch, self.cfg.epochs):
                self.model.train()
                if self.cfg.freeze_norm:
                    for m in self.model.modules():
                        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                            m.eval()
                t0, losses, recent = time.perf_counter(), {}, []
                for _ in range(self.steps):
                    task, (x, y) = next(batches)
                    recent.append(self._step(task, x, y))
                    losses.setdefault(task, []).append(recent[-1])
                    bar.update(job, advance=1, description=f"epoch {epoch + 1}/{self.cfg.epochs} loss {np.mean(recent[-20:]):.3f}")
                self._end_epoch(epoch, {t: float(np.mean(v)) for t, v in losses.items()}, time.perf_counter() - t0)
        return self.history[-1] if self.history else {}

    def close(self) -> None:
        """Leave the process group (multi-process runs)."""
        self.dist.close()

    def _end_epoch(self, epoch: int, task_losses: dict[str, float], seconds: float) -> None:
        """Log one epoch. ``train_loss`` is the task-balanced mean (mean of per-task means), so it does not
        swing with which tasks the sampler happened to draw; per-task means are logged as ``loss.<task>``."""
        if not self.dist.is_main:  # rank 0 evaluates and writes; the others wait for it
            self.dist.barrier()
            return
        results = evaluate_model(self.model, self.model_config, self.val, device=str(self.device)).results() if self.val else {}
        score = score_of(results)
        loss = float(np.mean(list(task_losses.values())))
        row = {"epoch": epoch + 1, "step": (epoch + 1) * self.steps, "train_loss": loss, "val_score": score,
               "seconds": seconds, **{f"loss.{t}": v for t, v in sorted(task_losses.items())},
               **{f"{t}.{k}": v for t, r in results.items() for k, v in r.items() if k != "n"}}
        self.history.append(row)
        meta = {"train_config": asdict(self.cfg), "epoch": epoch + 1, "val_score": score, "val": results,
                **self.checkpoint_meta()}
        state = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "epoch": epoch + 1,
                 "best": max(self.best, score), "history": self.history, "extra": self.extra_state()}
        save_checkpoint(self.out / "last", self.model, self.model_config, meta, state)
        if score > self.best or not math.isfinite(self.best):
            self.best = score
            save_checkpoint(self.out / "best", self.model, self.model_config, meta)
        self._write_logs()
        self.dist.barrier()

    def _write_logs(self) -> None:
        keys = list(dict.fromkeys(k for row in self.history for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(self.out / "metrics.csv", buf.getvalue())
        atomic_write_json(self.out / "history.json", self.history)
        plot_curves(self.history, self.out / "curves.png")

    def _resume(self) -> None:
        state = load_train_state(self.out / "last")
        if state is None:
            return
        from usedge.train.checkpoint import load_checkpoint

        model, _, _ = load_checkpoint(self.out / "last", device=str(self.device))
        self.model.load_state_dict(model.state_dict())
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.start_epoch, self.best, self.history = state["epoch"], state["best"], list(state["history"])
        self.load_extra_state(state.get("extra", {}))


def plot_curves(history: list[dict], path: Path) -> None:
    """Train loss and val score per epoch, as a PNG (skipped quietly if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    epochs = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(epochs, [r["train_loss"] for r in history], marker="o")
    a.set(title="train loss", xlabel="epoch")
    b.plot(epochs, [r["val_score"] for r in history], marker="o", color="tab:green")
    b.set(title="val score (mean primary metric)", xlabel="epoch")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    from usedge._io import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue())
