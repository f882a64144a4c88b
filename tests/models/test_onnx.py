"""torch -> ONNX (usedge.models.onnx): parity with torch on every CPU runtime and every output, and the
metadata the graph carries."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from usedge.backends import available_backends, open_backend  # noqa: E402
from usedge.models.onnx import read_metadata  # noqa: E402

TASKS = "fetal_head,cardiac_multi,organ_cls,thyroid_nodule_det,FUGC"


def test_onnx_matches_torch_on_every_backend_and_output(exported):
    model, config, info = exported
    assert info.opset == 17 and info.simplifier.startswith(("onnxsim", "onnxslim"))
    x = np.random.default_rng(1).standard_normal((3, 3, 64, 64)).astype(np.float32)  # dynamic batch: 3
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in model(torch.from_numpy(x)).items()}
    assert available_backends(), "tests need OpenVINO or ONNX Runtime (the cpu extra)"
    for name in available_backends():
        out = open_backend(name, info.path).infer(x)
        assert set(out) == set(ref) == set(info.outputs)
        for k in ref:
            np.testing.assert_allclose(out[k], ref[k], atol=2e-4, rtol=1e-3, err_msg=f"{name} {k}")


def test_onnx_metadata_describes_tasks_and_preprocessing(exported):
    _, config, info = exported
    meta = read_metadata(info.path)
    tasks = json.loads(meta["usedge.tasks"])
    assert [t["id"] for t in tasks] == TASKS.split(",")
    assert tasks[2]["classes"] and tasks[4]["points"]
    assert json.loads(meta["usedge.preprocess"])["size"] == 64 and meta["usedge.simplifier"] == info.simplifier
