"""Mixed-task batches: every training step draws several tasks and runs all their images through ONE
forward; each head's loss sees only its own samples.

- :class:`TaskSampler` draws the tasks of a step (``uniform``, ``size``: p ∝ n, ``temperature``: p ∝ n^(1/T)).
- :class:`MixedBatchSampler` turns a step into keys ``(task, index, draw)``: ``tasks_per_batch`` distinct
  tasks × ``batch_size / tasks_per_batch`` samples each, grouped by task. It is seeded per epoch
  (:meth:`~MixedBatchSampler.set_epoch`), so a resumed run draws what the uninterrupted one would have.
  Under torchrun every rank draws the same tasks and takes its own share of each task's samples.
- :class:`ItemDataset` (images held in memory, from a data set on disk) and :class:`PhantomStream` (fresh,
  seeded phantom images generated in the DataLoader's worker processes) map a key to ``(task, x, target)``;
  the augmentation RNG is derived from the key, so results do not depend on which worker ran it.
- :func:`collate_mixed` builds a :class:`MixedBatch`: the stacked images, ``groups`` (task -> slice of the
  batch) and ``targets`` (task -> stacked targets).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from usedge.data.transforms import AugmentConfig, augment, normalize, resize_sample, to_rgb
from usedge.errors import ConfigError
from usedge.models.presets import ModelConfig
from usedge.tasks import ALL_TASKS, TaskKind, TaskSpec, get_task

SAMPLING = ("uniform", "size", "temperature")
TASK_NUMBER = {t.id: i for i, t in enumerate(ALL_TASKS)}

Key = tuple[str, int, int]  # (task id, sample index within the task, unique draw number)


class TaskSampler:
    """Draws the tasks of a step: ``uniform``; ``size`` (p ∝ n); ``temperature`` (p ∝ n^(1/T))."""

    def __init__(self, sizes: Mapping[str, int | None], mode: str = "uniform", temperature: float = 2.0) -> None:
        if mode not in SAMPLING:
            raise ConfigError(f"Unknown sampling '{mode}'.", fix=f"use one of: {', '.join(SAMPLING)}.")
        if mode == "temperature" and temperature <= 0:
            raise ConfigError(f"Sampling temperature must be > 0, got {temperature}.", fix="e.g. --temperature 2")
        self.tasks = list(sizes)
        n = np.array([max(1, sizes[t] or 1) for t in self.tasks], float)  # None: an endless stream
        w = {"uniform": np.ones_like(n), "size": n, "temperature": n ** (1.0 / max(temperature, 1e-9))}[mode]
        self.p = w / w.sum()

    def draw(self, rng: np.random.Generator, k: int) -> list[str]:
        """``k`` distinct tasks (all of them when k >= the number of tasks), in the sampler's task order."""
        if k >= len(self.tasks):
            return list(self.tasks)
        picked = rng.choice(len(self.tasks), size=k, replace=False, p=self.p)
        return [self.tasks[i] for i in sorted(picked)]


class MixedBatchSampler(torch.utils.data.Sampler):
    """``steps`` batches of keys per epoch; each batch holds ``per_task`` samples of each drawn task.

    Args:
        sizes: task -> number of stored samples; ``None`` values mean an endless stream (phantom).
        tasks_per_batch: distinct tasks in one step (capped at the number of tasks).
        batch_size: global images per step; must be a multiple of ``tasks_per_batch * world``.
    """

    def __init__(self, sizes: Mapping[str, int | None], sampler: TaskSampler, batch_size: int,
                 tasks_per_batch: int, steps: int, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        k = min(tasks_per_batch, len(sizes))
        if k < 1 or batch_size % (k * world):
            raise ConfigError(f"batch size {batch_size} does not split into {k} tasks x {world} process(es).",
                              fix=f"use a --batch-size that is a multiple of {k * world} "
                                  "(or change --tasks-per-batch).")
        self.sizes, self.sampler, self.k = dict(sizes), sampler, k
        self.per_task = batch_size // k
        self.steps, self.seed, self.rank, self.world = steps, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[Key]]:
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, 7])
        perms: dict[str, tuple[np.ndarray, int]] = {}
        for step in range(self.steps):
            keys: list[Key] = []
            first = (self.epoch * self.steps + step) * self.k * self.per_task
            for task in self.sampler.draw(rng, self.k):
                for _ in range(self.per_task):
                    draw = first + len(keys)
                    keys.append((task, self._index(task, rng, perms, draw), draw))
            yield self._mine(keys)

    def _index(self, task: str, rng: np.random.Generator, perms: dict, draw: int) -> int:
        n = self.sizes[task]
        if n is None:
            return draw
        perm, pos = perms.get(task, (None, n))
        if pos >= n:  # a new pass over this task's samples
            perm, pos = rng.permutation(n), 0
        perms[task] = (perm, pos + 1)
        return int(perm[pos])

    def _mine(self, keys: list[Key]) -> list[Key]:
        """This rank's share: within each task group, items rank, rank + world, ..."""
        if self.world == 1:
            return keys
        out, per = [], self.per_task
        for g in range(0, len(keys), per):
            out.extend(keys[g:g + per][self.rank::self.world])
        return out


@dataclass
class MixedBatch:
    """Images of several tasks in one tensor: ``groups[task]`` is that task's slice, ``targets[task]`` its
    stacked targets (masks long N×H×W; classes long N; boxes / points float in [0, 1]). ``teacher``, when
    the samples came from a teacher cache (usedge.distill.cache): each task's cached teacher outputs over
    its slice, and ``feature/<teacher>`` dense maps over the whole batch."""

    images: torch.Tensor
    groups: dict[str, slice]
    targets: dict[str, torch.Tensor]
    teacher: dict[str, torch.Tensor] | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self.groups)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device) -> MixedBatch:
        move = lambda d: {k: v.to(device, non_blocking=True) for k, v in d.items()}  # noqa: E731
        return MixedBatch(self.images.to(device, non_blocking=True), self.groups, move(self.targets),
                          None if self.teacher is None else move(self.teacher))


def collate_mixed(samples: Sequence[tuple]) -> MixedBatch:
    """``(task, x, target)`` samples (grouped by task, as the sampler yields them) -> :class:`MixedBatch`;
    ``(task, x, target, teacher)`` samples (a teacher cache) also fill ``teacher``."""
    groups: dict[str, list[int]] = {}
    for i, (task, *_) in enumerate(samples):
        groups.setdefault(task, []).append(i)
    order = [i for idx in groups.values() for i in idx]
    images = torch.stack([samples[i][1] for i in order])
    slices, targets, start = {}, {}, 0
    for task, idx in groups.items():
        slices[task] = slice(start, start + len(idx))
        targets[task] = torch.stack([samples[i][2] for i in idx])
        start += len(idx)
    if len(samples[0]) < 4:
        return MixedBatch(images, slices, targets)
    teacher = {k: torch.stack([samples[i][3][k] for i in idx]) for idx in groups.values()
               for k in samples[idx[0]][3] if not k.startswith("feature/")}
    teacher.update({k: torch.stack([samples[i][3][k] for i in order]) for k in samples[0][3] if k.startswith("feature/")})
    return MixedBatch(images, slices, targets, teacher)


def target_tensor(spec: TaskSpec, label: object, size: int) -> torch.Tensor:
    """Label in input pixels -> training target (mask long H×W; class long; box / points in [0, 1])."""
    if spec.kind is TaskKind.SEGMENTATION:
        return torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64))
    if spec.kind is TaskKind.CLASSIFICATION:
        return torch.tensor(int(label))  # type: ignore[call-overload]
    return torch.tensor(np.asarray(label, np.float32) / size)


def key_rng(seed: int, key: Key, stream: int) -> np.random.Generator:
    """The RNG of one key: depends only on (seed, stream, task, draw)."""
    task, _, draw = key
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream, TASK_NUMBER.get(task, 99), int(draw)])


def prepare(spec: TaskSpec, image: np.ndarray, label: object, config: ModelConfig,
            aug: AugmentConfig | None, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An RGB image at the input size and its label -> (normalised tensor, target), augmented if asked."""
    size = config.input_size
    if aug is not None:
        image, label = augment(rng, image, label, spec, size, aug)
    return torch.from_numpy(normalize(image, config.mean, config.std)), target_tensor(spec, label, size)


class ItemDataset(torch.utils.data.Dataset):
    """Samples held in memory at the input size (``{task: [Item]}``), looked up by key."""

    def __init__(self, items: Mapping[str, Sequence], config: ModelConfig, aug: AugmentConfig | None,
                 seed: int = 0) -> None:
        self.items, self.config, self.aug, self.seed = {t: list(v) for t, v in items.items()}, config, aug, seed

    def sizes(self) -> dict[str, int]:
        return {t: len(v) for t, v in self.items.items()}

    def __len__(self) -> int:
        return sum(self.sizes().values())

    def __getitem__(self, key: Key) -> tuple[str, torch.Tensor, torch.Tensor]:
        task, index, _ = key
        item = self.items[task][index]
        x, y = prepare(item.task, item.image, item.label, self.config, self.aug, key_rng(self.seed, key, 11))
        return task, x, y


class PhantomStream(torch.utils.data.Dataset):
    """Fresh phantom images, one per key: drawn at ``phantom_size`` (the images users see, e.g. 256²),
    resized to the model's input like any stored image, then augmented. The phantom RNG of a key never
    coincides with a stored phantom set's (``usedge data phantom`` uses other streams), so held-out sets
    of any seed stay unseen."""

    STREAM = 2  # generator.SPLIT_NUMBERS uses 0 (train) and 1 (val)

    def __init__(self, tasks: Sequence[str], config: ModelConfig, aug: AugmentConfig | None, seed: int = 0,
                 phantom_size: int = 256, acquisition: str = "default") -> None:
        from usedge.data.phantom.generator import PhantomConfig
        from usedge.data.phantom.physics import ACQUISITIONS

        if acquisition not in ACQUISITIONS:
            raise ConfigError(f"Unknown acquisition ranges '{acquisition}'.", fix=f"use one of: {', '.join(ACQUISITIONS)}")
        self.tasks = [get_task(t).id for t in tasks]
        self.config, self.aug, self.seed = config, aug, seed
        self.phantom = PhantomConfig(size=phantom_size, acquisition=ACQUISITIONS[acquisition])

    def sizes(self) -> dict[str, None]:
        return {t: None for t in self.tasks}

    def __len__(self) -> int:  # endless; DataLoader only needs the sampler's length
        return 0

    def __getitem__(self, key: Key) -> tuple[str, torch.Tensor, torch.Tensor]:
        from usedge.data.phantom.generator import generate_sample

        task = key[0]
        rng = key_rng(self.seed, key, self.STREAM)
        sample = generate_sample(task, rng, self.phantom)
        spec = get_task(task)
        image, label = resize_sample(to_rgb(sample.image), sample.label, spec, self.config.input_size,
                                     self.config.resize)
        x, y = prepare(spec, image, label, self.config, self.aug, rng)
        return task, x, y
