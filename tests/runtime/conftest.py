"""A small fp32 bundle (5 tasks, one per kind plus a 3-class segmentation; 64² input) shared by the runtime
tests, written by the real export job."""
from dataclasses import replace

import pytest

TASKS = "fetal_head,cardiac_multi,organ_cls,thyroid_nodule_det,FUGC"


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from usedge.data.phantom import generate_dataset
    from usedge.export.pipeline import ExportConfig, run_export
    from usedge.models import build_model
    from usedge.models.presets import resolve_config
    from usedge.train.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("runtime-bundle")
    config = replace(resolve_config("student-s", TASKS), input_size=64)
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "ck", build_model(config).eval(), config)
    generate_dataset(root / "data", per_task=4, seed=3, size=96, tasks=TASKS.split(","), progress=False)
    run_export(ExportConfig(model=str(ckpt), data=str(root / "data"), out=str(root / "bundle"), int8=False,
                            latency_runs=2))
    return root / "bundle"


@pytest.fixture(scope="session")
def phantom_frames(bundle_dir):
    """(image, sample) pairs from the bundle's data set, one per task, at their stored size."""
    from usedge.data.fmcuia import load_split

    seen, out = set(), []
    for s in load_split(bundle_dir.parent / "data", "val", TASKS.split(",")):
        if s.task_id not in seen:
            seen.add(s.task_id)
            out.append((s.load_image(), s))
    return out
