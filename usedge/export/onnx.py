"""torch model -> ONNX with the output names of usedge/tasks.py (one graph answers all its tasks)."""
from __future__ import annotations

import warnings
from pathlib import Path

from usedge._io import atomic_write_bytes
from usedge.errors import require
from usedge.models.presets import ModelConfig

INPUT_NAME = "images"


def output_names(model) -> list[str]:
    return [o.name for spec in model.task_specs.values() for o in spec.outputs]


def export_onnx(model, config: ModelConfig, path: str | Path, opset: int = 17, dynamic_batch: bool = True,
                input_size: int | None = None) -> Path:
    """Export ``model`` (all its tasks, one pass) to ``path`` atomically; input ``images`` N×3×S×S float32."""
    torch = require("torch", "train", "ONNX export")
    import io

    size = input_size or config.input_size
    names = output_names(model)
    was = model.training
    model.eval()
    buf = io.BytesIO()
    axes = {INPUT_NAME: {0: "N"}, **{n: {0: "N"} for n in names}} if dynamic_batch else None
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            device = next(model.parameters()).device
            torch.onnx.export(model, (torch.zeros(1, 3, size, size, device=device),), buf, input_names=[INPUT_NAME],
                              output_names=names, opset_version=opset, dynamic_axes=axes, dynamo=False)
    finally:
        model.train(was)
    return atomic_write_bytes(Path(path), buf.getvalue())
