"""``usedge distill``: the training loop of :mod:`usedge.train.loop` with teachers in it.

Each labelled step draws one task, as in training, and adds to its ground-truth loss the distillation loss
against the task's teacher; every ``unlabelled_every``-th step instead takes a batch of unlabelled frames and
distils ALL the student's tasks on it from one student pass and one pass per teacher. Feature distillation
matches the student's dense map to each teacher's through a 1×1 adapter (kept in ``last/train_state.pt``,
not in the student). Multi-process under torchrun exactly like ``usedge train``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from usedge.data.transforms import AugmentConfig
from usedge.distill.losses import FeatureAdapters, KDWeights, task_kd
from usedge.distill.teachers import FeatureTap, Teacher, TeacherSet, load_teacher
from usedge.distill.unlabelled import UnlabelledDataset, collate_images, read_unlabelled
from usedge.errors import ConfigError
from usedge.models.presets import ModelConfig
from usedge.train.distributed import ShardedBatchSampler
from usedge.train.loop import TrainConfig, Trainer
from usedge.train.losses import task_loss

UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class DistillConfig(TrainConfig):
    """A training run plus its teachers, the task -> teacher map, unlabelled sources and loss weights."""

    teachers: tuple[str, ...] = ()
    task_teacher: dict = field(default_factory=dict)
    unlabelled: tuple[str, ...] = ()
    unlabelled_every: int = 4          # every k-th step is an unlabelled batch (when sources are given)
    unlabelled_stride: int = 1         # keep every n-th frame of a video / cine
    weights: KDWeights = field(default_factory=KDWeights)


class Distiller(Trainer):
    """``Distiller(cfg).fit()``: distil ``cfg.teachers`` into the student ``cfg.model``."""

    def __init__(self, cfg: DistillConfig, model_config: ModelConfig | None = None,
                 teachers: list[Teacher] | None = None) -> None:
        if cfg.unlabelled_every < 2 and cfg.unlabelled:
            raise ConfigError("unlabelled_every must be >= 2 (some steps must be labelled).", fix="use 2..10")
        self.kd = cfg.weights
        self._teachers = teachers
        super().__init__(cfg, model_config=model_config)
        self.unlabelled = self._unlabelled_loader() if cfg.unlabelled else None

    # --- set-up -------------------------------------------------------------------------------------
    def extra_parameters(self) -> list[torch.nn.Parameter]:
        cfg: DistillConfig = self.cfg  # type: ignore[assignment]
        loaded = self._teachers or [load_teacher(p, str(self.device)) for p in cfg.teachers]
        self.teacher_set = TeacherSet(loaded, list(self.model_config.tasks), cfg.task_teacher)
        self.adapters = FeatureAdapters(self._dense_channels(self.model), self._teacher_channels()).to(self.device)
        return list(self.adapters.parameters()) if self.kd.feature > 0 else []

    def _dense_channels(self, model: torch.nn.Module) -> int:
        size = self.model_config.input_size
        x = torch.zeros(1, 3, size, size, device=self.device)
        dense = [t for t, s in model.task_specs.items() if getattr(model.heads[t], "needs_dense", True)]
        if not dense:
            return 0
        with torch.no_grad(), FeatureTap(model) as tap:
            was = model.training
            model.eval()
            model(x, tasks=dense[:1])
            model.train(was)
        return int(tap.value.shape[1]) if tap.value is not None else 0

    def _teacher_channels(self) -> dict[str, int]:
        out = {}
        for t in self.teacher_set.teachers:
            size = t.config.input_size
            dense = [k for k, s in t.model.task_specs.items() if s.kind.value in ("segmentation", "detection")]
            if not dense:
                continue
            with torch.no_grad(), FeatureTap(t.model) as tap:
                t.model(torch.zeros(1, 3, size, size, device=self.device), tasks=dense[:1])
            if tap.value is not None:
                out[t.name] = int(tap.value.shape[1])
        return out

    def _unlabelled_loader(self) -> torch.utils.data.DataLoader:
        cfg: DistillConfig = self.cfg  # type: ignore[assignment]
        images, self.unlabelled_ids = read_unlabelled(cfg.unlabelled, self.model_config.input_size,
                                                      every=cfg.unlabelled_stride)
        d = self.dist
        ds = UnlabelledDataset(images, self.model_config, AugmentConfig() if cfg.augment else None,
                               cfg.seed + 1000 * d.rank)
        return torch.utils.data.DataLoader(
            ds, batch_sampler=ShardedBatchSampler(len(ds), cfg.batch_size, d.rank, d.world, cfg.seed + 7919),
            collate_fn=collate_images)

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {f"adapters.{k}": v.detach().cpu() for k, v in self.adapters.state_dict().items()}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        own = {k.removeprefix("adapters."): v for k, v in state.items() if k.startswith("adapters.")}
        if own:
            self.adapters.load_state_dict(own)

    def checkpoint_meta(self) -> dict:
        return {"teachers": [{"name": t.name, "path": t.path, "arch": t.config.arch, "backbone": t.config.backbone,
                              "tasks": t.tasks} for t in self.teacher_set.teachers],
                "task_teacher": self.teacher_set.assignment(), "distill": asdict(self.kd)}

    # --- steps --------------------------------------------------------------------------------------
    def _batches(self):
        labelled = super()._batches()
        if self.unlabelled is None:
            yield from labelled
            return
        frames, step = iter(self.unlabelled), 0
        while True:
            step += 1
            if step % self.cfg.unlabelled_every:  # type: ignore[attr-defined]
                yield next(labelled)
                continue
            try:
                yield UNLABELLED, next(frames)
            except StopIteration:
                frames = iter(self.unlabelled)
                yield UNLABELLED, next(frames)

    def compute_loss(self, task: str, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        tasks = [t for t in self.model.task_ids if t in self.teacher_set.owner] if task == UNLABELLED else [task]
        want_features = self.kd.feature > 0
        with FeatureTap(self.model, enabled=want_features) as tap:
            student = self.net(x, tasks=tasks)
        teacher, t_feats = self.teacher_set.predict(x, tasks, self.model_config, features=want_features)
        loss = x.new_zeros(())
        if y is not None:
            loss = loss + self.kd.gt * task_loss(self.model.task_specs[task], student, y)
        kd = [task_kd(self.model.task_specs[t], student, teacher, self.kd) for t in tasks if t in self.teacher_set.owner]
        if kd:
            loss = loss + self.kd.kd * torch.stack(kd).mean()
        if want_features and tap.value is not None and t_feats:
            loss = loss + self.kd.feature * self.adapters.loss(tap.value, t_feats)
        return loss

    def after_backward(self) -> None:
        """The adapters live outside the DDP-wrapped student: average their gradients here."""
        if not self.dist.enabled or self.kd.feature <= 0:
            return
        import torch.distributed as dist

        for p in self.adapters.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad /= self.dist.world
