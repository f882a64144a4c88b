"""Distillation losses per task kind, on usedge's named outputs (student vs teacher, same names).

- classification: KL(teacher ‖ student) of temperature-softened class distributions, × T².
- segmentation: pixel-wise KL (T), channel-wise distribution KL (CWD: each channel's spatial softmax, T),
  and soft Dice to the teacher's argmax mask. Teacher logits are resized to the student's grid.
- detection: objectness as soft BCE targets (the teacher's sigmoid per cell), and L1 + GIoU of the
  student's box at the teacher's best cell to the teacher's best box.
- landmarks: smooth-L1 to the teacher's points (normalised coordinates, as the GT loss).
- features: MSE between the student's dense map (through a 1×1 adapter) and the teacher's, each
  standardised per channel, at the student's resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from usedge.tasks import TaskKind, TaskSpec
from usedge.train.losses import dice_loss, giou


@dataclass(frozen=True)
class KDWeights:
    """Weights of the distillation terms; ``gt`` weighs the ground-truth loss where labels exist."""

    gt: float = 1.0
    kd: float = 1.0
    temperature: float = 2.0
    seg_pixel: float = 1.0
    seg_cwd: float = 0.5
    seg_dice: float = 0.5
    det_obj: float = 1.0
    det_box: float = 5.0
    landmark: float = 10.0
    feature: float = 0.5


def _resize_like(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return t if t.shape[-2:] == ref.shape[-2:] else F.interpolate(t, size=ref.shape[-2:], mode="bilinear",
                                                                  align_corners=False)


def kl_soft(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, dim: int = 1) -> torch.Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)) × T², averaged over everything but ``dim``."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=dim)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=dim)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=dim)
    return kl.mean() * temperature ** 2


def classification_kd(s: torch.Tensor, t: torch.Tensor, w: KDWeights) -> torch.Tensor:
    return kl_soft(s, t, w.temperature)


def segmentation_kd(s: torch.Tensor, t: torch.Tensor, w: KDWeights) -> torch.Tensor:
    t = _resize_like(t, s)
    n, c = s.shape[:2]
    pixel = kl_soft(s, t, w.temperature, dim=1)
    cwd = kl_soft(s.reshape(n * c, -1), t.reshape(n * c, -1), w.temperature, dim=1)
    dice = dice_loss(s, t.argmax(dim=1)) if c > 1 else s.new_zeros(())
    return w.seg_pixel * pixel + w.seg_cwd * cwd + w.seg_dice * dice


def detection_kd(s_boxes: torch.Tensor, s_obj: torch.Tensor, t_boxes: torch.Tensor, t_obj: torch.Tensor,
                 w: KDWeights) -> torch.Tensor:
    t_obj, t_boxes = _resize_like(t_obj, s_obj), _resize_like(t_boxes, s_boxes)
    obj = F.binary_cross_entropy_with_logits(s_obj, torch.sigmoid(t_obj))
    n = s_obj.shape[0]
    best = t_obj.reshape(n, -1).argmax(dim=1)
    t_box = t_boxes.reshape(n, 4, -1)[torch.arange(n), :, best]
    s_box = s_boxes.reshape(n, 4, -1)[torch.arange(n), :, best]
    box = F.l1_loss(s_box, t_box) + (1 - giou(s_box, t_box)).mean()
    return w.det_obj * obj + w.det_box * box


def landmark_kd(s: torch.Tensor, t: torch.Tensor, w: KDWeights) -> torch.Tensor:
    return w.landmark * F.smooth_l1_loss(s, t, beta=0.02)


def task_kd(spec: TaskSpec, student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor],
            w: KDWeights) -> torch.Tensor:
    """The distillation loss of one task from the student's and teacher's named outputs."""
    names = spec.output_names
    s = [student[n].float() for n in names]
    t = [teacher[n].float() for n in names]
    if spec.kind is TaskKind.CLASSIFICATION:
        return classification_kd(s[0], t[0], w)
    if spec.kind is TaskKind.SEGMENTATION:
        return segmentation_kd(s[0], t[0], w)
    if spec.kind is TaskKind.DETECTION:
        return detection_kd(s[0], s[1], t[0], t[1], w)
    return landmark_kd(s[0], t[0], w)


def _standardise(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-4)
    return (x - mean) / std


class FeatureAdapters(nn.Module):
    """One 1×1 conv per teacher mapping the student's dense map to that teacher's channel count."""

    def __init__(self, student_channels: int, teacher_channels: dict[str, int]) -> None:
        super().__init__()
        self.adapters = nn.ModuleDict({name: nn.Conv2d(student_channels, c, 1)
                                       for name, c in teacher_channels.items()})

    def loss(self, student: torch.Tensor, teachers: dict[str, torch.Tensor]) -> torch.Tensor:
        terms = []
        for name, t in teachers.items():
            if name in self.adapters:
                s = self.adapters[name](student.float())
                terms.append(F.mse_loss(_standardise(s), _standardise(_resize_like(t, s))))
        return torch.stack(terms).mean() if terms else student.new_zeros(())
