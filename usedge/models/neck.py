"""FPN neck: lateral 1×1 + top-down sum on strides 4..32, 1×1 per level, summed at stride 4, then one
3×3 conv (the dense trunk every dense head shares).

With a stride-2 backbone feature (``dense_stride=2``), a light refinement stage lifts the fused map to
stride 2: bilinear ×2 of the stride-4 trunk + a 1×1 projection of the stride-2 feature, then a depthwise
3×3 and a pointwise 1×1. At 128² input that gives a 64² dense map, the resolution whose label ceiling is
≥ 0.97 Dice on every phantom task (docs/models.md), for a fraction of the cost of a 256² input.

Returns both the fused map (for dense heads) and the pyramid levels (for feature distillation).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, k: int = 3, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class FineRefine(nn.Module):
    """Stride-4 trunk + stride-2 backbone feature -> stride-2 dense map (same width as the trunk)."""

    def __init__(self, fine_channels: int, channels: int) -> None:
        super().__init__()
        self.skip = conv_bn_relu(fine_channels, channels, k=1)
        self.depthwise = conv_bn_relu(channels, channels, k=3, groups=channels)
        self.pointwise = conv_bn_relu(channels, channels, k=1)

    def forward(self, trunk: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(trunk, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.pointwise(self.depthwise(up + self.skip(fine)))


class FPNNeck(nn.Module):
    """Args: in_channels: backbone channels at strides 4, 8, 16, 32; channels: pyramid width;
    out_channels: width of the fused map; fine_channels: channels of the stride-2 feature when the dense
    map is to be at stride 2 (``forward`` then takes [C1, C2..C5])."""

    def __init__(self, in_channels: tuple[int, ...], channels: int = 96, out_channels: int = 64,
                 fine_channels: int | None = None) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(conv_bn_relu(channels, out_channels, k=1) for _ in in_channels)
        self.fuse = conv_bn_relu(out_channels, out_channels)
        self.refine = FineRefine(fine_channels, out_channels) if fine_channels else None
        self.channels = channels
        self.out_channels = out_channels

    @property
    def stride(self) -> int:
        return 2 if self.refine is not None else 4

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        fine, feats = (feats[0], feats[1:]) if self.refine is not None else (None, feats)
        levels = [lat(f) for lat, f in zip(self.lateral, feats)]
        for i in range(len(levels) - 2, -1, -1):
            levels[i] = levels[i] + F.interpolate(levels[i + 1], size=levels[i].shape[-2:], mode="nearest")
        size = levels[0].shape[-2:]
        fused = sum(F.interpolate(s(p), size=size, mode="bilinear", align_corners=False) if i else s(p)
                    for i, (s, p) in enumerate(zip(self.smooth, levels)))
        trunk = self.fuse(fused)
        return (trunk if self.refine is None else self.refine(trunk, fine)), levels
