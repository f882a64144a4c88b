"""Shared fixtures: tiny synthetic data sets in the FMC-UIA layout (no network), and a tiny real bundle."""
from __future__ import annotations

import gc
import threading

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


#: threads usedge starts (streams, the demo's live sessions, usedge serve's pools) and the test servers
OWN_THREADS = ("usedge-", "uvicorn-test")


@pytest.fixture(autouse=True, scope="module")
def _no_native_leaks_across_modules():
    """After each test module: free what reference cycles still hold (a pytest.raises traceback keeps the test's
    frame, and with it a Predictor, alive) here, on the main thread, rather than in a GC pass that starts on a
    stream or server thread in the middle of a later module; and fail the module if it left one of usedge's
    threads running (a stream not closed, a live session not stopped)."""
    yield
    gc.collect()
    left = [t for t in threading.enumerate() if t.name.startswith(OWN_THREADS)]
    for t in left:
        t.join(timeout=10.0)
    running = sorted(t.name for t in left if t.is_alive())
    assert not running, f"threads still running after this module: {running} (close the stream / session / server)"


@pytest.fixture
def tiny_dataset(tmp_path):
    """(root, labels) of a 2-images-per-task synthetic data set."""
    root = tmp_path / "ds"
    return root, write_synthetic(root)


TINY_BUNDLE_TASKS = "fetal_head,cardiac_multi,organ_cls,thyroid_nodule_det,FUGC"


def export_tiny_bundle(root, tasks: str = TINY_BUNDLE_TASKS, images_per_task: int = 4, data_seed: int = 3, **export):
    """A student-s of ``tasks`` at 64² (seeded random weights) exported by the real export job into
    ``root/bundle``, its phantom data set in ``root/data``; ``export``: more ExportConfig fields."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from dataclasses import replace

    from usedge.backends import available_backends
    from usedge.data.phantom import generate_dataset
    from usedge.export.pipeline import ExportConfig, run_export
    from usedge.models import build_model
    from usedge.models.checkpoint import save_checkpoint
    from usedge.models.presets import resolve_config

    if not available_backends():
        pytest.skip("needs OpenVINO or ONNX Runtime (usedge[cpu])")
    config = replace(resolve_config("student-s", tasks), input_size=64)
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "ck", build_model(config).eval(), config)
    generate_dataset(root / "data", per_task=images_per_task, seed=data_seed, size=96, tasks=tasks.split(","), progress=False)
    run_export(ExportConfig(model=str(ckpt), data=str(root / "data"), out=str(root / "bundle"), **export))
    return root / "bundle"


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    """A small fp32 bundle (5 tasks: one per kind plus a 4-class segmentation; 64² input) written by the real
    export job; shared by the runtime and stream tests. Its phantom data set is at ``bundle_dir.parent / "data"``."""
    return export_tiny_bundle(tmp_path_factory.mktemp("tiny-bundle"), int8=False, latency_runs=2)


def openvino_without_vnni(model, x: np.ndarray, tmp_path, cap: str = "AVX2") -> dict:
    """``model``'s outputs on ``x`` from OpenVINO in a child process with ``ONEDNN_MAX_CPU_ISA=cap``: oneDNN's
    kernels for CPUs without VNNI (whose int8 dot products saturate), on any machine (usedge._cpu)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("openvino")
    src, dst = tmp_path / "ov_in.npz", tmp_path / "ov_out.npz"
    np.savez(src, x=x)
    code = ("import sys, numpy as np, openvino as ov\n"
            "c = ov.Core().compile_model(sys.argv[1], 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})\n"
            "r = c.create_infer_request().infer({0: np.load(sys.argv[2])['x']})\n"
            "np.savez(sys.argv[3], **{o.get_any_name(): r[o] for o in c.outputs})\n")
    proc = subprocess.run([sys.executable, "-c", code, str(model), str(src), str(dst)], capture_output=True, text=True,
                          env={**os.environ, "ONEDNN_MAX_CPU_ISA": cap}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(dst) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(torch student-s at 64² on the tiny bundle's tasks, its config, its ONNX export info)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from dataclasses import replace

    from usedge.models import build_model
    from usedge.models.onnx import export_onnx
    from usedge.models.presets import resolve_config

    config = replace(resolve_config("student-s", TINY_BUNDLE_TASKS), input_size=64)
    torch.manual_seed(0)
    model = build_model(config).eval()
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    return model, config, export_onnx(model, config, path)
