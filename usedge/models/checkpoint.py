"""Checkpoints: a folder with ``model.safetensors`` (weights), ``config.json`` (ModelConfig + provenance)
and, for resuming, ``train_state.pt`` (optimizer/scheduler/step; read with ``weights_only=True``).

Written atomically (temp folder + rename): a crash mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from usedge._io import swap_in_dir
from usedge.errors import DataError, require
from usedge.models.presets import ModelConfig, build_model

WEIGHTS, CONFIG, STATE = "model.safetensors", "config.json", "train_state.pt"


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, config: ModelConfig,
                    meta: dict[str, Any] | None = None, train_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder atomically; return its path."""
    st = require("safetensors.torch", "train", "saving checkpoints")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        st.save_file(state, tmp / WEIGHTS, metadata={"usedge_config": json.dumps(config.to_dict())})
        (tmp / CONFIG).write_text(json.dumps({"model": config.to_dict(), "meta": meta or {}}, indent=2))
        if train_state is not None:
            torch.save(train_state, tmp / STATE)
        swap_in_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_config(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    """(ModelConfig, meta) of a checkpoint folder."""
    cfg_path = Path(path) / CONFIG
    if not cfg_path.is_file():
        raise DataError(f"{path} is not a usedge checkpoint (no {CONFIG}).",
                        fix="pass a folder written by `usedge train` / `usedge distill`, or a baseline .pth file.")
    try:
        data = json.loads(cfg_path.read_text())
        return ModelConfig.from_dict(data["model"]), data.get("meta", {})
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{cfg_path} is malformed: {exc}") from None


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, ModelConfig, dict]:
    """Load a usedge checkpoint folder, or an official-baseline ``.pth`` state_dict, in eval mode."""
    path = Path(path)
    if path.is_file() and path.suffix in (".pth", ".pt", ".bin"):
        from usedge.models.baseline import load_baseline_checkpoint
        from usedge.models.presets import resolve_config

        model = load_baseline_checkpoint(path)
        config = resolve_config("baseline-b4", list(model.task_ids))
        return model.to(device).eval(), config, {"source": str(path)}
    config, meta = read_config(path)
    st = require("safetensors.torch", "train", "loading checkpoints")
    model = build_model(config)
    state = st.load_file(str(path / WEIGHTS))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(f"weights in {path} do not match its config ({config.name}, {config.backbone}): {exc}") from None
    return model.to(device).eval(), config, meta


def load_train_state(path: str | os.PathLike) -> dict[str, Any] | None:
    state_path = Path(path) / STATE
    return torch.load(state_path, map_location="cpu", weights_only=True) if state_path.is_file() else None


__all__ = ["CONFIG", "STATE", "WEIGHTS", "load_checkpoint", "load_train_state", "read_config", "save_checkpoint"]
