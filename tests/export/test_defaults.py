"""The built-in default student ships in the package and loads without training or downloads."""
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")


def test_default_student_ships_and_loads():
    from usedge.assets import default_checkpoint
    from usedge.export.defaults import resolve_model

    path = default_checkpoint()
    size_mb = sum(f.stat().st_size for f in path.iterdir()) / 1e6
    assert size_mb < 8, f"the shipped default should stay a few MB, is {size_mb:.1f}"
    meta = json.loads((path / "config.json").read_text())
    assert meta["meta"]["stored_as"].startswith("float16")
    model, config, source = resolve_model(None)
    assert len(config.tasks) == 27 and source["checkpoint"].startswith("usedge:")
    assert all(p.dtype.is_floating_point and str(p.dtype) == "torch.float32" for p in model.parameters())
    assert "| task |" in (path / "EVAL.md").read_text()


def test_packaged_default_bundle_is_current_slim_and_loads_without_export():
    """usedge/assets/default_bundle must come from the shipped default student (rebuild:
    python scripts/build_default_bundle.py)."""
    import usedge
    from usedge.assets import default_checkpoint, shipped_bundle
    from usedge.bundle import load_bundle, sha256_file

    bundle = load_bundle(shipped_bundle())  # verifies every checksum
    assert bundle.metadata["slim"]["default_student_sha256"] == sha256_file(default_checkpoint() / "model.safetensors"), \
        "stale: run python scripts/build_default_bundle.py"
    assert bundle.precisions == ["fp32", "int8"] and bundle.metadata["int8"]["passed"]
    # int8 for every x86 CPU: 7-bit weights, checked where it was exported and without VNNI (emulated or native)
    int8 = bundle.metadata["int8"]
    assert int8["weight_bits"] == 7 and int8["max_abs_weight"] <= 64 and int8["check"]["passed"]
    assert all(r["passed"] for r in int8["check"]["here"].values())
    assert not int8["gate_machine"]["vnni"] or int8["check"]["emulated_avx2"]["passed"] is True
    assert (bundle.path / "int8_check.npz").is_file()
    pytest.importorskip("onnx")
    from usedge.bundle.qdq import check_placement

    placement = check_placement(bundle.model_path("int8"))   # int8 throughout: every conv / residual Add input
    assert placement.ok and not placement.float_inputs and placement.weighted_ops > 80, placement.summary()
    size_mb = sum(f.stat().st_size for f in bundle.path.iterdir()) / 1e6
    assert size_mb < 10, f"the packaged bundle should stay small, is {size_mb:.1f} MB"
    with usedge.load(bundle, backend="onnxruntime") as p:
        assert len(p.predict(__import__("numpy").zeros((64, 64), "uint8")).tasks) == 27


def test_slim_bundle_keeps_only_what_it_is_asked(bundle_dir, tmp_path):
    from usedge.bundle import load_bundle, slim_bundle
    from usedge.errors import DataError
    from usedge.runtime.verify import verify_bundle

    full = load_bundle(bundle_dir)
    out = slim_bundle(bundle_dir, tmp_path / "slim", (full.precisions[-1],), note={"why": "test"})
    slim = load_bundle(out)
    assert slim.precisions == [full.precisions[-1]] and slim.metadata["slim"]["why"] == "test"
    assert not (out / "parity_inputs.npz").exists() and "parity_inputs.npz" in slim.metadata["slim"]["dropped"]
    result = verify_bundle(out)
    assert result["passed"] and "parity_skipped" in result
    with pytest.raises(DataError, match="no fp16 model"):
        slim_bundle(bundle_dir, tmp_path / "other", ("fp16",))


def test_one_default_everywhere_opens_the_packaged_bundle_and_never_exports(monkeypatch):
    """usedge stream / serve (default_bundle) and usedge.load() with no bundle open the packaged INT8 bundle,
    with torch installed or not: no export on first use (it took 5 minutes and printed NNCF logs)."""
    import time

    import usedge
    from usedge.assets import shipped_bundle
    from usedge.cli import stream as stream_cli
    from usedge.export import pipeline

    def no_export(*a, **k):
        raise AssertionError("the default must not be exported on first use")

    monkeypatch.setattr(pipeline, "run_export", no_export)
    assert stream_cli.default_bundle() == shipped_bundle()
    t0 = time.perf_counter()
    predictor = usedge.load()
    opened = time.perf_counter() - t0
    from usedge._cpu import isa_for

    # int8 only where it pays: with VNNI, or without it where int8 measured faster HERE (a cached side-by-side
    # timing, usedge.backends.int8_check); fp32 otherwise (the packaged bundle ships both)
    assert predictor.precision in ("int8", "fp32") and len(predictor.tasks) == 27
    if predictor.precision == "int8" and not isa_for(predictor.choice.backend).vnni:
        from usedge.backends.int8_check import MIN_SPEEDUP, int8_speedup_here
        from usedge.bundle import load_bundle

        here = int8_speedup_here(load_bundle(shipped_bundle(), verify=False), predictor.choice.backend)
        assert here["speedup"] >= MIN_SPEEDUP, (predictor.choice, here)
    assert opened < 30, f"opening the default took {opened:.1f} s"   # about a second here; generous for CI


def test_default_data_is_regenerated_when_another_phantom_version_wrote_it(tmp_path, monkeypatch):
    """data/phantom-export is reused only when the same phantom generator (its source hash) wrote it."""
    import json

    import usedge.data.phantom.generator as gen
    from usedge.export import defaults
    from usedge.tasks import ALL_TASKS

    calls = []

    def fake_generate(out, per_task, seed, size, tasks, val_per_task):
        calls.append(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "phantom.json").write_text(json.dumps({
            "generator_sha256": gen.generator_sha256(), "seed": seed, "per_task": per_task,
            "val_per_task": val_per_task, "tasks": [t.id for t in tasks]}))

    monkeypatch.setattr(defaults, "DEFAULT_DATA", tmp_path / "phantom-export")
    monkeypatch.setattr(gen, "generate_dataset", fake_generate)
    assert defaults.default_data(16, ALL_TASKS) == tmp_path / "phantom-export" and len(calls) == 1
    defaults.default_data(16, ALL_TASKS)
    assert len(calls) == 1                                           # same generator: reused
    monkeypatch.setattr(gen, "generator_sha256", lambda: "another-version")
    defaults.default_data(16, ALL_TASKS)
    assert len(calls) == 2                                           # another generator: written again


def test_generator_version_is_the_hash_of_its_source():
    from usedge.data.phantom.generator import generator_sha256

    assert len(generator_sha256()) == 16 and generator_sha256() == generator_sha256()


def test_verify_runs_the_int8_check_of_the_packaged_bundle_on_this_machine(tmp_path, monkeypatch):
    """The slim packaged bundle has no parity inputs, but its int8 is checked here on every backend (and, on a
    VNNI CPU, on OpenVINO without VNNI): the check that would have caught the IUGC shift of issue 25."""
    from usedge.assets import shipped_bundle
    from usedge.backends import available_backends
    from usedge.runtime.verify import verify_bundle

    if not available_backends():
        pytest.skip("needs OpenVINO or ONNX Runtime (usedge[cpu])")
    monkeypatch.setenv("USEDGE_CACHE", str(tmp_path))
    result = verify_bundle(shipped_bundle())
    check = result["int8_check"]
    assert result["passed"] and check["passed"] is True and check["weight_bits"] == 7
    assert set(check["backends"]) == set(available_backends())
    assert all(len(r["tasks"]) == 27 and r["passed"] for r in check["backends"].values())
