"""The one-pass multi-task network: backbone and neck run ONCE per batch for every requested task."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from usedge.errors import ConfigError
from usedge.models.backbones import Backbone
from usedge.models.heads import Features, make_head
from usedge.models.neck import FPNNeck
from usedge.tasks import EMBEDDING_OUTPUT, TaskSpec


class MultiTaskNet(nn.Module):
    """Shared backbone -> FPN neck -> per-task heads.

    ``forward(images, tasks=None)`` returns ``{output_name: tensor}`` for the requested task ids (all
    when None). The neck is skipped when no requested head needs the dense map.

    ``forward(images, groups={task: slice})`` is the mixed-batch training form: backbone and neck run once
    on the whole batch, each head only on its task's slice (outputs have that slice's length).
    """

    def __init__(self, backbone: Backbone, tasks: Sequence[TaskSpec], neck_channels: int = 96,
                 dense_channels: int = 64, regression: str = "heatmap") -> None:
        super().__init__()
        self.backbone = backbone
        fine = backbone.reductions[0] == 2
        pyramid = backbone.channels[1:] if fine else backbone.channels
        self.neck = FPNNeck(pyramid, neck_channels, dense_channels, backbone.channels[0] if fine else None)
        self.task_specs = {t.id: t for t in tasks}
        self.heads = nn.ModuleDict({t.id: make_head(t, backbone.channels[-1], dense_channels, regression)
                                    for t in tasks})

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_specs)

    def select(self, tasks: Sequence[str] | None) -> list[str]:
        if tasks is None:
            return self.task_ids
        unknown = [t for t in tasks if t not in self.heads]
        if unknown:
            raise ConfigError(f"This model has no head for {unknown}.", fix=f"use some of: {', '.join(self.task_ids)}")
        return list(tasks)

    def features(self, images: torch.Tensor, dense: bool = True) -> tuple[Features, list[torch.Tensor]]:
        feats = self.backbone(images)
        f = Features(image_size=tuple(images.shape[-2:]), top=feats[-1])
        levels: list[torch.Tensor] = []
        if dense:
            f.fused, levels = self.neck(feats)
            f.pyramid = feats[1:] if self.neck.refine is not None else feats
        return f, levels

    @staticmethod
    def feature_statistics(f: Features) -> torch.Tensor:
        """``frame.embedding`` (N×D), as usedge.models.onnx.add_embedding_output computes it in the graph: per
        map the neck reads, then the dense map, then the stride-32 map (each once), the channel means and SDs."""
        maps = [*(f.pyramid or []), *([f.fused] if f.fused is not None else []), f.top]
        unique = [m for i, m in enumerate(maps) if all(m is not o for o in maps[:i])]
        parts = []
        for m in unique:
            m = m.float()
            mean = m.mean(dim=(2, 3))
            parts += [mean, ((m * m).mean(dim=(2, 3)) - mean * mean).clamp_min(0).sqrt()]
        return torch.cat(parts, dim=1)

    def forward(self, images: torch.Tensor, tasks: Sequence[str] | None = None,
                groups: Mapping[str, slice] | None = None, embedding: bool = False) -> dict[str, torch.Tensor]:
        chosen = self.select(list(groups) if groups is not None else tasks)
        f, _ = self.features(images, dense=any(self.heads[t].needs_dense for t in chosen))
        out: dict[str, torch.Tensor] = {}
        for t in chosen:
            out.update(self.heads[t](f if groups is None else f.slice(groups[t])))
        if embedding:          # the frame gate's features (usedge.tasks.EMBEDDING_OUTPUT)
            out[EMBEDDING_OUTPUT] = self.feature_statistics(f)
        return out
