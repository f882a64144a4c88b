"""TensorRT engines built on the target from a bundle: ``usedge build BUNDLE --target ...``.

:mod:`usedge.engine.plan` decides everything in plain Python (profile, precision plan, DLA, cache key,
timing-cache path) and is unit-tested without TensorRT; :mod:`usedge.engine.tensorrt` is the only module
that imports ``tensorrt`` (lazily) and turns a plan into an engine, or runs one. Importing this package
imports neither TensorRT, CUDA nor torch. See docs/tensorrt.md.
"""
from __future__ import annotations

from usedge.engine.plan import (
    PRECISIONS,
    BuildPlan,
    EngineKey,
    MachineInfo,
    PrecisionPlan,
    Profile,
    Sidecar,
    check_engine_key,
    compute_profile,
    dla_core_for,
    engine_paths,
    key_mismatches,
    landmark_patterns,
    list_engines,
    mismatch_message,
    plan_build,
    precision_plan,
    read_sidecar,
    select_engine,
    select_layers,
    timing_cache_path,
)


def build_engine(*args, **kwargs):
    """:func:`usedge.engine.tensorrt.build_engine` (imports TensorRT only when called)."""
    from usedge.engine.tensorrt import build_engine as _build

    return _build(*args, **kwargs)


__all__ = ["PRECISIONS", "BuildPlan", "EngineKey", "MachineInfo", "PrecisionPlan", "Profile", "Sidecar", "build_engine",
           "check_engine_key", "compute_profile", "dla_core_for", "engine_paths", "key_mismatches", "landmark_patterns",
           "list_engines", "mismatch_message", "plan_build", "precision_plan", "read_sidecar", "select_engine",
           "select_layers", "timing_cache_path"]
