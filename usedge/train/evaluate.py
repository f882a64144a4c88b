"""Evaluate a torch model on a labelled split with the challenge's metrics; optionally write the
submission files. Pre- and post-processing are the runtime's (usedge.runtime), so a checkpoint and its
exported bundle are scored by the same code."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from usedge.data.fmcuia import Sample
from usedge.data.preprocess import PreprocessSpec
from usedge.metrics import EvalReport
from usedge.metrics.scoring import evaluate_predictor
from usedge.models.presets import ModelConfig


def torch_predictor(model: torch.nn.Module, device: str = "cpu"):
    """A runtime-style predictor (numpy in, named numpy outputs out) around a torch model."""

    @torch.no_grad()
    def predict(images: np.ndarray, task: str) -> dict[str, np.ndarray]:
        out = model(torch.from_numpy(images).to(device), tasks=[task])
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    return predict


def evaluate_model(model: torch.nn.Module, config: ModelConfig, samples: Sequence[Sample],
                   submission: str | Path | None = None, batch_size: int = 16, device: str = "cpu",
                   auc: str = "official") -> EvalReport:
    """Score ``model`` on ``samples`` (any subset of tasks the model has), fed and decoded by its config's
    declared processing (:class:`~usedge.data.preprocess.PreprocessSpec`); ``auc``: the AUC definition."""
    model.eval()
    return evaluate_predictor(torch_predictor(model, device), PreprocessSpec.from_config(config), samples,
                              list(model.task_ids), submission, batch_size, auc)


__all__ = ["evaluate_model", "torch_predictor"]
