"""Unlabelled frames for distillation (teacher-only targets): the frames of usedge.data.unlabelled as a
torch Dataset with augmentation."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from usedge.data.transforms import AugmentConfig, normalize, photometric, random_affine
from usedge.models.presets import ModelConfig


class UnlabelledDataset(torch.utils.data.Dataset):
    """Held frames -> normalised tensors (photometric and mild geometric augmentation when ``augment``)."""

    def __init__(self, images: np.ndarray, config: ModelConfig, augment: AugmentConfig | None = None,
                 seed: int = 0) -> None:
        self.images, self.config, self.augment = images, config, augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = self.images[i]
        if self.augment is not None:
            size = self.config.input_size
            m = random_affine(self.rng, size, self.augment, geometric=True)
            image = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
            image = photometric(self.rng, image, self.augment)
        return torch.from_numpy(normalize(image, self.config.mean, self.config.std))


def collate_images(batch: list[torch.Tensor]) -> tuple[torch.Tensor, None]:
    return torch.stack(batch), None
