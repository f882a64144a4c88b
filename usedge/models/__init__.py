"""Models: backbones (timm / smp), FPN neck, per-task heads, the one-pass multi-task net, the
baseline-compatible teacher and the student presets. Needs the ``train`` extra (torch)."""
from usedge.models.presets import MODELS, ModelConfig, build_model, list_models

__all__ = ["MODELS", "ModelConfig", "build_model", "list_models"]
