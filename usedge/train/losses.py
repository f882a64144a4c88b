"""Per-kind losses on usedge's named outputs (the same for students and the baseline-b4 teacher)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from usedge.tasks import TaskKind, TaskSpec


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over foreground classes (multi-class softmax)."""
    prob = logits.float().softmax(dim=1)[:, 1:]
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()[:, 1:]
    inter = (prob * onehot).sum(dim=(0, 2, 3))
    denom = prob.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    return 1 - ((2 * inter + eps) / (denom + eps)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CE + Dice at the label's resolution (stride-4 logits are upsampled bilinearly first)."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits.float(), size=target.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits.float(), target) + dice_loss(logits, target)


def giou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Generalised IoU of xyxy boxes, shape (..., 4) -> (...)."""
    lt, rb = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[..., 2:] - x[..., :2]).clamp(min=0).prod(-1)  # noqa: E731
    union = area(a) + area(b) - inter
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).prod(-1)
    iou = inter / (union + eps)
    return iou - (hull - union) / (hull + eps)


def positive_cells(boxes: torch.Tensor, h: int, w: int, radius: float = 0.25) -> torch.Tensor:
    """(N, h, w) bool: cells whose centre lies in the box's central region (its centre cell always)."""
    cy = (torch.arange(h, device=boxes.device) + 0.5) / h
    cx = (torch.arange(w, device=boxes.device) + 0.5) / w
    ctr = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * radius
    inside_x = (cx.view(1, 1, w) - ctr[:, 0, None, None]).abs() <= half[:, 0, None, None]
    inside_y = (cy.view(1, h, 1) - ctr[:, 1, None, None]).abs() <= half[:, 1, None, None]
    pos = inside_x & inside_y
    ix = (ctr[:, 0] * w).long().clamp(0, w - 1)
    iy = (ctr[:, 1] * h).long().clamp(0, h - 1)
    pos[torch.arange(len(boxes)), iy, ix] = True
    return pos


def detection_loss(boxes: torch.Tensor, objectness: torch.Tensor, target: torch.Tensor,
                   box_weight: float = 5.0) -> torch.Tensor:
    """Balanced objectness BCE + (L1 + GIoU) of the boxes predicted at positive cells."""
    n, _, h, w = boxes.shape
    pos = positive_cells(target, h, w)
    obj = objectness[:, 0].float()
    bce = F.binary_cross_entropy_with_logits(obj, pos.float(), reduction="none")
    obj_loss = bce[pos].mean() + bce[~pos].mean()
    pred = boxes.float().permute(0, 2, 3, 1)[pos]
    gt = target[:, None, None, :].expand(n, h, w, 4)[pos]
    box_loss = F.l1_loss(pred, gt) + (1 - giou(pred, gt)).mean()
    return obj_loss + box_weight * box_loss


def task_loss(spec: TaskSpec, out: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """The ground-truth loss of one task from the model's named outputs."""
    if spec.kind is TaskKind.SEGMENTATION:
        return segmentation_loss(out[spec.output_names[0]], target)
    if spec.kind is TaskKind.CLASSIFICATION:
        return F.cross_entropy(out[spec.output_names[0]].float(), target)
    if spec.kind is TaskKind.DETECTION:
        return detection_loss(out[spec.output_names[0]], out[spec.output_names[1]], target)
    return 10.0 * F.smooth_l1_loss(out[spec.output_names[0]].float(), target, beta=0.02)
