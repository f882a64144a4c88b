"""Samples of the challenge layout -> items held in memory at the model's input size (the training batches
are built from them by :mod:`usedge.train.batches`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from usedge.data.fmcuia import Sample
from usedge.data.transforms import resize_sample, to_gray_or_bgr_uint8, to_rgb
from usedge.tasks import TaskSpec


@dataclass
class Item:
    """One resized sample held in memory (image uint8 RGB size×size, label in resized pixels)."""

    task: TaskSpec
    image: np.ndarray
    label: object
    index: int


def load_items(samples: Sequence[Sample], size: int, resize: str = "area") -> list[Item]:
    """Read and resize every sample once (phantom and challenge sets fit in memory at 256²); ``resize`` is
    the model's declared mode (:data:`usedge.data.transforms.RESIZE_MODES`)."""
    items = []
    for i, s in enumerate(samples):
        image = to_rgb(to_gray_or_bgr_uint8(s.load_image()))
        label = s.target()
        image, label = resize_sample(image, label, s.task, size, resize)
        items.append(Item(s.task, image, label, i))
    return items

