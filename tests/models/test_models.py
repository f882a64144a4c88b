import pytest

torch = pytest.importorskip("torch")

from usedge.errors import ConfigError, DataError  # noqa: E402
from usedge.models import MODELS, build_model  # noqa: E402
from usedge.models.backbones import create_backbone  # noqa: E402
from usedge.models.baseline import BaselineB4, load_baseline_checkpoint  # noqa: E402
from usedge.tasks import ALL_TASKS, TaskKind, get_task  # noqa: E402

SIZE = 128


def _check_shapes(out, tasks, n=2, size=SIZE, seg_stride=4):
    assert set(out) == {o.name for t in tasks for o in t.outputs}
    for t in tasks:
        if t.kind is TaskKind.SEGMENTATION:
            assert out[t.output_names[0]].shape == (n, t.num_classes, size // seg_stride, size // seg_stride)
        elif t.kind is TaskKind.CLASSIFICATION:
            assert out[t.output_names[0]].shape == (n, t.num_classes)
        elif t.kind is TaskKind.DETECTION:
            boxes, obj = out[t.output_names[0]], out[t.output_names[1]]
            assert boxes.shape[:2] == (n, 4) and obj.shape[:2] == (n, 1) and boxes.shape[2:] == obj.shape[2:]
            assert boxes.min() >= 0 and boxes.max() <= 1
        else:
            pts = out[t.output_names[0]]
            assert pts.shape == (n, t.num_points, 2)


@pytest.mark.parametrize("name", [n for n in MODELS.names() if not n.startswith(("baseline-", "teacher-"))])
def test_student_presets_contract(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        out = model(x)
        _check_shapes(out, ALL_TASKS, seg_stride=MODELS.get(name).dense_stride)
        sub = model(x, tasks=["fetal_plane_cls", "FUGC"])
    assert set(sub) == {"fetal_plane_cls.logits", "FUGC.points"}
    torch.testing.assert_close(sub["FUGC.points"], out["FUGC.points"])
    with pytest.raises(ConfigError, match="no head"):
        model(x, tasks=["nope"])


def test_dense_stride_two_uses_the_stride_two_feature():
    """dense_stride=2: the dense map is refined with the backbone's stride-2 feature; outputs at size / 2."""
    from dataclasses import replace

    from usedge.models.presets import resolve_config

    for stride in (2, 4):
        config = replace(resolve_config("student-s", "fetal_head,thyroid_nodule_det,FUGC"), dense_stride=stride)
        model = build_model(config).eval()
        assert model.backbone.reductions[0] == stride and model.neck.stride == stride
        with torch.no_grad():
            out = model(torch.randn(1, 3, SIZE, SIZE))
        assert out["fetal_head.logits"].shape[-1] == SIZE // stride
        assert out["thyroid_nodule_det.objectness"].shape[-1] == SIZE // stride
    with pytest.raises(ConfigError, match="dense_stride"):
        build_model(replace(resolve_config("student-s"), dense_stride=8))


def test_student_trains_one_step():
    model = build_model("student-s", tasks="fetal_head,IUGC,thyroid_nodule_det,breast_2cls").train()
    x = torch.randn(2, 3, SIZE, SIZE)
    out = model(x)
    loss = sum(v.float().mean() for v in out.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_neck_skipped_for_global_tasks_only():
    model = build_model("student-s", tasks="breast_2cls,fetal_femur,fetal_head").eval()
    calls = []
    model.neck.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        model(torch.randn(1, 3, SIZE, SIZE), tasks=["breast_2cls"])
        assert calls == [] or model.heads["fetal_femur"].needs_dense
        model(torch.randn(1, 3, SIZE, SIZE), tasks=["fetal_head"])
    assert len(calls) >= 1


def test_direct_regression_variant():
    from dataclasses import replace

    from usedge.models.presets import resolve_config

    cfg = replace(resolve_config("student-s", "FUGC"), regression="direct")
    out = build_model(cfg).eval()(torch.randn(1, 3, SIZE, SIZE))
    assert out["FUGC.points"].shape == (1, 2, 2) and 0 <= out["FUGC.points"].min() <= out["FUGC.points"].max() <= 1


def test_detection_head_decodes_as_the_five_channel_form_and_loads_its_checkpoints():
    """The two-conv head computes what one 5-channel conv split in the graph computed, from the same weights."""
    from usedge.models.heads import DetectionHead, Features

    spec = get_task("thyroid_nodule_det")
    torch.manual_seed(0)
    old = {"block.weight": torch.randn(5, 8, 1, 1), "block.bias": torch.randn(5)}
    head = DetectionHead(spec, 8)
    head.load_state_dict(dict(old))     # a checkpoint of the 5-channel form, strict
    fused = torch.randn(2, 8, 6, 5)
    out = head(Features((24, 20), torch.zeros(2, 1, 1, 1), fused))
    raw = torch.nn.functional.conv2d(fused, old["block.weight"], old["block.bias"])
    h, w = raw.shape[-2:]
    cy, cx = (torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w
    d = torch.sigmoid(raw[:, :4])
    boxes = torch.stack([cx.view(1, 1, w) - d[:, 0], cy.view(1, h, 1) - d[:, 1],
                         cx.view(1, 1, w) + d[:, 2], cy.view(1, h, 1) + d[:, 3]], dim=1).clamp(0, 1)
    boxes_name, obj_name = spec.output_names
    close = dict(atol=1e-6, rtol=0)    # a 4- and a 1-channel conv may sum in another order than one of 5
    assert torch.allclose(out[boxes_name], boxes, **close) and torch.allclose(out[obj_name], raw[:, 4:5], **close)
    assert set(head.state_dict()) == {"block.weight", "block.bias", "block_obj.weight", "block_obj.bias"}
    again = DetectionHead(spec, 8)
    again.load_state_dict(head.state_dict())    # and its own form
    assert torch.equal(again(Features((24, 20), torch.zeros(2, 1, 1, 1), fused))[boxes_name], out[boxes_name])


@pytest.fixture(scope="module")
def baseline_checkpoint(tmp_path_factory):
    """A state_dict built by the baseline-compatible construction, saved as the original code does,
    wrapped the way training scripts often wrap it (DDP 'module.' prefix inside a dict)."""
    torch.manual_seed(0)
    model = BaselineB4().eval()
    for m in model.modules():  # non-trivial BN statistics so eval-mode parity is meaningful
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("ckpt") / "best_model.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    return path, model.state_dict()


def test_baseline_state_dict_loads_strict(baseline_checkpoint):
    path, state = baseline_checkpoint
    fresh = BaselineB4()
    fresh.load_state_dict(state, strict=True)  # the plain construction matches key for key
    loaded = load_baseline_checkpoint(path)
    assert loaded.task_ids == [t.id for t in ALL_TASKS]
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    # the baseline's own module names, as its checkpoints spell them
    names = set(state)
    assert {"heads.breast_2cls.head.3.weight", "heads.FUGC.linear.weight", "heads.fetal_head.0.weight",
            "heads.thyroid_nodule_det.conv_block.6.bias", "fpn_decoder.seg_blocks.0.block.0.block.0.weight"} <= names


def test_one_pass_equals_per_task_for_all_27(baseline_checkpoint):
    path, _ = baseline_checkpoint
    model = load_baseline_checkpoint(path).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        one_pass = model(x)
        _check_shapes(one_pass, ALL_TASKS, seg_stride=1)
        for spec in ALL_TASKS:
            raw = model.forward_task(x, spec.id)
            if spec.kind is TaskKind.DETECTION:
                torch.testing.assert_close(one_pass[spec.output_names[0]], raw[:, :4], atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(one_pass[spec.output_names[1]], raw[:, 4:5], atol=1e-5, rtol=1e-5)
            else:
                torch.testing.assert_close(one_pass[spec.output_names[0]].reshape(raw.shape), raw, atol=1e-5, rtol=1e-5)


def test_baseline_rejects_wrong_checkpoints(tmp_path):
    torch.save(build_model("student-s", tasks="FUGC").state_dict(), tmp_path / "student.pth")
    with pytest.raises(DataError, match="does not match the baseline-b4"):
        load_baseline_checkpoint(tmp_path / "student.pth", tasks=[get_task("FUGC")])
    torch.save({"optimizer": {"lr": 1}}, tmp_path / "odd.pth")
    with pytest.raises(DataError, match="no state_dict"):
        load_baseline_checkpoint(tmp_path / "odd.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="Cannot read baseline checkpoint"):
        load_baseline_checkpoint(tmp_path / "junk.pth")


def test_backbone_errors_list_fixes():
    with pytest.raises(ConfigError, match="timm has no model"):
        create_backbone("timm/not_a_model")
    with pytest.raises(ConfigError, match="no encoder"):
        create_backbone("smp/not_an_encoder")
    with pytest.raises(ConfigError, match="Unknown model"):
        build_model("student-xl")


def test_a_baseline_pth_is_processed_as_the_baseline_does(baseline_checkpoint):
    """`usedge eval --model best_model.pth` feeds and decodes it as the official docker/model.py does."""
    from usedge.data.preprocess import PreprocessSpec
    from usedge.models.checkpoint import load_checkpoint

    _, config, _ = load_checkpoint(baseline_checkpoint[0])
    spec = PreprocessSpec.from_config(config)
    assert (spec.size, spec.resize, spec.seg_decode) == (256, "bilinear", "argmax-nearest")
