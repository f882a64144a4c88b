"""A ViT teacher end to end: it trains with the mixed-task recipe, exports to ONNX, and distils into a CNN
student with feature distillation across the two architectures."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from usedge.distill.loop import DistillConfig, Distiller  # noqa: E402
from usedge.models.checkpoint import load_checkpoint  # noqa: E402
from usedge.train.loop import TrainConfig, Trainer  # noqa: E402

TASKS = "fetal_head,organ_cls,thyroid_nodule_det,fetal_femur"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from usedge.data.phantom import generate_dataset

    root = tmp_path_factory.mktemp("phantom")
    generate_dataset(root, per_task=6, seed=11, size=96, tasks=TASKS.split(","), progress=False)
    return root


@pytest.fixture(scope="module")
def vit_teacher(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("vit")
    cfg = TrainConfig(data=str(data), out=str(out), model="timm/vit_tiny_patch16_224", tasks=TASKS, epochs=1,
                      steps_per_epoch=4, batch_size=4, tasks_per_batch=4, input_size=64, warmup_steps=1, workers=0)
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.model.backbone.state_dict().items()}
    trainer.fit(progress=False)
    moved = [k for k, v in trainer.model.backbone.state_dict().items() if not torch.equal(v, before[k])]
    return out / "last", trainer, moved


def test_vit_teacher_trains_and_its_checkpoint_reloads(vit_teacher):
    path, trainer, moved = vit_teacher
    assert any(k.startswith("body.") for k in moved) and any(k.startswith("pyramid.") for k in moved)
    model, config, _ = load_checkpoint(path)
    assert config.backbone == "timm/vit_tiny_patch16_224" and config.input_size == 64
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = model.eval()(x), trainer.model.eval()(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_vit_teacher_exports_to_onnx(vit_teacher, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from usedge.models.onnx import export_onnx

    model, config, _ = load_checkpoint(vit_teacher[0])
    info = export_onnx(model.eval(), config, tmp_path / "vit.onnx")
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32)
    sess = ort.InferenceSession(str(info.path), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    np.testing.assert_allclose(got["organ_cls.logits"], ref["organ_cls.logits"].numpy(), atol=3e-4, rtol=1e-3)


def test_vit_teacher_distils_into_a_cnn_student_with_feature_kd(vit_teacher, data, tmp_path):
    cfg = DistillConfig(data=str(data), out=str(tmp_path), model="student-s", tasks=TASKS, epochs=1, steps_per_epoch=4,
                        batch_size=4, tasks_per_batch=4, input_size=64, warmup_steps=1, workers=0,
                        teachers=(str(vit_teacher[0]),))
    d = Distiller(cfg)
    (name,) = d.adapters.adapters.keys()
    adapter = d.adapters.adapters[name]
    teacher_neck = d.teacher_set.teachers[0].model.neck
    assert (adapter.in_channels, adapter.out_channels) == (d.model.neck.out_channels, teacher_neck.out_channels)
    start = adapter.weight.detach().clone()
    d.fit(progress=False)
    assert not torch.equal(start, adapter.weight.detach())          # the feature term trained its adapter
    meta = json.loads((tmp_path / "best" / "config.json").read_text())["meta"]
    assert meta["teachers"][0]["backbone"] == "timm/vit_tiny_patch16_224"
    assert meta["distill"]["feature"] > 0
