"""The Backend protocol: one ONNX/engine file in, named numpy outputs out. No torch."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """An inference session over one model file.

    ``infer(images)`` takes N×3×S×S float32 (the runtime's preprocessing) and returns every graph output by
    its usedge name (``<task>.<field>``, docs/tasks.md), as numpy arrays.
    """

    name: str
    input_name: str
    output_names: list[str]

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...
