"""Per-task heads. Dense heads read the fused dense map (stride 4, or 2 with ``dense_stride=2``), global heads the stride-32 feature.

The neck's final 3×3 conv is the shared dense trunk, so every dense head is a single 1×1 conv: with 21
dense tasks, per-task 3×3 convs cost ~1.8 GFLOPs at 256² (32.7 ms OpenVINO fp32 on 2 cores for
student-s, 7× its backbone), measured by benchmarks/bench_presets.py; docs/models.md has the numbers.
Every head returns a dict of output name -> tensor, shaped as in usedge/tasks.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from usedge.tasks import TaskKind, TaskSpec


@dataclass
class Features:
    """What heads read: the input size, the stride-32 feature, the fused stride-4 map (None if not computed)."""

    image_size: tuple[int, int]
    top: torch.Tensor
    fused: torch.Tensor | None = None

    def slice(self, sl: slice) -> Features:
        """The features of a slice of the batch (mixed-task training: each head reads its own samples)."""
        return Features(self.image_size, self.top[sl], None if self.fused is None else self.fused[sl])


class SegmentationHead(nn.Module):
    needs_dense = True

    def __init__(self, spec: TaskSpec, channels: int) -> None:
        super().__init__()
        self.name = spec.outputs[0].name
        self.block = nn.Conv2d(channels, spec.num_classes, 1)

    def forward(self, f: Features) -> dict[str, torch.Tensor]:
        return {self.name: self.block(f.fused)}  # stride 4: post-processing resizes to the original image


class ClassificationHead(nn.Module):
    needs_dense = False

    def __init__(self, spec: TaskSpec, channels: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.name = spec.outputs[0].name
        self.drop = nn.Dropout(dropout)
        self.linear = nn.Linear(channels, spec.num_classes)

    def forward(self, f: Features) -> dict[str, torch.Tensor]:
        return {self.name: self.linear(self.drop(f.top.mean(dim=(2, 3))))}


class DetectionHead(nn.Module):
    """Grid head, FCOS-style: per cell an objectness logit and distances to the box sides, decoded in-graph
    to absolute xyxy in [0, 1] so the output contract matches the baseline's (boxes, objectness)."""

    needs_dense = True

    def __init__(self, spec: TaskSpec, channels: int) -> None:
        super().__init__()
        self.boxes_name, self.obj_name = spec.output_names
        self.block = nn.Conv2d(channels, 5, 1)

    def forward(self, f: Features) -> dict[str, torch.Tensor]:
        out = self.block(f.fused)
        h, w = out.shape[-2:]
        cy = (torch.arange(h, device=out.device, dtype=out.dtype) + 0.5) / h
        cx = (torch.arange(w, device=out.device, dtype=out.dtype) + 0.5) / w
        dist = torch.sigmoid(out[:, :4])  # left, top, right, bottom as fractions of the image
        x0 = cx.view(1, 1, w) - dist[:, 0]
        y0 = cy.view(1, h, 1) - dist[:, 1]
        x1 = cx.view(1, 1, w) + dist[:, 2]
        y1 = cy.view(1, h, 1) + dist[:, 3]
        boxes = torch.stack([x0, y0, x1, y1], dim=1).clamp(0.0, 1.0)
        return {self.boxes_name: boxes, self.obj_name: out[:, 4:5]}


class DirectRegressionHead(nn.Module):
    """Pooled stride-32 feature -> linear -> sigmoid -> K points in [0, 1]."""

    needs_dense = False

    def __init__(self, spec: TaskSpec, channels: int) -> None:
        super().__init__()
        self.name, self.k = spec.outputs[0].name, spec.num_points
        self.linear = nn.Linear(channels, 2 * spec.num_points)

    def forward(self, f: Features) -> dict[str, torch.Tensor]:
        pts = torch.sigmoid(self.linear(f.top.mean(dim=(2, 3))))
        return {self.name: pts.view(-1, self.k, 2)}


class HeatmapRegressionHead(nn.Module):
    """K heatmaps on the stride-4 map -> spatial softmax -> soft-argmax (expected x, y) in [0, 1]."""

    needs_dense = True

    def __init__(self, spec: TaskSpec, channels: int) -> None:
        super().__init__()
        self.name, self.k = spec.outputs[0].name, spec.num_points
        self.block = nn.Conv2d(channels, spec.num_points, 1)

    def heatmaps(self, f: Features) -> torch.Tensor:
        return self.block(f.fused)

    def forward(self, f: Features) -> dict[str, torch.Tensor]:
        logits = self.heatmaps(f)
        n, k, h, w = logits.shape
        prob = torch.softmax(logits.flatten(2), dim=-1).view(n, k, h, w)
        xs = (torch.arange(w, device=logits.device, dtype=logits.dtype) + 0.5) / w
        ys = (torch.arange(h, device=logits.device, dtype=logits.dtype) + 0.5) / h
        x = (prob.sum(dim=2) * xs).sum(dim=-1)
        y = (prob.sum(dim=3) * ys).sum(dim=-1)
        return {self.name: torch.stack([x, y], dim=-1)}


def make_head(spec: TaskSpec, top_channels: int, dense_channels: int, regression: str = "heatmap") -> nn.Module:
    """The student head for a task kind (``regression``: 'heatmap' or 'direct')."""
    if spec.kind is TaskKind.SEGMENTATION:
        return SegmentationHead(spec, dense_channels)
    if spec.kind is TaskKind.CLASSIFICATION:
        return ClassificationHead(spec, top_channels)
    if spec.kind is TaskKind.DETECTION:
        return DetectionHead(spec, dense_channels)
    if regression == "direct":
        return DirectRegressionHead(spec, top_channels)
    return HeatmapRegressionHead(spec, dense_channels)
