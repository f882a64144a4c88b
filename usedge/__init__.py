"""usedge: multi-task ultrasound models at the point of care.

The base package imports no torch: data I/O, the task schema, runtime and streaming work on a scanner
that installs ``usedge`` or ``usedge[cpu]`` only. Training, distillation and export live behind the
``train`` extra and import torch lazily.
"""
from __future__ import annotations

from usedge.errors import UsedgeError
from usedge.tasks import ALL_TASKS, TaskKind, TaskSpec, get_task, parse_tasks

__version__ = "0.1.0"



def __getattr__(name: str):
    """``usedge.load`` / ``usedge.Predictor`` without importing the runtime until used."""
    if name in ("load", "Predictor"):
        from usedge.runtime import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'usedge' has no attribute '{name}'")


__all__ = ["ALL_TASKS", "Predictor", "load", "TaskKind", "TaskSpec", "UsedgeError", "__version__", "get_task", "parse_tasks"]
