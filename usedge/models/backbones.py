"""Backbones behind one contract: ``forward(x) -> [C2..C5]`` feature maps at strides 4, 8, 16, 32 (and
``[C1..C5]`` from stride 2 when built with ``strides=STRIDES_FINE``, for a stride-2 dense output), with
``channels`` and ``reductions`` known up front so necks never need to know which backbone they sit on.

Names: ``timm/<model>`` (any timm model that supports ``features_only``) or ``smp/<encoder>`` (any
segmentation_models_pytorch encoder). A hierarchical timm model (CNNs, Swin) gives its own strides; a plain
transformer whose features all have one stride (ViT, DeiT, EVA, ...) gets a ViTDet-style simple feature
pyramid (Li et al. 2022, "Exploring Plain Vision Transformer Backbones for Object Detection"): its last block's
tokens as a stride-16 map, 2×2 transposed convolutions up to strides 4 and 8 (and 2), max-pooling down to 32.
``feature_info`` describes what ``forward`` returns, for necks and feature distillation alike. No weights are
downloaded: backbones start random or from a checkpoint (there is no hub at run time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from usedge.errors import ConfigError, require

STRIDES = (4, 8, 16, 32)
STRIDES_FINE = (2, 4, 8, 16, 32)


@dataclass(frozen=True)
class FeatureInfo:
    """One map a backbone returns: its channels and its stride (``reduction``) relative to the input."""

    channels: int
    reduction: int


class Backbone(nn.Module):
    """Base: subclasses set ``channels`` (one per stride in ``reductions``) and implement ``forward``."""

    channels: tuple[int, ...]
    reductions: tuple[int, ...] = STRIDES

    @property
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        return tuple(FeatureInfo(c, r) for c, r in zip(self.channels, self.reductions))


def _timm_features(model_name: str, in_chans: int, img_size: int | None, **kwargs):
    timm = require("timm", "train", "timm backbones")
    if model_name not in timm.list_models():
        raise ConfigError(f"timm has no model '{model_name}'.",
                          fix="pick a name from timm.list_models(), e.g. mobilenetv4_conv_small.")
    if img_size:   # transformers fix their position embeddings to an input size; CNNs take no img_size
        try:
            return timm.create_model(model_name, pretrained=False, features_only=True, in_chans=in_chans,
                                     img_size=img_size, **kwargs)
        except TypeError:
            pass
    return timm.create_model(model_name, pretrained=False, features_only=True, in_chans=in_chans, **kwargs)


def _to_nchw(body: nn.Module, maps: list[torch.Tensor]) -> list[torch.Tensor]:
    fmt = str(getattr(body, "output_fmt", "NCHW"))
    return [m.permute(0, 3, 1, 2) for m in maps] if fmt.endswith("NHWC") else list(maps)


class TimmBackbone(Backbone):
    """A hierarchical timm model (CNNs, Swin): its own stride-4..32 (or 2..32) features, NCHW."""

    def __init__(self, model_name: str, in_chans: int = 3, strides: tuple[int, ...] = STRIDES,
                 img_size: int | None = None, probe: nn.Module | None = None) -> None:
        super().__init__()
        probe = probe or _timm_features(model_name, in_chans, img_size)
        reductions = probe.feature_info.reduction()
        indices = tuple(reductions.index(s) for s in strides if s in reductions)
        if len(indices) != len(strides):
            raise ConfigError(f"timm model '{model_name}' has feature strides {reductions}; need {strides}.",
                              fix=f"pick a backbone with stride-{strides[0]}..32 features (most CNNs).")
        self.body = _timm_features(model_name, in_chans, img_size, out_indices=indices)
        self.channels = tuple(self.body.feature_info.channels())
        self.reductions = tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return _to_nchw(self.body, self.body(x))


def _rescale(channels: int, source: int, target: int) -> tuple[nn.Module, int]:
    """ViTDet's simple-pyramid branch from a stride-``source`` map to stride ``target``: one 2×2 transposed
    convolution per factor 2 up (channels halved each time, BatchNorm + GELU between), max-pooling down."""
    if target >= source:
        return (nn.Identity() if target == source else nn.MaxPool2d(target // source)), channels
    layers: list[nn.Module] = []
    for i in range(int(math.log2(source // target))):
        if i:
            layers += [nn.BatchNorm2d(channels), nn.GELU()]
        layers.append(nn.ConvTranspose2d(channels, channels // 2, 2, stride=2))
        channels //= 2
    return nn.Sequential(*layers), channels


class PlainViTBackbone(Backbone):
    """A plain transformer (one token stride) -> the multi-scale maps a neck reads, by a simple feature
    pyramid on its last block (``feature_info`` gives each branch's channels and stride)."""

    def __init__(self, model_name: str, in_chans: int = 3, strides: tuple[int, ...] = STRIDES,
                 img_size: int | None = None, probe: nn.Module | None = None) -> None:
        super().__init__()
        probe = probe or _timm_features(model_name, in_chans, img_size)
        source = probe.feature_info.reduction()[-1]
        if source & (source - 1) or source > 32:
            raise ConfigError(f"timm model '{model_name}' has token stride {source}; the simple feature pyramid "
                              "needs a power of two up to 32.", fix="pick a patch-8/16/32 model (e.g. vit_small_patch16_224).")
        self.body = _timm_features(model_name, in_chans, img_size, out_indices=(len(probe.feature_info) - 1,))
        dim = self.body.feature_info.channels()[-1]
        branches = [_rescale(dim, source, s) for s in strides]
        self.pyramid = nn.ModuleList(b for b, _ in branches)
        self.channels = tuple(c for _, c in branches)
        self.reductions = tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        (top,) = _to_nchw(self.body, self.body(x))
        return [branch(top) for branch in self.pyramid]


def _timm_backbone(model_name: str, in_chans: int, strides: tuple[int, ...], img_size: int | None) -> Backbone:
    probe = _timm_features(model_name, in_chans, img_size)
    plain = len(set(probe.feature_info.reduction())) == 1 and len(probe.feature_info.reduction()) > 1
    cls = PlainViTBackbone if plain else TimmBackbone
    return cls(model_name, in_chans, strides, img_size, probe=probe)


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


def create_backbone(name: str, in_chans: int = 3, strides: tuple[int, ...] = STRIDES,
                    img_size: int | None = None) -> Backbone:
    """Build ``timm/<model>`` or ``smp/<encoder>``; a bare name is tried as a timm model. ``img_size`` fixes a
    transformer's position embeddings to the model's input size (CNNs ignore it)."""
    if tuple(strides) not in (STRIDES, STRIDES_FINE):
        raise ConfigError(f"Backbone strides {strides} are not supported.", fix=f"use {STRIDES} or {STRIDES_FINE}.")
    prefix, _, rest = name.partition("/")
    if prefix == "smp" and rest:
        return SmpBackbone(rest, in_chans, strides)
    if prefix == "timm" and rest:
        return _timm_backbone(rest, in_chans, strides, img_size)
    if not rest:
        return _timm_backbone(name, in_chans, strides, img_size)
    raise ConfigError(f"Unknown backbone source '{prefix}' in '{name}'.", fix="use 'timm/<model>' or 'smp/<encoder>'.")
