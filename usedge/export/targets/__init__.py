"""Target profiles: the per-target choices (precision, batch range, workspace, DLA) export and engines use."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import yaml

from usedge.errors import ConfigError


@dataclass(frozen=True)
class Target:
    name: str
    description: str = ""
    precision: str = "int8"
    backends: tuple[str, ...] = ("openvino", "onnxruntime")
    batch: dict = field(default_factory=lambda: {"min": 1, "opt": 1, "max": 1})
    dynamic_batch: bool = True
    threads: int | None = None
    workspace_mb: int | None = None
    dla_core: int | None = None
    builder_optimization_level: int | None = None


def target_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml"))


def load_target(name: str) -> Target:
    if name not in target_names():
        raise ConfigError(f"Unknown target '{name}'.", fix=f"use one of: {', '.join(target_names())}")
    raw = yaml.safe_load(resources.files(__package__).joinpath(f"{name}.yaml").read_text())
    raw["backends"] = tuple(raw.get("backends", ()))
    b = raw.get("batch", {})
    if not (1 <= b.get("min", 1) <= b.get("opt", 1) <= b.get("max", 1)):
        raise ConfigError(f"target {name}: batch needs 1 <= min <= opt <= max, got {b}.", fix="edit the profile.")
    return Target(**raw)
