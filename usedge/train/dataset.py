"""Samples of the challenge layout -> model-ready tensors, cached in memory at the model's input size."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from usedge.data.fmcuia import Sample
from usedge.data.transforms import (ORIENTATION_TASKS, AugmentConfig, apply_affine, normalize, photometric,
                                    random_affine, resize_sample, to_gray_or_bgr_uint8, to_rgb)
from usedge.models.presets import ModelConfig
from usedge.tasks import TaskKind, TaskSpec


@dataclass
class Item:
    """One resized sample held in memory (image uint8 RGB size×size, label in resized pixels)."""

    task: TaskSpec
    image: np.ndarray
    label: object
    index: int


def load_items(samples: Sequence[Sample], size: int) -> list[Item]:
    """Read and resize every sample once (phantom and challenge sets fit in memory at 256²)."""
    items = []
    for i, s in enumerate(samples):
        image = to_rgb(to_gray_or_bgr_uint8(s.load_image()))
        label = _raw_label(s)
        image, label = resize_sample(image, label, s.task, size)
        items.append(Item(s.task, image, label, i))
    return items


def _raw_label(s: Sample) -> object:
    kind = s.task.kind
    if kind is TaskKind.SEGMENTATION:
        return s.load_mask()
    if kind is TaskKind.CLASSIFICATION:
        return s.label
    if kind is TaskKind.DETECTION:
        return s.box
    return s.points


class TaskDataset(torch.utils.data.Dataset):
    """Items of ONE task -> (image tensor 3×S×S, target). Augments when ``augment`` is given."""

    def __init__(self, items: Sequence[Item], config: ModelConfig, augment: AugmentConfig | None = None,
                 seed: int = 0) -> None:
        self.items = list(items)
        self.config = config
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, object]:
        item = self.items[i]
        image, label = item.image, item.label
        size = self.config.input_size
        if self.augment is not None:
            m = random_affine(self.rng, size, self.augment, geometric=item.task.id not in ORIENTATION_TASKS)
            image, label = apply_affine(m, image, label, item.task, size)
            image = photometric(self.rng, image, self.augment)
        x = torch.from_numpy(normalize(image, self.config.mean, self.config.std))
        return x, target_tensor(item.task, label, size)


def target_tensor(spec: TaskSpec, label: object, size: int) -> torch.Tensor:
    """Label in resized pixels -> training target (mask long H×W; class long; box / points in [0, 1])."""
    if spec.kind is TaskKind.SEGMENTATION:
        return torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64))
    if spec.kind is TaskKind.CLASSIFICATION:
        return torch.tensor(int(label))
    return torch.tensor(np.asarray(label, np.float32) / size)


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*batch)
    return torch.stack(xs), torch.stack(ys)
