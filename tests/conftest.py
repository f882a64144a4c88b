"""Shared fixtures: tiny synthetic data sets in the FMC-UIA layout (no network), and a tiny real bundle."""
from __future__ import annotations

import numpy as np
import pytest

from usedge.data.fmcuia import SplitWriter
from usedge.tasks import ALL_TASKS, TaskKind, TaskSpec


def synthetic_label(spec: TaskSpec, rng: np.random.Generator, h: int, w: int) -> object:
    """A random but valid label of the task's kind for an h×w image."""
    if spec.kind is TaskKind.SEGMENTATION:
        mask = np.zeros((h, w), np.uint8)
        for c in range(1, spec.num_classes):
            y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
            mask[y:y + 8, x:x + 8] = c
        return mask
    if spec.kind is TaskKind.CLASSIFICATION:
        return int(rng.integers(spec.num_classes))
    if spec.kind is TaskKind.DETECTION:
        x0, y0 = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
        return (x0, y0, x0 + rng.uniform(4, w / 2 - 1), y0 + rng.uniform(4, h / 2 - 1))
    return tuple((float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(spec.num_points))


def write_synthetic(root, per_task: int = 2, h: int = 48, w: int = 64, seed: int = 0) -> dict:
    """Write every task with random images and labels; return {(task_id, i): label}."""
    rng = np.random.default_rng(seed)
    labels = {}
    with SplitWriter(root, "train") as writer:
        for spec in ALL_TASKS:
            for i in range(per_task):
                image = rng.integers(0, 255, (h, w), dtype=np.uint8)
                labels[(spec.id, i)] = synthetic_label(spec, rng, h, w)
                writer.add(spec.id, image, labels[(spec.id, i)])
    return labels


@pytest.fixture
def tiny_dataset(tmp_path):
    """(root, labels) of a 2-images-per-task synthetic data set."""
    root = tmp_path / "ds"
    return root, write_synthetic(root)


TINY_BUNDLE_TASKS = "fetal_head,cardiac_multi,organ_cls,thyroid_nodule_det,FUGC"


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    """A small fp32 bundle (5 tasks: one per kind plus a 4-class segmentation; 64² input) written by the real
    export job; shared by the runtime and stream tests. Its phantom data set is at ``bundle_dir.parent / "data"``."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from dataclasses import replace

    from usedge.data.phantom import generate_dataset
    from usedge.export.pipeline import ExportConfig, run_export
    from usedge.models import build_model
    from usedge.models.presets import resolve_config
    from usedge.runtime.backends import available_backends
    from usedge.models.checkpoint import save_checkpoint

    if not available_backends():
        pytest.skip("needs OpenVINO or ONNX Runtime (usedge[cpu])")
    root = tmp_path_factory.mktemp("tiny-bundle")
    config = replace(resolve_config("student-s", TINY_BUNDLE_TASKS), input_size=64)
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "ck", build_model(config).eval(), config)
    generate_dataset(root / "data", per_task=4, seed=3, size=96, tasks=TINY_BUNDLE_TASKS.split(","), progress=False)
    run_export(ExportConfig(model=str(ckpt), data=str(root / "data"), out=str(root / "bundle"), int8=False,
                            latency_runs=2))
    return root / "bundle"
