"""The export side of the built-in default (usedge.assets): the model to export and the phantom set that
calibrates and gates it."""
from __future__ import annotations

from pathlib import Path

from usedge.assets import DEFAULT_STUDENT, default_checkpoint

DEFAULT_DATA = Path("data/phantom-export")
#: held-out images per task in the default gate set: one classification flip = 1 point, the gate's limit
GATE_PER_TASK = 100


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
