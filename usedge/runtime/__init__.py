"""What runs on the scanner: the Predictor over a backend (usedge.backends), its results, evaluation and
``usedge verify``. No torch.

``usedge.runtime.load(bundle)`` (also ``usedge.load``) returns a :class:`Predictor`. Names are imported
lazily so ``import usedge.runtime`` stays light.
"""
from __future__ import annotations

_LAZY = {"load": "usedge.runtime.predictor", "Predictor": "usedge.runtime.predictor",
         "choose": "usedge.runtime.predictor", "FrameResult": "usedge.runtime.results"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'usedge.runtime' has no attribute '{name}'")


__all__ = sorted(_LAZY)
