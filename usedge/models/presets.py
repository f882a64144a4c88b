"""Model presets (one registry) and the factory that builds a model from a frozen config.

``baseline-b4`` is the challenge-compatible teacher; ``student-*`` are compact shared backbones chosen
for latency on CPU/OpenVINO (see docs/models.md for the measurements); any ``timm/<name>`` or
``smp/<name>`` backbone works too, with the student neck and heads.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from usedge.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from usedge.errors import ConfigError
from usedge.registry import Registry
from usedge.tasks import ALL_TASKS, TaskSpec, parse_tasks


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model (saved as JSON next to its weights).

    Attributes:
        name: preset name or ``custom``.
        arch: ``multitask`` (usedge's one-pass net) or ``baseline-b4``.
        backbone: ``timm/<model>`` or ``smp/<encoder>`` (multitask only).
        neck_channels / dense_channels: FPN pyramid width and fused dense map width.
        dense_stride: stride of the dense map every dense head reads: 4 (FPN trunk) or 2 (trunk refined with
            the backbone's stride-2 feature; see docs/models.md for the measured accuracy x latency choice).
        regression: ``heatmap`` (soft-argmax) or ``direct`` landmark heads.
        input_size: square input side; images are RGB, ``mean``/``std`` normalised after /255.
        resize: how images reach ``input_size``: ``area`` (INTER_AREA when shrinking) or ``bilinear`` (always
            INTER_LINEAR, as the official baseline); see :class:`usedge.data.preprocess.PreprocessSpec`.
        seg_decode: how segmentation logits become a mask at the original size: ``logits`` (bilinear logit
            upsampling, then argmax) or ``argmax-nearest`` (argmax at input size, nearest resize: the baseline).
        tasks: task ids the model answers.
    """

    name: str = "custom"
    arch: str = "multitask"
    backbone: str = "timm/mobilenetv4_conv_small"
    neck_channels: int = 64
    dense_channels: int = 48
    dense_stride: int = 4
    regression: str = "heatmap"
    input_size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    tasks: tuple[str, ...] = tuple(t.id for t in ALL_TASKS)
    resize: str = "area"
    seg_decode: str = "logits"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std", "tasks"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    @property
    def task_specs(self) -> tuple[TaskSpec, ...]:
        return parse_tasks(list(self.tasks))


MODELS: Registry[ModelConfig] = Registry("model")
# the official baseline's own processing (docker/model.py): A.Resize(256, 256) bilinear; argmax, then nearest
MODELS.register("baseline-b4", ModelConfig("baseline-b4", arch="baseline-b4", backbone="smp/efficientnet-b4",
                                           regression="direct", resize="bilinear", seg_decode="argmax-nearest"))
# 128² input with a stride-2 dense map: the measured accuracy x latency choice on CPU (docs/models.md)
MODELS.register("student-s", ModelConfig("student-s", backbone="timm/mobilenetv4_conv_small", input_size=128,
                                         dense_stride=2))
MODELS.register("student-m", ModelConfig("student-m", backbone="timm/mobilenetv3_large_100",
                                         neck_channels=96, dense_channels=64))
MODELS.register("student-l", ModelConfig("student-l", backbone="timm/efficientnet_b0",
                                         neck_channels=128, dense_channels=64))
# a plain ViT-S/16 (22 M) through a simple feature pyramid; 256² input = 16×16 tokens (docs/models.md)
MODELS.register("teacher-vit-s", ModelConfig("teacher-vit-s", backbone="timm/vit_small_patch16_224",
                                             neck_channels=128, dense_channels=96))
MODELS.register("teacher-r50", ModelConfig("teacher-r50", backbone="timm/resnet50",
                                           neck_channels=256, dense_channels=128))


def list_models() -> list[str]:
    return MODELS.names()


def resolve_config(model: str | ModelConfig, tasks: Sequence[str] | str | None = None) -> ModelConfig:
    """A preset name, ``timm/<name>``/``smp/<name>``, or a config; optionally restricted to ``tasks``."""
    if isinstance(model, ModelConfig):
        config = model
    elif model in MODELS:
        config = MODELS.get(model)
    elif model.startswith(("timm/", "smp/")):
        config = ModelConfig(name=model, backbone=model)
    else:
        raise ConfigError(MODELS.unknown_message(model),
                          fix=f"use a preset ({', '.join(MODELS.names())}) or 'timm/<model>' / 'smp/<encoder>'.")
    if tasks is not None:
        config = replace(config, tasks=tuple(t.id for t in parse_tasks(tasks)))
    return config


def build_model(model: str | ModelConfig, tasks: Sequence[str] | str | None = None):
    """Build a fresh (randomly initialised) torch model for a preset / backbone name / config."""
    config = resolve_config(model, tasks)
    if config.arch == "baseline-b4":
        from usedge.models.baseline import BaselineB4

        return BaselineB4(config.task_specs, encoder_name=config.backbone.removeprefix("smp/"))
    if config.arch != "multitask":
        raise ConfigError(f"Unknown arch '{config.arch}'.", fix="use 'multitask' or 'baseline-b4'.")
    if config.dense_stride not in (2, 4):
        raise ConfigError(f"dense_stride {config.dense_stride} is not supported.", fix="use 4 or 2.")
    if config.regression not in ("heatmap", "direct"):
        raise ConfigError(f"Unknown regression head '{config.regression}'.", fix="use 'heatmap' or 'direct'.")
    from usedge.models.backbones import STRIDES, STRIDES_FINE, create_backbone
    from usedge.models.multitask import MultiTaskNet

    strides = STRIDES_FINE if config.dense_stride == 2 else STRIDES
    backbone = create_backbone(config.backbone, strides=strides, img_size=config.input_size)
    return MultiTaskNet(backbone, config.task_specs, config.neck_channels,
                        config.dense_channels, config.regression)
