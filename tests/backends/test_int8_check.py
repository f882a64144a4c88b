"""The int8 check that travels with a bundle: exact Q/DQ outputs stored at export, compared on each machine
(usedge verify, usedge.load(precision="auto")), cached by content; a failing check makes load fall back."""
import logging

import numpy as np
import pytest

from usedge.backends import available_backends

pytestmark = pytest.mark.skipif(not available_backends(), reason="needs OpenVINO or ONNX Runtime (usedge[cpu])")
TASKS = "fetal_head,cardiac_multi,organ_cls,thyroid_nodule_det,FUGC"


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory):
    """A tiny int8 bundle (5 tasks, 64² input) exported for the cpu target, gate wide open (random weights)."""
    pytest.importorskip("nncf")
    from tests.conftest import export_tiny_bundle
    from usedge.quantize.gate import GateConfig

    wide = GateConfig(max_drop_points=100, max_mre_increase=100, hard_drop_points=100, hard_mre_increase=100)
    return export_tiny_bundle(tmp_path_factory.mktemp("int8-bundle"), TASKS, images_per_task=12, data_seed=4,
                              per_task=10, gate=wide, qat="never", max_float=0, latency_runs=2)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("USEDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_export_stores_the_check_and_records_where_it_ran(int8_bundle):
    from usedge._cpu import cpu_isa
    from usedge.backends.int8_check import PER_TASK, load_check
    from usedge.bundle import INT8_CHECK_FILE, load_bundle

    bundle = load_bundle(int8_bundle)
    meta = bundle.metadata["int8"]
    assert meta["weight_bits"] == 7 and meta["max_abs_weight"] <= 64
    assert set(meta["check"]["here"]) == set(available_backends()) and meta["check"]["passed"]
    assert all(r["passed"] and r["machine"]["label"] for r in meta["check"]["here"].values())
    assert ("emulated_avx2" in meta["check"]) == (cpu_isa().vnni and "openvino" in available_backends())
    if "emulated_avx2" in meta["check"]:
        assert meta["check"]["emulated_avx2"]["passed"] is True
        assert "AVX2" in meta["check"]["emulated_avx2"]["machine"]["label"]
    assert meta["gate_machine"]["label"] and meta["gate_machine"]["versions"]
    assert bundle.metadata["latency"]["conditions"]["isa"]
    check = load_check(int8_bundle / INT8_CHECK_FILE)
    assert check.images.dtype == np.uint8 and check.images.shape[1:3] == (64, 64)
    assert sorted(set(check.tasks)) == sorted(TASKS.split(",")) and len(check.tasks) == PER_TASK * 5


def test_check_compares_each_task_on_its_own_images_and_catches_a_wrong_result(int8_bundle, cache):
    from dataclasses import replace

    from usedge.backends.int8_check import check_backend, load_check
    from usedge.bundle import load_bundle

    bundle = load_bundle(int8_bundle)
    check = load_check(int8_bundle)
    for name in available_backends():
        first = check_backend(bundle, name, check)
        assert first["passed"] and not first["cached"] and set(first["tasks"]) == set(TASKS.split(","))
        assert check_backend(bundle, name, check)["cached"]              # same content: cached verdict
    # a runtime 3 px off on the landmarks and with another segmentation: what saturation looks like
    ref = dict(check.ref)
    ref["FUGC.points"] = ref["FUGC.points"] + 3.0 / 64
    seg = ref["fetal_head.logits"]
    ref["fetal_head.logits"] = (np.indices(seg.shape).sum(0) % 2).astype(seg.dtype)   # stored as argmax maps
    wrong = replace(check, ref=ref, sha256="changed")
    for name in available_backends():
        verdict = check_backend(bundle, name, wrong, use_cache=False)
        assert verdict["passed"] is False and verdict["failing"] == ["FUGC", "fetal_head"]
        assert verdict["tasks"]["FUGC"]["value"] > 2.5 and verdict["tasks"]["fetal_head"]["metric"] == "dice"


def test_verify_runs_the_check_on_slim_bundles_and_the_gate_with_data(int8_bundle, tmp_path, cache):
    from usedge.bundle import INT8_CHECK_FILE, slim_bundle
    from usedge.runtime.verify import verify_bundle

    slim = slim_bundle(int8_bundle, tmp_path / "slim", ("int8",))
    assert (slim / INT8_CHECK_FILE).is_file() and not (slim / "parity_inputs.npz").exists()
    result = verify_bundle(slim)
    assert result["passed"] and result["int8_check"]["passed"] is True
    assert set(result["int8_check"]["backends"]) == set(available_backends())
    full = verify_bundle(int8_bundle, data=int8_bundle.parent / "data", emulate=False)
    assert full["passed"] and full["gate"]["passed"] and "emulated_avx2" not in full["int8_check"]
    assert {r["task"] for r in full["gate"]["rows"]} == set(TASKS.split(","))


def test_load_auto_never_picks_an_int8_graph_whose_check_fails_here(int8_bundle, cache, monkeypatch, caplog):
    pytest.importorskip("openvino")
    import usedge
    import usedge._cpu as cpu
    import usedge.backends.int8_check as ic
    import usedge.runtime.predictor as pred
    vnni = cpu.CpuIsa("test CPU", "x86_64", "avx512_vnni", True, "avx512_vnni")
    monkeypatch.setattr(cpu, "isa_for", lambda backend: vnni)           # int8 pays here ...
    monkeypatch.setattr(pred, "_faster", lambda latency, backend: ("int8", "int8 measured faster (test)"))
    real = ic.check_backend

    def failing_on_openvino(bundle, backend, *a, **k):                  # ... but is wrong on this CPU
        verdict = real(bundle, backend, *a, **k)
        if backend == "openvino":
            verdict = verdict | {"passed": False, "failing": ["FUGC"],
                                 "tasks": {"FUGC": {"metric": "px", "value": 3.6, "ok": False}}}
        return verdict

    monkeypatch.setattr(ic, "check_backend", failing_on_openvino)
    with caplog.at_level(logging.WARNING, logger="usedge"):
        with usedge.load(int8_bundle, backend="openvino") as p:
            assert p.choice.precision == "fp32" and "int8 not used: its int8 check fails" in p.choice.reason
            assert p.predict(np.zeros((80, 80), np.uint8)).tasks
    assert "not using int8 on openvino" in caplog.text and "FUGC px 3.6" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="usedge"):                # asked for: runs, loudly
        with usedge.load(int8_bundle, backend="openvino", precision="int8") as p:
            assert p.choice.precision == "int8"
    assert "requested although its int8 check fails" in caplog.text
    monkeypatch.setattr(ic, "check_backend", real)
    with usedge.load(int8_bundle, backend="openvino") as p:                # the real check passes here
        assert p.choice.precision == "int8"


def test_load_auto_measures_int8_on_a_cpu_without_vnni(int8_bundle, monkeypatch, cache):
    """Without VNNI int8 may or may not pay (0.98x on an AVX2 EPYC, 1.21x on a Xeon limited to AVX2): auto
    measures it here once (cached) and takes fp32 when int8 is not faster, saying why."""
    pytest.importorskip("openvino")
    import usedge.backends.int8_check as ic
    from usedge.bundle import load_bundle
    from usedge.runtime.predictor import choose

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")     # OpenVINO's view of this CPU: no VNNI
    bundle = load_bundle(int8_bundle)
    speed = ic.int8_speedup_here(bundle, "openvino", runs=5)
    assert speed["fp32_ms"] > 0 and speed["int8_ms"] > 0 and not speed["cached"] and "avx2" in speed["machine"]["label"].lower()
    assert ic.int8_speedup_here(bundle, "openvino")["cached"]
    monkeypatch.setattr(ic, "int8_speedup_here", lambda b, be: {"speedup": 0.98, "int8_ms": 10.9, "fp32_ms": 10.7})
    c = choose(bundle, backend="openvino")
    assert c.precision == "fp32" and "no VNNI" in c.reason and "0.98x" in c.reason
    monkeypatch.setattr(ic, "int8_speedup_here", lambda b, be: {"speedup": 1.4, "int8_ms": 5.0, "fp32_ms": 7.0})
    assert "int8 measured" not in choose(bundle, backend="openvino").reason
