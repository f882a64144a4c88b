"""Plain-Python engine decisions: cache key, mismatch messages, sidecars, profiles, precision plans, DLA,
layer patterns, timing-cache paths, progress lines. No TensorRT."""
from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from usedge.bundle import engines as BE
from usedge.engine import plan as P
from usedge.errors import ConfigError, DataError
from usedge.targets import load_target, target_names


# -- profile ---------------------------------------------------------------------------------------------
def test_profile_dynamic_batch():
    p = P.compute_profile(load_target("desktop-gpu"), ["N", 3, 128, 128])
    assert (p.batch_min, p.batch_opt, p.batch_max, p.dynamic) == (1, 4, 16, True)
    assert p.shapes() == ((1, 3, 128, 128), (4, 3, 128, 128), (16, 3, 128, 128))


@pytest.mark.parametrize("batch", ["N", None, -1, 1])
def test_profile_fixed_batch_target(batch):
    p = P.compute_profile(load_target("jetson-orin-nano"), [batch, 3, 64, 96])
    assert p.shapes() == ((1, 3, 64, 96),) * 3 and not p.dynamic


def test_profile_refuses_a_range_a_fixed_batch_onnx_cannot_take():
    with pytest.raises(ConfigError, match="fixed batch of 1, but target desktop-gpu asks for batch 1..16"):
        P.compute_profile(load_target("desktop-gpu"), [1, 3, 128, 128])


def test_profile_refuses_inconsistent_targets_and_shapes():
    t = dataclasses.replace(load_target("jetson-orin-nano"), batch={"min": 1, "opt": 1, "max": 4})
    with pytest.raises(ConfigError, match="dynamic_batch: false but a batch range 1..4"):
        P.compute_profile(t, ["N", 3, 8, 8])
    t = dataclasses.replace(load_target("desktop-gpu"), batch={"min": 4, "opt": 2, "max": 8})
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        P.compute_profile(t, ["N", 3, 8, 8])
    with pytest.raises(DataError, match="fixed C, H, W"):
        P.compute_profile(load_target("desktop-gpu"), ["N", 3, "H", 128])


# -- targets ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", target_names())
def test_every_target_plans_or_refuses_clearly(name, bundle):
    t = load_target(name)
    if "tensorrt" not in t.backends:
        with pytest.raises(ConfigError, match=f"target {name} does not run TensorRT"):
            P.plan_build(bundle, t)
        return
    plan = P.plan_build(bundle, t)
    assert plan.precision.precision == t.precision
    assert (plan.profile.batch_min, plan.profile.batch_opt, plan.profile.batch_max) == \
        (t.batch["min"], t.batch["opt"], t.batch["max"])
    assert plan.dla_core == t.dla_core and plan.workspace_mb == t.workspace_mb
    assert any(line.startswith("profile    images: batch") for line in plan.describe())


def test_tensorrt_targets():
    assert set(P.tensorrt_targets()) == {"desktop-gpu", "jetson-agx-orin", "jetson-orin-nano", "jetson-orin-nx"}


def test_a_profile_file_of_your_own_is_a_target(tmp_path):
    mine = tmp_path / "scanner-x.yaml"
    mine.write_text("name: scanner-x\nprecision: fp16\nbackends: [tensorrt]\nbatch: {min: 1, opt: 2, max: 4}\n"
                    "workspace_mb: 512\n")
    t = load_target(str(mine))
    assert (t.name, t.precision, t.batch["max"], t.workspace_mb) == ("scanner-x", "fp16", 4, 512)
    mine.write_text("name: scanner-x\nbackend: [tensorrt]\n")
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['backend'\]"):
        load_target(str(mine))
    mine.write_text("name: scanner-x\nbackends: [tflite]\n")
    with pytest.raises(ConfigError, match="unknown backend"):
        load_target(str(mine))


# -- precision -------------------------------------------------------------------------------------------
def test_int8_plan_is_strongly_typed_qdq(bundle):
    pp = P.precision_plan(bundle, "int8")
    assert pp.onnx.name == "model.int8.onnx" and pp.strongly_typed and pp.builder_flags == ()
    assert pp.onnx_sha256 == bundle.metadata["files"]["model.int8.onnx"]["sha256"]
    assert pp.qdq_check == "onnx" and pp.float_layers == ("/FUGC/.*",) and pp.float_activations == ("/backbone/x",)
    assert pp.fp32_layer_patterns == ()  # strongly typed: float parts are already fp32 in the graph


@pytest.mark.parametrize("zp", [np.uint8(0), np.int8(3)], ids=["uint8", "nonzero"])
def test_int8_plan_refuses_graphs_tensorrt_cannot_take(bundle_factory, zp):
    b = bundle_factory(zero_point=zp)
    with pytest.raises(DataError, match="not TensorRT-compatible"):
        P.precision_plan(b, "int8")
    P.precision_plan(b, "fp16")  # the fp32 graph is still fine


def test_int8_check_without_onnx_uses_the_export_record(bundle_factory, monkeypatch):
    good = bundle_factory("good")
    bad = bundle_factory("bad", int8_record={"quantizers": 3, "signed_int8": 2, "zero_points_all_zero": True})
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnx" else real(n, *a))
    assert P.precision_plan(good, "int8").qdq_check == "metadata"
    with pytest.raises(DataError, match="does not show a TensorRT-compatible Q/DQ graph"):
        P.precision_plan(bad, "int8")


def test_fp16_pins_landmark_heads_and_float_layers(bundle):
    pp = P.precision_plan(bundle, "fp16")
    assert pp.onnx.name == "model.fp32.onnx" and not pp.strongly_typed
    assert pp.builder_flags == ("FP16", "OBEY_PRECISION_CONSTRAINTS")
    assert pp.fp32_layer_patterns == ("/FUGC/.*",)  # landmark head and int8.float_layers, deduplicated


def test_fp32_and_dla_plans(bundle):
    pp = P.precision_plan(bundle, "fp32")
    assert pp.clear_flags == ("TF32",) and pp.builder_flags == () and pp.onnx.name == "model.fp32.onnx"
    dla = P.precision_plan(bundle, "int8", dla=True)
    assert not dla.strongly_typed and dla.builder_flags[:2] == ("INT8", "FP16") and "/FUGC/.*" in dla.fp32_layer_patterns
    with pytest.raises(ConfigError, match="Unknown precision 'bf16'"):
        P.precision_plan(bundle, "bf16")


def test_failed_gate_is_noted(bundle_factory):
    rec = {"quantizers": 1, "signed_int8": 1, "zero_points_all_zero": True, "passed": False}
    assert any("did not pass the accuracy gate" in n for n in P.precision_plan(bundle_factory(int8_record=rec), "int8").notes)


# -- layer patterns --------------------------------------------------------------------------------------
def test_landmark_patterns_from_metadata():
    meta = {"tasks": [{"id": "FUGC", "kind": "regression", "outputs": ["FUGC.points"]},
                      {"id": "organ_cls", "kind": "classification", "outputs": ["organ_cls.logits"]},
                      {"id": "odd", "kind": "other", "outputs": ["odd.points"]}]}
    assert P.landmark_patterns(meta["tasks"]) == ("/FUGC/.*", "/odd/.*")
    from usedge.bundle import TaskInfo

    typed = (TaskInfo("FUGC", "regression"), TaskInfo("organ_cls", "classification"))
    assert P.landmark_patterns(typed) == ("/FUGC/.*",)


def test_select_layers_is_anchored_and_validates():
    names = ["/FUGC/head/Conv", "/FUGC/Softmax", "/IUGC/Softmax", "/backbone/FUGC/Conv", "(Unnamed Layer* 3) [Shuffle]"]
    assert P.select_layers(names, ["/FUGC/.*"]) == ["/FUGC/head/Conv", "/FUGC/Softmax"]
    assert P.select_layers(names, ["/FUGC/.*", "/IUGC/.*"]) == names[:3]
    assert P.select_layers(names, []) == []
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        P.select_layers(names, ["/FUGC/(.*"])


# -- DLA -------------------------------------------------------------------------------------------------
def test_dla_only_where_the_target_names_a_core():
    t = load_target("jetson-agx-orin")
    fixed, dynamic = P.Profile(1, 1, 1, 3, 8, 8), P.Profile(1, 1, 4, 3, 8, 8)
    assert P.dla_core_for(t, "int8", dynamic) is None  # dla_core: null
    t = dataclasses.replace(t, dla_core=0)
    assert P.dla_core_for(t, "int8", fixed) == 0
    with pytest.raises(ConfigError, match="runs int8 or fp16 only"):
        P.dla_core_for(t, "fp32", fixed)
    with pytest.raises(ConfigError, match="DLA does not take dynamic shapes"):
        P.dla_core_for(t, "fp16", dynamic)
    with pytest.raises(ConfigError, match="dla_core must be null or a core number"):
        P.dla_core_for(dataclasses.replace(t, dla_core=-1), "fp16", fixed)


# -- timing cache ----------------------------------------------------------------------------------------
def test_timing_cache_path_is_per_gpu_and_trt(monkeypatch, tmp_path, orin, rtx):
    monkeypatch.delenv("USEDGE_TRT_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    p = P.timing_cache_path(orin)
    assert p == tmp_path / ".cache" / "usedge" / "tensorrt" / "orin-sm87-trt10.3.0.timing"
    assert P.timing_cache_path(rtx).name == "nvidia-geforce-rtx-4090-sm89-trt10.7.0.timing"
    assert P.timing_cache_path(dataclasses.replace(orin, trt_version="10.7.0")) != p
    assert P.timing_cache_path(orin, tmp_path / "c").parent == tmp_path / "c"
    monkeypatch.setenv("USEDGE_TRT_CACHE", str(tmp_path / "env"))
    assert P.timing_cache_path(orin).parent == tmp_path / "env"


# -- progress --------------------------------------------------------------------------------------------
def test_progress_log_prints_top_phases_only():
    lines = []
    log = P.ProgressLog(lines.append, max_depth=1)
    log.phase_start("Building engine", None, 3)
    log.phase_start("Tactic search", "Building engine", 1)
    log.phase_start("Conv /FUGC/head", "Tactic search", 12)
    assert log.step_complete("Conv /FUGC/head", 0) is True
    log.phase_finish("Conv /FUGC/head")
    log.phase_finish("Tactic search")
    log.phase_finish("Building engine")
    assert lines[0] == "Building engine (3 steps)" and lines[1] == "  Tactic search (1 step)"
    assert lines[2].startswith("  Tactic search: done in ") and lines[3].startswith("Building engine: done in ")
    assert len(lines) == 4


# -- TensorRT version x device ---------------------------------------------------------------------------
@pytest.mark.parametrize("version,machine,weak,dla", [
    ("10.3.0.30", BE.MachineInfo("Orin", "8.7", ""), True, True),             # JetPack 6
    ("10.7.0", BE.MachineInfo("NVIDIA GeForce RTX 4090", "8.9", ""), True, False),
    ("11.4.0", BE.MachineInfo("NVIDIA H100", "9.0", ""), False, False),
    ("11.4.1", BE.MachineInfo("Orin", "8.7", ""), False, True),              # JetPack 7.2.2, AGX Orin
    ("11.4.1", BE.MachineInfo("Thor", "11.0", ""), False, False),
])
def test_trt_support_matrix_trt11(version, machine, weak, dla):
    got = P.trt_support(version, machine)
    assert (got.weak_typing, got.dla) == (weak, dla) and got.why_no_dla == ("" if dla else got.why_no_dla)
    assert dla or got.why_no_dla


@pytest.mark.parametrize("version,jetson,message", [
    ("9.3.0", False, "TensorRT 10.0 or newer"), ("11.0.0", True, "does not support Jetson"),
    ("11.4.0", True, "does not support Jetson")])
def test_unsupported_trt_versions_are_refused_trt11(version, jetson, message):
    with pytest.raises(ConfigError, match=message):
        P.trt_support(version, jetson=jetson)
    with pytest.raises(DataError, match="is not a version number"):
        P.trt_support("eleven")


def test_trt11_plans_differ_from_trt10_only_where_weak_typing_was_used(bundle):
    t10, t11 = P.trt_support("10.3.0", jetson=True), P.trt_support("11.4.1", BE.MachineInfo("Orin", "8.7", ""))
    for support in (t10, t11):
        assert P.precision_plan(bundle, "int8", support=support).strongly_typed      # Q/DQ: strongly typed on both
    assert P.precision_plan(bundle, "fp32", support=t10).strongly_typed is False
    assert P.precision_plan(bundle, "fp32", support=t11).strongly_typed is True
    weak, strong = (P.precision_plan(bundle, "int8", dla=True, support=s) for s in (t10, t11))
    assert weak.builder_flags == ("INT8", "FP16", "OBEY_PRECISION_CONSTRAINTS") and not weak.strongly_typed
    assert strong.builder_flags == () and strong.strongly_typed and strong.fp32_layer_patterns == ()
    assert weak.gpu_layer_patterns == strong.gpu_layer_patterns == ("/FUGC/.*", "/organ_cls/.*")
    with pytest.raises(ConfigError, match="builds fp16 only from an FP16 ONNX"):
        P.precision_plan(bundle, "fp16", support=t11)
