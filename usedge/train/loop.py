"""The multi-task training loop behind ``usedge train``.

Each step is a mixed-task batch (:mod:`usedge.train.batches`): several tasks drawn by a configurable
sampler, their images through ONE forward, each head's loss on its own samples, the step's loss the mean
over its tasks; BatchNorm sees mixed batches. Data come from a data set on disk (held in memory at the input
size) or, with ``data="phantom"``, fresh seeded phantom images generated in DataLoader worker processes
(both cores busy); selection uses a fixed held-out split. AdamW (backbone and heads at the same learning
rate by default: students start from random weights), cosine schedule with warm-up, AMP on GPU,
label-true augmentation. Each epoch: eval on the held-out split, metrics CSV, curves PNG (loss, score and
per-family scores), ``last/`` (resumable) and ``best/`` checkpoints, all written atomically.
"""
from __future__ import annotations

import csv
import io
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from usedge._io import atomic_write_json, atomic_write_text
from usedge.data.fmcuia import Sample, find_splits, load_split
from usedge.data.transforms import AugmentConfig
from usedge.errors import ConfigError, UsedgeError
from usedge.metrics.classification import UndefinedAUCWarning
from usedge.metrics.evaluator import PRIMARY_METRIC
from usedge.models.checkpoint import load_train_state, save_checkpoint
from usedge.models.presets import ModelConfig, build_model, resolve_config
from usedge.tasks import ALL_TASKS, TaskKind, get_task
from usedge.train.batches import ItemDataset, MixedBatch, MixedBatchSampler, PhantomStream, TaskSampler, collate_mixed
from usedge.train.dataset import load_items
from usedge.train.distributed import DistContext
from usedge.train.evaluate import evaluate_model
from usedge.train.losses import task_loss

PHANTOM = "phantom"  # TrainConfig.data value for online phantom data
LOG_EVERY = 50       # steps between progress lines when the output is not a terminal
TASK_IDS = frozenset(t.id for t in ALL_TASKS)
FAMILIES = {TaskKind.SEGMENTATION: "seg", TaskKind.CLASSIFICATION: "cls", TaskKind.DETECTION: "det",
            TaskKind.REGRESSION: "lmk"}


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run (recorded in the checkpoint).

    ``data`` is a data set root in the FMC-UIA layout, or ``"phantom"`` for fresh phantom images every step
    (``phantom_size`` px, seeded by ``seed``); ``val_data`` is the held-out set used for selection (default:
    the data set's val/ split, or for phantom data a set of ``val_per_task`` images per task generated once
    into ``<out>/heldout`` with seed ``seed + 1000``). ``batch_size`` images per step are split evenly over
    ``tasks_per_batch`` distinct tasks. ``workers`` DataLoader processes prepare batches; ``threads`` sets
    torch's intra-op threads (0: torch's default).
    """

    data: str
    out: str = "runs/train"
    model: str = "student-s"
    tasks: str = "all"
    epochs: int = 10
    steps_per_epoch: int = 0          # 0: one pass over the training images (phantom: 200 steps)
    batch_size: int = 32
    tasks_per_batch: int = 8
    input_size: int = 0               # 0: the preset's; images are resized to this square side
    dense_stride: int = 0             # 0: the preset's; 2 or 4
    lr: float = 2e-3
    backbone_lr_mult: float = 1.0
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    sampling: str = "uniform"         # uniform | size | temperature
    temperature: float = 2.0
    augment: bool = True
    freeze_norm: bool = False         # BatchNorm in eval mode (tiny per-process batches, fine-tuning)
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    val_fraction: float = 0.2         # used only when the data set has no val/ split
    val_data: str = ""
    val_per_task: int = 100
    phantom_size: int = 256
    workers: int = 1
    threads: int = 0
    init: str = ""                    # checkpoint whose weights the model starts from (fresh optimizer)
    acquisition: str = "default"      # phantom scanner-setting ranges: default | wide (physics.ACQUISITIONS)
    us_augment: float = 0.0           # probability of the ultrasound artefact augmentation (0: off)
    extra: dict = field(default_factory=dict)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def split_samples(cfg: TrainConfig, task_ids: list[str]) -> tuple[list[Sample], list[Sample]]:
    """Train and val samples of a stored data set; val is ``val_data``'s val split when given, else the
    set's val/ split, else a deterministic hold-out of train."""
    train = load_split(cfg.data, "train", task_ids)
    if cfg.val_data:
        return train, load_split(cfg.val_data, "val", task_ids)
    if "val" in find_splits(cfg.data):
        return train, load_split(cfg.data, "val", task_ids)
    rng = np.random.default_rng(cfg.seed)
    is_val = rng.random(len(train)) < cfg.val_fraction
    return [s for s, v in zip(train, is_val) if not v], [s for s, v in zip(train, is_val) if v]


def heldout_phantom(cfg: TrainConfig, task_ids: list[str]) -> list[Sample]:
    """The fixed held-out split for online phantom training (generated once into ``<out>/heldout``)."""
    if cfg.val_data:
        return load_split(cfg.val_data, "val", task_ids)
    import json

    from usedge.data.phantom.generator import MARKER, generate_dataset

    root = Path(cfg.out) / "heldout"
    want = {"seed": cfg.seed + 1000, "size": cfg.phantom_size, "val_per_task": cfg.val_per_task}
    marker = root / MARKER
    have = json.loads(marker.read_text()) if marker.is_file() else {}
    if any(have.get(k) != v for k, v in want.items()) or not set(task_ids) <= set(have.get("tasks", [])):
        generate_dataset(root, per_task=1, seed=want["seed"], size=cfg.phantom_size, progress=True,
                         val_per_task=cfg.val_per_task, tasks=[get_task(t) for t in task_ids])
    return load_split(root, "val", task_ids)


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


def primary(r: dict) -> tuple[str, float] | None:
    """The primary metric of one task's results: dice, accuracy, iou or mre."""
    for key in ("dice", "accuracy", "iou", "mre"):
        if key in r:
            return key, float(r[key])
    return None


def score_of(results: dict[str, dict]) -> float:
    """One number to pick the best epoch: mean over tasks of Dice / accuracy / IoU and 1/(1 + MRE/10 px)."""
    vals = []
    for r in results.values():
        m = primary(r)
        if m is not None:
            vals.append(1.0 / (1.0 + m[1] / 10.0) if m[0] == "mre" else m[1])
    return float(np.nanmean(vals)) if vals else float("nan")


def family_scores(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    """The primary metric of each family from :meth:`EvalReport.family_summary`: seg (Dice), cls (accuracy),
    det (IoU), lmk (MRE, pixels)."""
    return {FAMILIES[kind]: summary[kind.value][metric] for kind, metric in PRIMARY_METRIC.items()
            if kind.value in summary}


def describe_families(scores: dict[str, float]) -> str:
    return " ".join(f"{f} {v:.1f}px" if f == "lmk" else f"{f} {v:.3f}" for f, v in scores.items())


class Trainer:
    """One run: ``Trainer(cfg).fit()`` returns the final eval results and writes everything under cfg.out."""

    def __init__(self, cfg: TrainConfig, model_config: ModelConfig | None = None,
                 model: torch.nn.Module | None = None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        self.dist = DistContext.from_env(device)
        self.device = self.dist.device(device)
        torch.manual_seed(cfg.seed)
        self.model_config = model_config or self._resolve_model_config()
        self.model = (model or build_model(self.model_config)).to(self.device)
        if cfg.init:                     # (a resumed run then loads OUT/last over it)
            self._init_weights(cfg.init)
        self.net = self.dist.wrap(self.model)  # what training steps call (DDP under torchrun)
        tasks = list(self.model_config.tasks)
        dataset, self.val = self._data(tasks)
        self.steps = cfg.steps_per_epoch or (200 if cfg.data == PHANTOM else
                                             max(1, math.ceil(len(dataset) / cfg.batch_size)))
        sizes = dataset.sizes()
        self.batch_sampler = MixedBatchSampler(sizes, TaskSampler(sizes, cfg.sampling, cfg.temperature),
                                               cfg.batch_size, cfg.tasks_per_batch, self.steps, cfg.seed,
                                               self.dist.rank, self.dist.world)
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=self.batch_sampler, collate_fn=collate_mixed, num_workers=cfg.workers,
            persistent_workers=cfg.workers > 0, prefetch_factor=4 if cfg.workers > 0 else None)
        self.opt = make_optimizer(self.model, cfg, self.extra_parameters())
        self.sched = cosine_with_warmup(self.opt, min(cfg.warmup_steps, self.steps * cfg.epochs // 4 + 1),
                                        self.steps * cfg.epochs)
        self.history: list[dict] = []
        self.start_epoch = 0
        self.best = -math.inf
        if cfg.resume:
            self._resume()

    def _init_weights(self, path: str) -> None:
        from usedge.models.checkpoint import load_checkpoint

        source, config, _ = load_checkpoint(path)
        mine = self.model_config
        if (config.arch, config.backbone, tuple(config.tasks)) != (mine.arch, mine.backbone, tuple(mine.tasks)):
            raise ConfigError(f"--init {path} holds {config.arch} {config.backbone} with {len(config.tasks)} tasks; "
                              f"this run trains {mine.arch} {mine.backbone} with {len(mine.tasks)}.",
                              fix="pass a checkpoint of the same --model and --tasks.")
        try:
            self.model.load_state_dict(source.state_dict(), strict=True)
        except RuntimeError as exc:
            raise ConfigError(f"--init {path} does not fit this model: {str(exc)[:300]}",
                              fix="use the same --model, --tasks, --input-size and --dense-stride.") from None

    def _resolve_model_config(self) -> ModelConfig:
        cfg = self.cfg
        config = resolve_config(cfg.model, cfg.tasks)
        if cfg.input_size % 32:
            raise ConfigError(f"input_size {cfg.input_size} is not a multiple of 32 (the backbone's stride).",
                              fix="use 128, 160, 192, 224, 256, ...")
        if cfg.input_size:
            config = replace(config, input_size=cfg.input_size)
        if cfg.dense_stride:
            config = replace(config, dense_stride=cfg.dense_stride)
        return config

    def _data(self, tasks: list[str]) -> tuple[ItemDataset | PhantomStream, list[Sample]]:
        """The training dataset (stored or online phantom) and the held-out samples used for selection."""
        cfg, aug = self.cfg, AugmentConfig(ultrasound=self.cfg.us_augment) if self.cfg.augment else None
        seed = cfg.seed + 1000 * self.dist.rank
        if cfg.data == PHANTOM:
            val = heldout_phantom(cfg, tasks) if self.dist.is_main else []
            self.dist.barrier()
            return PhantomStream(tasks, self.model_config, aug, seed, cfg.phantom_size, cfg.acquisition), val
        train, val = split_samples(cfg, tasks)
        if not train:
            raise UsedgeError(f"No training samples for the selected tasks in {cfg.data}.",
                              fix="check --data and --tasks (`usedge data summary DIR`).")
        by_task: dict[str, list] = {}
        for it in load_items(train, self.model_config.input_size, self.model_config.resize):
            by_task.setdefault(it.task.id, []).append(it)
        return ItemDataset(by_task, self.model_config, aug, seed), val

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

    def compute_loss(self, batch: MixedBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step's loss (mean over its tasks) and each task's own loss; subclasses add distillation."""
        out = self.net(batch.images, groups=batch.groups)
        per_task = {t: task_loss(self.model.task_specs[t], out, y) for t, y in batch.targets.items()}
        return torch.stack(list(per_task.values())).mean(), per_task

    def _batches(self):
        """Mixed batches, epoch after epoch (the sampler is re-seeded per epoch, so resuming is exact)."""
        epoch = self.start_epoch
        while True:
            self.batch_sampler.set_epoch(epoch)
            yield from self.loader
            epoch += 1

    def _step(self, batch: MixedBatch) -> dict[str, float]:
        batch = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            loss, per_task = self.compute_loss(batch)
        tasks = list(per_task)  # every rank drew the same tasks: reduce the step's and each task's loss at once
        value, *task_values = self.dist.mean_many([float(loss.detach())] + [float(per_task[t].detach()) for t in tasks])
        # every rank sees the same values: all stop together, and the logged losses are the global batch's
        if not math.isfinite(value):
            raise UsedgeError(f"Loss of tasks {batch.tasks} became {value} at step {self.sched.last_epoch}.",
                              fix="lower --lr; the last good checkpoint is in " + str(self.out / "last"))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.after_backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], 5.0)
        self.opt.step()
        self.sched.step()
        return dict(zip(tasks, task_values))

    def fit(self, progress: bool = True) -> dict:
        from rich.progress import Progress

        batches = self._batches()
        show = progress and self.dist.is_main
        with Progress(disable=not show, transient=False) as bar:
            job = bar.add_task("train", total=(self.cfg.epochs - self.start_epoch) * self.steps)
            log_lines = show and not bar.console.is_terminal  # a log file: a line every LOG_EVERY steps
            for epoch in range(self.start_epoch, self.cfg.epochs):
                self._train_mode()
                t0, losses = time.perf_counter(), {}
                for step in range(1, self.steps + 1):
                    for task, value in self._step(next(batches)).items():
                        losses.setdefault(task, []).append(value)
                    text = self._describe(epoch, losses)
                    bar.update(job, advance=1, description=text)
                    if log_lines and step % LOG_EVERY == 0:
                        rate = (time.perf_counter() - t0) / step
                        print(f"step {epoch * self.steps + step}/{self.cfg.epochs * self.steps} ({rate:.2f} s/step): {text}",
                              flush=True)
                self._end_epoch(epoch, {t: float(np.mean(v)) for t, v in losses.items()}, time.perf_counter() - t0)
        return self.history[-1] if self.history else {}

    def _train_mode(self) -> None:
        self.model.train()
        if self.cfg.freeze_norm:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _describe(self, epoch: int, losses: dict[str, list[float]]) -> str:
        """Progress text: running loss per family (last 50 values per task) and the last held-out scores."""
        fam: dict[str, list[float]] = {}
        for task, v in losses.items():
            family = FAMILIES[get_task(task).kind] if task in TASK_IDS else task  # e.g. 'unlabelled'
            fam.setdefault(family, []).append(float(np.mean(v[-50:])))
        text = f"epoch {epoch + 1}/{self.cfg.epochs} loss " + " ".join(f"{f} {np.mean(v):.3f}" for f, v in fam.items())
        if self.history:
            text += " | val " + describe_families(self.history[-1].get("families", {}))
        return text

    def close(self) -> None:
        """Leave the process group (multi-process runs)."""
        self.dist.close()

    def _end_epoch(self, epoch: int, task_losses: dict[str, float], seconds: float) -> None:
        """Log one epoch. ``train_loss`` is the task-balanced mean (mean of per-task means), so it does not
        swing with which tasks the sampler happened to draw; per-task means are logged as ``loss.<task>``."""
        if not self.dist.is_main:  # rank 0 evaluates and writes; the others wait for it
            self.dist.barrier()
            return
        with warnings.catch_warnings():   # validation picks checkpoints by the primary metrics, not by AUC
            warnings.simplefilter("ignore", UndefinedAUCWarning)
            report = evaluate_model(self.model, self.model_config, self.val, device=str(self.device)) if self.val else None
            results = report.results() if report else {}
        score, families = score_of(results), family_scores(report.family_summary(results) if report else {})
        loss = float(np.mean(list(task_losses.values())))
        row = {"epoch": epoch + 1, "step": (epoch + 1) * self.steps, "train_loss": loss, "val_score": score,
               "seconds": seconds, "families": families, **{f"loss.{t}": v for t, v in sorted(task_losses.items())},
               **{f"{t}.{k}": v for t, r in results.items() for k, v in r.items() if k != "n"}}
        self.history.append(row)
        print(f"epoch {epoch + 1}: val score {score:.4f} ({describe_families(families)}), {seconds:.0f} s", flush=True)
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
        flat = [{k: v for k, v in row.items() if k != "families"} |
                {f"family.{f}": v for f, v in row.get("families", {}).items()} for row in self.history]
        keys = list(dict.fromkeys(k for row in flat for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        atomic_write_text(self.out / "metrics.csv", buf.getvalue())
        atomic_write_json(self.out / "history.json", self.history)
        plot_curves(self.history, self.out / "curves.png")

    def _resume(self) -> None:
        state = load_train_state(self.out / "last")
        if state is None:
            return
        from usedge.models.checkpoint import load_checkpoint

        model, _, _ = load_checkpoint(self.out / "last", device=str(self.device))
        self.model.load_state_dict(model.state_dict())
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.start_epoch, self.best, self.history = state["epoch"], state["best"], list(state["history"])
        self.load_extra_state(state.get("extra", {}))


def plot_curves(history: list[dict], path: Path) -> None:
    """Train loss, val score and the per-family held-out scores per epoch, as a PNG (skipped quietly if
    matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    steps = [r["step"] for r in history]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    axes[0].plot(steps, [r["train_loss"] for r in history], marker="o")
    axes[0].set(title="train loss (task-balanced)", xlabel="step")
    axes[1].plot(steps, [r["val_score"] for r in history], marker="o", color="tab:green")
    axes[1].set(title="held-out score", xlabel="step")
    names = {"seg": "Dice", "cls": "accuracy", "det": "IoU"}
    for fam, name in names.items():
        axes[2].plot(steps, [r.get("families", {}).get(fam, float("nan")) for r in history], marker="o", label=name)
    axes[2].set(title="held-out per family", xlabel="step", ylim=(0, 1))
    axes[2].legend(fontsize=8)
    axes[3].plot(steps, [r.get("families", {}).get("lmk", float("nan")) for r in history], marker="o", color="tab:red")
    axes[3].set(title="landmark MRE (px, lower is better)", xlabel="step")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    from usedge._io import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue())
