"""Target profiles: the per-target choices (precision, batch range, workspace, DLA) that export, the engine
builder, ``usedge build`` and the Triton repository writer read. Foundation level: it imports nothing of usedge
but its errors.

The packaged profiles (cpu, cpu-vnni, desktop-gpu, jetson-orin-nano, jetson-orin-nx, jetson-agx-orin) are YAML
files next to this module, so ``pip install`` users have them; ``--target`` also takes the path of your own YAML
file (copy one of these; see export/README.md at the repository root). Every file is validated field by field.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

import yaml

from usedge.errors import ConfigError

#: the backend names a profile may list (``usedge.backends``' registry; tests/test_targets.py pins the two together)
BACKEND_NAMES = ("openvino", "onnxruntime", "tensorrt", "torch")


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
    #: int8 weight range: 7 ([-64, 63]) is exact on every x86 CPU (no VNNI: the u8 x s8 pair sum of
    #: vpmaddubsw saturates int16 with 8-bit weights; usedge._cpu); 8 for VNNI-only CPUs and GPUs
    int8_weight_bits: int = 8


def target_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml"))


def load_target(name: str) -> Target:
    """A packaged profile by name, or a profile YAML file by path."""
    path = Path(name)
    if name.endswith((".yaml", ".yml")) and path.is_file():
        return _parse(yaml.safe_load(path.read_text()), str(path))
    if name not in target_names():
        raise ConfigError(f"Unknown target '{name}'.",
                          fix=f"use one of: {', '.join(target_names())}, or the path of your own profile .yaml")
    return _parse(yaml.safe_load(resources.files(__package__).joinpath(f"{name}.yaml").read_text()), name)


def _parse(raw: object, where: str) -> Target:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"target {where}: not a profile (a YAML mapping with at least a name).",
                          fix="copy a packaged profile (usedge/targets/*.yaml) and edit it.")
    unknown = sorted(set(raw) - {f.name for f in fields(Target)})
    if unknown:
        raise ConfigError(f"target {where}: unknown field(s) {unknown}.",
                          fix=f"use only: {', '.join(f.name for f in fields(Target))}")
    raw = {**raw, "backends": tuple(raw.get("backends", ("openvino", "onnxruntime")))}
    bad = [b for b in raw["backends"] if b not in BACKEND_NAMES]
    if bad:
        raise ConfigError(f"target {where}: unknown backend(s) {bad}.", fix=f"use some of: {', '.join(BACKEND_NAMES)}")
    if raw.get("precision", "int8") not in ("int8", "fp16", "fp32"):
        raise ConfigError(f"target {where}: precision {raw['precision']!r}.", fix="use int8, fp16 or fp32.")
    if raw.get("int8_weight_bits", 8) not in (7, 8):
        raise ConfigError(f"target {where}: int8_weight_bits {raw['int8_weight_bits']!r}.",
                          fix="use 7 (exact on CPUs without VNNI) or 8 (VNNI CPUs, GPUs).")
    b = raw.get("batch", {})
    if not (isinstance(b, dict) and 1 <= b.get("min", 1) <= b.get("opt", 1) <= b.get("max", 1)):
        raise ConfigError(f"target {where}: batch needs 1 <= min <= opt <= max, got {b}.", fix="edit the profile.")
    return Target(**raw)
