"""The built-in default: the student that ships in the package and a phantom set to calibrate and gate it."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from usedge.errors import ConfigError

#: what `python scripts/build_default_student.py` writes (see docs/default-student.md)
DEFAULT_STUDENT = "assets/default_student"
#: what `python scripts/build_default_bundle.py` writes: the default student's gated INT8 bundle, slim (no torch)
DEFAULT_BUNDLE = "assets/default_bundle"
DEFAULT_DATA = Path("data/phantom-export")
#: held-out images per task in the default gate set: one classification flip = 1 point, the gate's limit
GATE_PER_TASK = 100


def default_checkpoint() -> Path:
    path = Path(str(resources.files("usedge").joinpath(DEFAULT_STUDENT)))
    if not (path / "model.safetensors").is_file():
        raise ConfigError(f"the built-in default student is missing from this install ({path}).",
                          fix="pass --model CKPT, or rebuild it: python scripts/build_default_student.py")
    return path


def shipped_bundle() -> Path:
    """The packaged INT8 bundle of the default student: runs without torch and opens in about a second."""
    path = Path(str(resources.files("usedge").joinpath(DEFAULT_BUNDLE)))
    if not (path / "metadata.json").is_file():
        raise ConfigError(f"the built-in default bundle is missing from this install ({path}).",
                          fix="pass --bundle PATH, or rebuild it: python scripts/build_default_bundle.py")
    return path


def resolve_model(model: str | None):
    """(torch model in eval mode, its ModelConfig, a description of where it came from)."""
    from usedge.models.checkpoint import load_checkpoint

    path = Path(model) if model else default_checkpoint()
    net, config, meta = load_checkpoint(path)
    source = {"checkpoint": str(path) if model else f"usedge:{DEFAULT_STUDENT}", "meta": {
        k: meta[k] for k in ("epoch", "val_score", "teachers", "task_teacher") if k in meta}}
    return net.float().eval(), config, source


def default_data(per_task: int, specs) -> Path:
    """The phantom set used when no --data is given: generated once (with progress), and again whenever the
    folder was written by another version of the phantom generator (its source hash) or is too small."""
    from usedge.data.phantom.generator import generate_dataset, generator_sha256

    needed = max(per_task, 10) + 10  # training images per task (calibration); val holds the gate set
    marker = DEFAULT_DATA / "phantom.json"
    if marker.is_file():
        import json

        info = json.loads(marker.read_text())
        if (info.get("generator_sha256") == generator_sha256() and info.get("seed") == 2026
                and info.get("per_task", 0) >= needed and info.get("val_per_task", 0) >= GATE_PER_TASK
                and set(info.get("tasks", [])) >= {s.id for s in specs}):
            return DEFAULT_DATA
    generate_dataset(DEFAULT_DATA, per_task=needed, seed=2026, size=256, tasks=list(specs),
                     val_per_task=GATE_PER_TASK)
    return DEFAULT_DATA
