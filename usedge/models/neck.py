"""FPN neck: lateral 1×1 + top-down sum on strides 4..32, 1×1 per level, summed at stride 4, then one
3×3 conv (the dense trunk every dense head shares).

Returns both the fused map (for dense heads) and the pyramid levels (for feature distillation).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FPNNeck(nn.Module):
    """Args: in_channels: backbone channels at strides 4, 8, 16, 32; channels: pyramid width;
    out_channels: width of the fused stride-4 map."""

    def __init__(self, in_channels: tuple[int, ...], channels: int = 96, out_channels: int = 64) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(conv_bn_relu(channels, out_channels, k=1) for _ in in_channels)
        self.fuse = conv_bn_relu(out_channels, out_channels)
        self.channels = channels
        self.out_channels = out_channels

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        levels = [lat(f) for lat, f in zip(self.lateral, feats)]
        for i in range(len(levels) - 2, -1, -1):
            levels[i] = levels[i] + F.interpolate(levels[i + 1], size=levels[i].shape[-2:], mode="nearest")
        size = levels[0].shape[-2:]
        fused = sum(F.interpolate(s(p), size=size, mode="bilinear", align_corners=False) if i else s(p)
                    for i, (s, p) in enumerate(zip(self.smooth, levels)))
        return self.fuse(fused), levels
