"""``usedge distill``: the training loop of :mod:`usedge.train.loop` with teachers in it.

Each labelled step is a mixed-task batch, as in training: one student pass and one pass per teacher over
the whole batch, and each task's loss (ground truth + distillation against the task's teacher) on its own
samples. Tasks named in ``no_kd`` learn from their labels only (where a teacher is worse than the ground
truth). Every ``unlabelled_every``-th step instead takes a batch of unlabelled frames and distils ALL the
student's tasks on it. Feature distillation
matches the student's dense map to each teacher's through a 1×1 adapter (kept in ``last/train_state.pt``,
not in the student). With ``teacher_cache`` the labelled batches come from a fixed set whose teacher answers
were computed once (usedge.distill.cache): no teacher call per step. Multi-process under torchrun exactly like
``usedge train``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from usedge.data.transforms import AugmentConfig
from usedge.data.unlabelled import read_unlabelled
from usedge.distill.cache import (
    VARIANTS,
    CachedDataset,
    CacheSpec,
    TeacherCache,
    build_cache,
    cache_path,
    phantom_digest,
    phantom_source,
)
from usedge.distill.losses import FeatureAdapters, KDWeights, task_kd
from usedge.distill.teachers import FeatureTap, Teacher, TeacherSet, load_teacher
from usedge.distill.unlabelled import UnlabelledDataset, collate_images
from usedge.errors import ConfigError
from usedge.models.presets import ModelConfig
from usedge.train.batches import MixedBatch
from usedge.train.distributed import ShardedBatchSampler
from usedge.train.loop import PHANTOM, TrainConfig, Trainer, heldout_phantom
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
    no_kd: tuple[str, ...] = ()        # tasks trained on labels only
    teacher_cache: str = ""            # folder of teacher caches ("": the teachers run at every step)
    cache_per_task: int = 200          # phantom images per task in the cached set
    cache_variants: tuple[str, ...] = VARIANTS
    teacher_acquisition: str = ""      # cached set: the teachers answer this render, the student sees its paired
                                       # ``acquisition`` render of the same anatomy ("": the same images)

    def __post_init__(self) -> None:
        if self.teacher_acquisition and self.teacher_acquisition != self.acquisition and not self.teacher_cache:
            raise ConfigError("A teacher acquisition other than the student's needs a teacher cache (the paired "
                              "renders are made when the cache is built).",
                              fix="add --teacher-cache DIR, or drop --teacher-acquisition.")


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
    def _load_teachers(self) -> TeacherSet:
        if getattr(self, "teacher_set", None) is None:
            cfg: DistillConfig = self.cfg  # type: ignore[assignment]
            loaded = self._teachers or [load_teacher(p, str(self.device)) for p in cfg.teachers]
            self.teacher_set = TeacherSet(loaded, list(self.model_config.tasks), cfg.task_teacher)
        return self.teacher_set

    def _data(self, tasks: list[str]):
        """With a teacher cache: the cached set (built by the main process if absent) and the held-out split."""
        cfg: DistillConfig = self.cfg  # type: ignore[assignment]
        if not cfg.teacher_cache:
            return super()._data(tasks)
        if cfg.data != PHANTOM:
            raise ConfigError("--teacher-cache is built from phantom data.",
                              fix="use --data phantom with --teacher-cache, or distil a stored set live.")
        teachers = self._load_teachers()
        spec = CacheSpec(per_task=cfg.cache_per_task, seed=cfg.seed + 3000, variants=tuple(cfg.cache_variants),
                         phantom_size=cfg.phantom_size, feature_size=32 if self.kd.feature > 0 else 0,
                         acquisition=cfg.teacher_acquisition or cfg.acquisition,
                         student_acquisition=("" if cfg.teacher_acquisition in ("", cfg.acquisition) else cfg.acquisition))
        val = heldout_phantom(cfg, tasks) if self.dist.is_main else []
        digest = phantom_digest(tasks, spec)
        if self.dist.is_main:
            build_cache(teachers, phantom_source(tasks, spec), digest, self.model_config, spec, cfg.teacher_cache)
        self.dist.barrier()
        cache = TeacherCache(cache_path(teachers, self.model_config, spec, digest, cfg.teacher_cache))
        aug = AugmentConfig(ultrasound=cfg.us_augment) if cfg.augment else None
        return CachedDataset(cache, self.model_config, aug, cfg.seed + 1000 * self.dist.rank), val

    def extra_parameters(self) -> list[torch.nn.Parameter]:
        self._load_teachers()
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
        ds = UnlabelledDataset(images, self.model_config, AugmentConfig(ultrasound=cfg.us_augment) if cfg.augment else None,
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
                x, _ = next(frames)
            except StopIteration:
                frames = iter(self.unlabelled)
                x, _ = next(frames)
            every = slice(0, int(x.shape[0]))
            yield MixedBatch(x, {t: every for t in self.model.task_ids if self._kd_on(t)}, {})

    def _kd_on(self, task: str) -> bool:
        return task in self.teacher_set.owner and task not in self.cfg.no_kd  # type: ignore[attr-defined]

    def compute_loss(self, batch: MixedBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per task: ``gt`` × label loss (labelled samples) + ``kd`` × distillation loss (KD tasks), on the
        task's own samples; the step's loss is their mean, plus the feature term over the whole batch.
        Unlabelled batches report their total as ``unlabelled``."""
        kd_groups = {t: sl for t, sl in batch.groups.items() if self._kd_on(t)}
        want_features = self.kd.feature > 0 and bool(kd_groups)   # (no task distilled: labels only)
        with FeatureTap(self.model, enabled=want_features) as tap:
            student = self.net(batch.images, groups=batch.groups)
        if batch.teacher is not None:       # a teacher cache: the answers were computed once
            teacher = {k: v for k, v in batch.teacher.items() if not k.startswith("feature/")}
            t_feats = {k.removeprefix("feature/"): v for k, v in batch.teacher.items()
                       if k.startswith("feature/") and want_features}
        else:
            teacher, t_feats = self.teacher_set.predict(batch.images, list(kd_groups), self.model_config,
                                                        features=want_features, groups=kd_groups)
        per_task: dict[str, torch.Tensor] = {}
        for t in batch.tasks:
            spec = self.model.task_specs[t]
            terms = []
            if t in batch.targets:
                terms.append(self.kd.gt * task_loss(spec, student, batch.targets[t]))
            if t in kd_groups:
                terms.append(self.kd.kd * task_kd(spec, student, teacher, self.kd))
            if terms:
                per_task[t] = torch.stack(terms).sum()
        loss = torch.stack(list(per_task.values())).mean() if per_task else batch.images.new_zeros(())
        if want_features and tap.value is not None and t_feats:
            loss = loss + self.kd.feature * self.adapters.loss(tap.value, t_feats)
        return loss, (per_task if batch.targets else {UNLABELLED: loss})

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
