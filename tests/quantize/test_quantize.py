"""Calibration sets (balance, toy-set refusal, hash check), signed symmetric Q/DQ, the per-task gate."""
from dataclasses import replace

import numpy as np
import pytest

from usedge.data.preprocess import PreprocessSpec
from usedge.errors import ConfigError, DataError
from usedge.quantize.calibration import MIN_PER_TASK, build_calibration, load_calibration
from usedge.quantize.gate import GateConfig, apply_gate, failing

TASKS = ["fetal_head", "organ_cls", "thyroid_nodule_det", "FUGC"]
SPEC = PreprocessSpec(size=64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from usedge.data.phantom import generate_dataset

    root = tmp_path_factory.mktemp("calib")
    generate_dataset(root / "ok", per_task=MIN_PER_TASK + 2, seed=1, size=96, tasks=TASKS, progress=False)
    generate_dataset(root / "toy", per_task=3, seed=1, size=96, tasks=TASKS, progress=False)
    return root


def test_calibration_is_balanced_and_refuses_a_changed_set(data, tmp_path):
    calib = build_calibration(data / "ok", SPEC, TASKS, out=tmp_path / "c", per_task=MIN_PER_TASK)
    assert calib.manifest["per_task"] == {t: MIN_PER_TASK for t in TASKS}
    assert calib.images.shape == (4 * MIN_PER_TASK, 3, 64, 64) and calib.images.dtype == np.float32
    again = load_calibration(tmp_path / "c" / "manifest.json")
    assert again.sha256 == calib.sha256
    # same request, same set (seeded); another seed, another selection
    assert build_calibration(data / "ok", SPEC, TASKS, per_task=MIN_PER_TASK).sha256 == calib.sha256
    changed = np.load(tmp_path / "c" / "calibration.npz")["images"].copy()
    changed[0, 0, 0, 0] += 1
    np.savez_compressed(tmp_path / "c" / "calibration.npz", images=changed)
    with pytest.raises(DataError, match="do not match their manifest"):
        load_calibration(tmp_path / "c")


def test_calibration_cache_is_keyed_by_content_not_by_path(data, tmp_path):
    """The same images in another folder hit the cache; new images in the same folder (a newer phantom written
    in place) miss it; a damaged cached set is rebuilt."""
    import shutil

    from usedge.data.phantom import generate_dataset
    from usedge.quantize.calibration import cached_calibration

    cache, logs = tmp_path / "cache", []
    first = cached_calibration(data / "ok", SPEC, TASKS, MIN_PER_TASK, 0, "model-a", cache, log=logs.append)
    shutil.copytree(data / "ok", tmp_path / "moved")
    moved = cached_calibration(tmp_path / "moved", SPEC, TASKS, MIN_PER_TASK, 0, "model-a", cache, log=logs.append)
    assert moved.sha256 == first.sha256 and len(logs) == 1 and len(list(cache.iterdir())) == 1
    generate_dataset(tmp_path / "moved", per_task=MIN_PER_TASK + 2, seed=2, size=96, tasks=TASKS, progress=False)
    fresh = cached_calibration(tmp_path / "moved", SPEC, TASKS, MIN_PER_TASK, 0, "model-a", cache, log=logs.append)
    assert fresh.sha256 != first.sha256 and len(logs) == 2 and len(list(cache.iterdir())) == 2
    other_model = cached_calibration(data / "ok", SPEC, TASKS, MIN_PER_TASK, 0, "model-b", cache, log=logs.append)
    assert other_model.sha256 == first.sha256 and len(logs) == 3        # same images, keyed apart by the model
    (first.path / "calibration.npz").write_bytes(b"damaged")
    again = cached_calibration(data / "ok", SPEC, TASKS, MIN_PER_TASK, 0, "model-a", cache, log=logs.append)
    assert again.sha256 == first.sha256 and len(logs) == 4


def test_toy_calibration_sets_are_refused_unless_allowed(data):
    with pytest.raises(ConfigError, match=f"at least {MIN_PER_TASK} images per task") as err:
        build_calibration(data / "toy", SPEC, TASKS, per_task=16)
    assert "fetal_head (3)" in str(err.value) and "--allow-small-calibration" in err.value.fix
    small = build_calibration(data / "toy", SPEC, TASKS, per_task=16, allow_small=True)
    assert small.manifest["allow_small"] is True and len(small) == 12


def test_gate_judges_points_and_relative_mre():
    fp32 = {"fetal_head": {"dice": 0.80}, "organ_cls": {"accuracy": 0.90}, "FUGC": {"mre": 10.0},
            "fetal_femur": {"mre": 10.0}}
    int8 = {"fetal_head": {"dice": 0.791}, "organ_cls": {"accuracy": 0.885}, "FUGC": {"mre": 10.4},
            "fetal_femur": {"mre": 10.6}}
    rows = apply_gate(fp32, int8, GateConfig())
    assert failing(rows) == ["organ_cls", "fetal_femur"]   # -1.5 pt; +6 % MRE
    assert [r.change for r in rows] == ["-0.90 pt", "-1.50 pt", "+4.0 %", "+6.0 %"]
    assert failing(apply_gate(fp32, {}, GateConfig())) == list(fp32)  # a missing result never passes


def test_a_one_image_loss_is_exactly_one_point_not_more():
    """100 * (0.95 - 0.94) is 1.0000000000000009 in floats: the old gate failed it as "more than 1 point"."""
    rows = apply_gate({"organ_cls": {"accuracy": 0.95}}, {"organ_cls": {"accuracy": 0.94}}, GateConfig())
    assert not failing(rows) and rows[0].change == "-1.00 pt"


def _flips(n: int, lost: int, gained: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image correctness of fp32 and int8 on n images: ``lost`` right only in fp32, ``gained`` only int8."""
    a, b = np.ones(n), np.ones(n)
    b[:lost] = 0
    a[lost:lost + gained] = 0
    return a, b


@pytest.mark.parametrize("lost, gained, fails", [(2, 0, False),   # 2 points, p = 0.25: noise
                                                 (3, 1, False),   # 2 points net, p = 0.31
                                                 (5, 0, True),    # 5 points: beyond the hard limit
                                                 (3, 0, False)])  # 3 points, p = 0.125, at the hard limit
def test_gate_fails_significant_or_large_losses_only(lost, gained, fails):
    a, b = _flips(100, lost, gained)
    fp32 = {"organ_cls": {"accuracy": a.mean(), "n": 100}}
    int8 = {"organ_cls": {"accuracy": b.mean(), "n": 100}}
    row = apply_gate(fp32, int8, GateConfig(), {"organ_cls": a}, {"organ_cls": b})[0]
    assert (not row.passed) == fails
    assert 0 < row.p_value <= 1 and row.ci_low <= 100 * (a.mean() - b.mean()) <= row.ci_high


def test_gate_fails_a_small_but_consistent_dice_loss_and_passes_noise():
    from usedge.quantize.gate import paired_loss

    rng = np.random.default_rng(0)
    fp32 = rng.uniform(0.7, 0.95, 100)
    consistent = fp32 - rng.uniform(0.01, 0.02, 100)           # every image loses 1-2 points
    noisy = fp32 + rng.normal(0, 0.03, 100) - 0.003             # no systematic loss
    mean, p, lo, hi = paired_loss(fp32, consistent, higher_is_better=True)
    assert 0.01 <= mean <= 0.02 and p < 0.001 and 0.01 <= lo <= hi <= 0.02
    rows = apply_gate({"fetal_head": {"dice": fp32.mean(), "n": 100}, "lung": {"dice": fp32.mean(), "n": 100}},
                      {"fetal_head": {"dice": consistent.mean()}, "lung": {"dice": noisy.mean()}}, GateConfig(),
                      {"fetal_head": fp32, "lung": fp32}, {"fetal_head": consistent, "lung": noisy})
    assert failing(rows) == ["fetal_head"]
    # landmarks: lower is better; a 10 % larger error on every image fails, with the loss in % of fp32's MRE
    err = rng.uniform(3, 9, 100)
    row = apply_gate({"FUGC": {"mre": err.mean(), "n": 100}}, {"FUGC": {"mre": 1.1 * err.mean()}}, GateConfig(),
                     {"FUGC": err}, {"FUGC": 1.1 * err})[0]
    assert not row.passed and row.change == "+10.0 %" and 9 < row.ci_low <= 10 <= row.ci_high < 11


def test_gate_resolution_is_stated():
    from usedge.quantize.gate import resolution

    text = resolution(100, GateConfig())
    assert "1.0 points" in text and "from 5 images (5 points)" in text


torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("nncf")


def _tiny_onnx(tmp_path):
    from usedge.models import build_model
    from usedge.models.onnx import export_onnx
    from usedge.models.presets import resolve_config

    config = replace(resolve_config("student-s", TASKS), input_size=64)
    torch.manual_seed(0)
    model = build_model(config).eval()
    return model, config, export_onnx(model, config, tmp_path / "m.onnx")


@pytest.mark.slow
def test_int8_graph_is_signed_symmetric_and_runs_everywhere(tmp_path):
    from usedge.backends import available_backends, open_backend
    from usedge.bundle.qdq import assert_trt_compatible, qdq_report
    from usedge.quantize.int8 import quantize_onnx

    _, _, info = _tiny_onnx(tmp_path)
    calib = np.random.default_rng(0).standard_normal((12, 3, 64, 64)).astype(np.float32)
    rep = quantize_onnx(info.path, calib, tmp_path / "q.onnx")
    assert rep.quantizers > 20 and rep.int8 == rep.quantizers and rep.uint8 == 0
    assert assert_trt_compatible(tmp_path / "q.onnx").trt_compatible
    # every QuantizeLinear: int8 zero point, all zeros (checked here independently of qdq_report)
    model = onnx.load(str(tmp_path / "q.onnx"))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)
    for name in available_backends():
        out = open_backend(name, tmp_path / "q.onnx").infer(calib[:2])
        assert all(np.isfinite(v).all() for v in out.values())
    # an asymmetric quantizer is reported
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    for init in model.graph.initializer:
        if init.name == q.input[2]:
            init.CopyFrom(onnx.numpy_helper.from_array(np.full_like(inits[q.input[2]], 3), init.name))
    assert q.name in qdq_report(model).nonzero_zero_points
    with pytest.raises(DataError, match="not TensorRT-compatible"):
        assert_trt_compatible(model)
