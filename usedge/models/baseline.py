"""``baseline-b4``: the official FMC-UIA baseline architecture, parameter for parameter.

Checkpoints saved by the challenge's baseline code load here with ``strict=True``: the module tree is
``encoder`` (smp efficientnet-b4, depth 5), ``fpn_decoder`` (the decoder of
``smp.FPN("efficientnet-b4", classes=1)``) and ``heads`` (a ModuleDict keyed by task id, with the
baseline's own sub-module names). The difference is the forward: the original runs the encoder once
per task (``forward_task``, kept for parity checks and the "as shipped" benchmark); ``forward`` runs
encoder and decoder ONCE and answers every requested task with identical outputs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from usedge.errors import ConfigError, DataError, require
from usedge.tasks import ALL_TASKS, TaskKind, TaskSpec

ENCODER = "efficientnet-b4"


class BaselineClassificationHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        smp = require("segmentation_models_pytorch", "train", "the baseline-b4 teacher")
        self.head = smp.base.ClassificationHead(in_channels, num_classes, pooling="avg", dropout=0.2)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.head(features[-1])


class BaselineRegressionHead(nn.Module):
    def __init__(self, in_channels: int, num_points: int) -> None:
        super().__init__()
        self.pooling = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(in_channels, num_points * 2)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.linear(self.flatten(self.pooling(features[-1])))


class BaselineDetectionHead(nn.Module):
    def __init__(self, in_channels: int, mid: int = 128) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(in_channels, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, 5, 1))

    def forward(self, fpn: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(fpn)
        return torch.cat([torch.sigmoid(out[:, :4]), out[:, 4:]], dim=1)


class BaselineB4(nn.Module):
    """The baseline-compatible multi-task teacher (input: 256², ImageNet-normalised RGB)."""

    def __init__(self, tasks: Sequence[TaskSpec] = ALL_TASKS, encoder_name: str = ENCODER) -> None:
        super().__init__()
        smp = require("segmentation_models_pytorch", "train", "the baseline-b4 teacher")
        self.encoder = smp.encoders.get_encoder(encoder_name, in_channels=3, depth=5, weights=None)
        self.fpn_decoder = smp.FPN(encoder_name=encoder_name, encoder_weights=None, in_channels=3, classes=1).decoder
        self.task_specs = {t.id: t for t in tasks}
        self.heads = nn.ModuleDict({t.id: self._make_head(smp, t) for t in tasks})

    def _make_head(self, smp, spec: TaskSpec) -> nn.Module:
        fpn_out, top = self.fpn_decoder.out_channels, self.encoder.out_channels[-1]
        if spec.kind is TaskKind.SEGMENTATION:
            return smp.base.SegmentationHead(fpn_out, spec.num_classes, kernel_size=1, upsampling=4)
        if spec.kind is TaskKind.CLASSIFICATION:
            return BaselineClassificationHead(top, spec.num_classes)
        if spec.kind is TaskKind.REGRESSION:
            return BaselineRegressionHead(top, spec.num_points)
        return BaselineDetectionHead(fpn_out)

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_specs)

    def forward_task(self, x: torch.Tensor, task_id: str) -> torch.Tensor:
        """The original per-task forward (encoder re-run per call), raw baseline output format."""
        features = self.encoder(x)
        kind = self.task_specs[task_id].kind
        if kind in (TaskKind.SEGMENTATION, TaskKind.DETECTION):
            return self.heads[task_id](self.fpn_decoder(features))
        return self.heads[task_id](features)

    def forward(self, images: torch.Tensor, tasks: Sequence[str] | None = None,
                groups: Mapping[str, slice] | None = None) -> dict[str, torch.Tensor]:
        """Named outputs of ``tasks`` (all when None); with ``groups`` (task -> slice of the batch, mixed-task
        training) the encoder and decoder run once and each head only on its slice."""
        chosen = list(groups) if groups is not None else list(tasks) if tasks is not None else self.task_ids
        unknown = [t for t in chosen if t not in self.heads]
        if unknown:
            raise ConfigError(f"baseline-b4 has no head for {unknown}.", fix=f"use some of: {', '.join(self.task_ids)}")
        features = self.encoder(images)
        dense = any(self.task_specs[t].kind in (TaskKind.SEGMENTATION, TaskKind.DETECTION) for t in chosen)
        fpn = self.fpn_decoder(features) if dense else None
        out: dict[str, torch.Tensor] = {}
        for t in chosen:
            spec = self.task_specs[t]
            sl = groups[t] if groups is not None else slice(None)
            dense_task = spec.kind in (TaskKind.SEGMENTATION, TaskKind.DETECTION)
            raw = self.heads[t](fpn[sl] if dense_task else [f[sl] for f in features])
            out.update(to_named_outputs(spec, raw))
        return out


def to_named_outputs(spec: TaskSpec, raw: torch.Tensor) -> dict[str, torch.Tensor]:
    """Convert one raw baseline head output to usedge's named outputs."""
    if spec.kind is TaskKind.DETECTION:
        boxes, obj = spec.output_names
        return {boxes: raw[:, :4], obj: raw[:, 4:5]}
    if spec.kind is TaskKind.REGRESSION:
        return {spec.output_names[0]: raw.view(-1, spec.num_points, 2)}
    return {spec.output_names[0]: raw}


_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "ema")


def unwrap_state_dict(obj: object, path: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Find the state_dict inside a saved object (plain, or wrapped in state_dict/model/...; DDP
    ``module.`` prefixes removed)."""
    while isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        key = next((k for k in _WRAPPER_KEYS if k in obj), None)
        if key is None:
            raise DataError(f"{path} holds no state_dict (keys: {list(obj)[:10]}).",
                            fix="save with torch.save(model.state_dict(), path).")
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a state_dict.")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_baseline_checkpoint(path: str | Path, tasks: Sequence[TaskSpec] | None = None) -> BaselineB4:
    """Load a checkpoint written by the official baseline (``torch.save(model.state_dict())``), strictly.

    Tasks are inferred from the head keys when not given. Files are read with ``weights_only=True``.
    """
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds; we name the file and the cause
        raise DataError(f"Cannot read baseline checkpoint {path}: {exc}",
                        fix="pass a state_dict saved with torch.save (pickled full models are refused).") from None
    state = unwrap_state_dict(obj, str(path))
    if tasks is None:
        ids = {k.split(".")[1] for k in state if k.startswith("heads.")}
        tasks = tuple(t for t in ALL_TASKS if t.id in ids)
    model = BaselineB4(tasks)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise DataError(f"{path} does not match the baseline-b4 architecture: {exc}") from None
    if result.missing_keys or result.unexpected_keys:
        raise DataError(f"{path} does not match the baseline-b4 architecture: missing "
                        f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}.",
                        fix="pass a checkpoint of the official FMC-UIA baseline (efficientnet-b4 encoder).")
    return model
