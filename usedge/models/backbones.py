"""Backbones behind one contract: ``forward(x) -> [C2..C5]`` feature maps at strides 4, 8, 16, 32 (and
``[C1..C5]`` from stride 2 when built with ``strides=STRIDES_FINE``, for a stride-2 dense output), with
``channels`` and ``reductions`` known up front so necks never need to know which backbone they sit on.

Names: ``timm/<model>`` (any timm model that supports ``features_only``) or ``smp/<encoder>`` (any
segmentation_models_pytorch encoder). No weights are downloaded: backbones start random or from a
checkpoint (there is no hub at run time).
"""
from __future__ import annotations

import torch
from torch import nn

from usedge.errors import ConfigError, require

STRIDES = (4, 8, 16, 32)
STRIDES_FINE = (2, 4, 8, 16, 32)


class Backbone(nn.Module):
    """Base: subclasses set ``channels`` (one per stride in ``reductions``) and implement ``forward``."""

    channels: tuple[int, ...]
    reductions: tuple[int, ...] = STRIDES


class TimmBackbone(Backbone):
    def __init__(self, model_name: str, in_chans: int = 3, strides: tuple[int, ...] = STRIDES) -> None:
        super().__init__()
        timm = require("timm", "train", "timm backbones")
        if model_name not in timm.list_models():
            raise ConfigError(f"timm has no model '{model_name}'.",
                              fix="pick a name from timm.list_models(), e.g. mobilenetv4_conv_small.")
        probe = timm.create_model(model_name, pretrained=False, features_only=True, in_chans=in_chans)
        reductions = probe.feature_info.reduction()
        indices = tuple(reductions.index(s) for s in strides if s in reductions)
        if len(indices) != len(strides):
            raise ConfigError(f"timm model '{model_name}' has feature strides {reductions}; need {strides}.",
                              fix=f"pick a backbone with stride-{strides[0]}..32 features (most CNNs).")
        self.body = timm.create_model(model_name, pretrained=False, features_only=True, in_chans=in_chans,
                                      out_indices=indices)
        self.channels = tuple(self.body.feature_info.channels())
        self.reductions = tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


class SmpBackbone(Backbone):
    def __init__(self, encoder_name: str, in_chans: int = 3, strides: tuple[int, ...] = STRIDES) -> None:
        super().__init__()
        smp = require("segmentation_models_pytorch", "train", "smp backbones")
        names = smp.encoders.get_encoder_names()
        if encoder_name not in names:
            raise ConfigError(f"segmentation_models_pytorch has no encoder '{encoder_name}'.",
                              fix=f"use one of: {', '.join(sorted(names)[:30])}, ...")
        self.body = smp.encoders.get_encoder(encoder_name, in_channels=in_chans, depth=5, weights=None)
        self.first = 1 if strides[0] == 2 else 2   # smp features: [input, /2, /4, /8, /16, /32]
        self.channels = tuple(self.body.out_channels[self.first:])
        self.reductions = tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x)[self.first:])


def create_backbone(name: str, in_chans: int = 3, strides: tuple[int, ...] = STRIDES) -> Backbone:
    """Build ``timm/<model>`` or ``smp/<encoder>``; a bare name is tried as a timm model."""
    if tuple(strides) not in (STRIDES, STRIDES_FINE):
        raise ConfigError(f"Backbone strides {strides} are not supported.", fix=f"use {STRIDES} or {STRIDES_FINE}.")
    prefix, _, rest = name.partition("/")
    if prefix == "smp" and rest:
        return SmpBackbone(rest, in_chans, strides)
    if prefix == "timm" and rest:
        return TimmBackbone(rest, in_chans, strides)
    if not rest:
        return TimmBackbone(name, in_chans, strides)
    raise ConfigError(f"Unknown backbone source '{prefix}' in '{name}'.", fix="use 'timm/<model>' or 'smp/<encoder>'.")
