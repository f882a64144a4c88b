"""Per-task heads. Dense heads read the fused dense map (stride 4, or 2 with ``dense_stride=2``), global heads
the stride-32 feature.

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
    #: the backbone maps the neck reads (the frame gate's statistics; None when the neck did not run)
    pyramid: list[torch.Tensor] | None = None

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
    to absolute xyxy in [0, 1] so the output contract matches the baseline's (boxes, objectness).

    Two 1×1 convs (``block``: the 4 side distances, ``block_obj``: the objectness logit) rather than one
    5-channel conv split in the graph: OpenVINO runs a channel split of its blocked layout with a reference
    kernel (~45 µs per head at 128², benchmarks/RESULTS.md), and the decode is one multiply-add against a
    constant grid instead of four slices and a stack. Checkpoints of the 5-channel form load unchanged
    (:meth:`_load_from_state_dict` splits ``block``)."""

    needs_dense = True

    def __init__(self, spec: TaskSpec, channels: int) -> None:
        super().__init__()
        self.boxes_name, self.obj_name = spec.output_names
        self.block = nn.Conv2d(channels, 4, 1)
        self.block_obj = nn.Conv2d(channels, 1, 1)
        self.register_buffer("sign", torch.tensor([-1.0, -1.0, 1.0, 1.0]).view(1, 4, 1, 1), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        weight, bias = state_dict.get(prefix + "block.weight"), state_dict.get(prefix + "block.bias")
        if weight is not None and weight.shape[0] == 5 and prefix + "block_obj.weight" not in state_dict:
            state_dict[prefix + "block.weight"], state_dict[prefix + "block_obj.weight"] = weight[:4], weight[4:]
            if bias is not None:
                state_dict[prefix + "block.bias"], state_dict[prefix + "block_obj.bias"] = bias[:4], bias[4:]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, f: Features) -> dict[str, torch.Tensor]:
        dist = torch.sigmoid(self.block(f.fused))  # left, top, right, bottom as fractions of the image
        h, w = dist.shape[-2:]
        cy = ((torch.arange(h, device=dist.device, dtype=dist.dtype) + 0.5) / h).view(h, 1).expand(h, w)
        cx = ((torch.arange(w, device=dist.device, dtype=dist.dtype) + 0.5) / w).view(1, w).expand(h, w)
        centre = torch.stack([cx, cy, cx, cy]).unsqueeze(0)          # 1×4×H×W: x0, y0, x1, y1 of a zero box
        boxes = (centre + self.sign.to(dist.dtype) * dist).clamp(0.0, 1.0)
        return {self.boxes_name: boxes, self.obj_name: self.block_obj(f.fused)}


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
