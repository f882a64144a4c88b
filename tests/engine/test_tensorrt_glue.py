"""The TensorRT glue without TensorRT: imports stay light, `usedge build` and the backend fail with the
DependencyError message, engines without a sidecar are refused. Real builds are marked ``trt``."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from usedge.bundle import engines as BE
from usedge.cli.build import build
from usedge.engine import plan as P
from usedge.errors import DataError, DependencyError

HEAVY = ("tensorrt", "torch", "cuda", "pycuda")


def test_imports_pull_in_no_tensorrt_cuda_or_torch():
    code = textwrap.dedent("""
        import sys
        import usedge.engine, usedge.engine.plan, usedge.engine.tensorrt, usedge.engine.build, usedge.engine.runner
        import usedge.backends.tensorrt, usedge.cli.build
        print(sorted(m for m in sys.modules if m.split(".")[0] in %r))
        """ % (HEAVY,))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # any `import tensorrt` now raises ImportError


def test_build_without_tensorrt_prints_the_dependency_error(no_tensorrt, bundle):
    result = CliRunner().invoke(build, [str(bundle.path), "--target", "desktop-gpu"])
    assert result.exit_code == 2, result.output
    assert "error: Building and running TensorRT engines needs the 'tensorrt' package" in result.output
    assert "Fix: pip install 'usedge[trt]'" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, DependencyError)


def test_build_refuses_a_cpu_target_and_unknown_targets(bundle):
    result = CliRunner().invoke(build, [str(bundle.path), "--target", "cpu"])
    assert result.exit_code == 2 and "target cpu does not run TensorRT" in result.output
    result = CliRunner().invoke(build, [str(bundle.path), "--target", "tpu"])
    assert result.exit_code == 2 and "Unknown target 'tpu'" in result.output


def test_build_dry_run_prints_the_plan_without_tensorrt(no_tensorrt, bundle):
    result = CliRunner().invoke(build, [str(bundle.path), "--target", "desktop-gpu", "--precision", "fp16", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "precision  fp16 from model.fp32.onnx" in result.output
    assert "FP16, OBEY_PRECISION_CONSTRAINTS" in result.output
    assert "batch 1/4/16 × 3×8×8 (dynamic batch)" in result.output


def test_build_dry_run_plans_for_the_tensorrt_named_trt11(no_tensorrt, bundle):
    def plan(*args):
        return CliRunner().invoke(build, [str(bundle.path), "--dry-run", *args])

    r = plan("--target", "desktop-gpu", "--trt-version", "11.4.0")
    assert r.exit_code == 0 and "tensorrt   TensorRT 11.4.0 on a GPU" in r.output, r.output
    assert "model.int8.onnx (strongly typed; flags none)" in r.output
    r = plan("--target", "desktop-gpu", "--trt-version", "11.4.0", "--precision", "fp16")
    assert r.exit_code == 2 and "builds fp16 only from an FP16 ONNX" in r.output, r.output
    r = plan("--target", "jetson-orin-nano", "--trt-version", "11.3.0")
    assert r.exit_code == 2 and "does not support Jetson" in r.output and "TensorRT 10.3" in r.output, r.output
    r = plan("--target", "jetson-orin-nano", "--trt-version", "8.6.1")
    assert r.exit_code == 2 and "TensorRT 10.0 or newer" in r.output, r.output
    r = CliRunner().invoke(build, [str(bundle.path), "--target", "desktop-gpu", "--trt-version", "11.4.0"])
    assert r.exit_code == 2 and "--trt-version only plans (--dry-run)" in r.output, r.output


def _fake_engine(bundle, machine):
    data = b"not-a-real-plan"
    profile = P.Profile(1, 4, 16, 3, 8, 8)
    key = BE.make_key(machine, "int8", bundle.metadata["files"]["model.int8.onnx"]["sha256"], profile)
    engine, side = BE.engine_paths(bundle.path / "engines", key)
    engine.parent.mkdir()
    engine.write_bytes(data)
    side.write_text(json.dumps(BE.Sidecar(key, hashlib.sha256(data).hexdigest(), len(data)).to_dict()))
    return engine


def test_backend_refuses_an_engine_without_sidecar_before_touching_tensorrt(tmp_path):
    from usedge.backends import open_backend

    (tmp_path / "model.engine").write_bytes(b"plan")
    with pytest.raises(DataError, match="no sidecar model.json; refusing"):
        open_backend("tensorrt", tmp_path / "model.engine")


def test_backend_without_tensorrt_raises_dependency_error(no_tensorrt, bundle, orin):
    from usedge.backends import open_backend
    from usedge.backends.tensorrt import find_engine

    engine = _fake_engine(bundle, orin)
    with pytest.raises(DependencyError, match="usedge\\[trt\\]"):
        open_backend("tensorrt", engine, bundle=bundle)
    with pytest.raises(DependencyError):
        find_engine(bundle, "int8")


def test_backend_refuses_an_engine_built_elsewhere(monkeypatch, bundle, orin, rtx):
    """machine_info faked as an RTX 4090: the Orin engine is refused before deserialisation."""
    import usedge.engine.runner as engine_run
    import usedge.engine.tensorrt as engine_trt
    from usedge.backends.tensorrt import TensorRTBackend, find_engine
    from usedge.errors import ConfigError

    engine = _fake_engine(bundle, orin)
    monkeypatch.setattr(engine_trt, "machine_info", lambda device=0: rtx)
    monkeypatch.setattr(engine_run, "EngineRunner", lambda *a, **k: pytest.fail("must not deserialise"))
    with pytest.raises(ConfigError, match="built for TensorRT 10.3.0 on Orin \\(8.7\\); this machine has "
                                          "TensorRT 10.7.0 on NVIDIA GeForce RTX 4090 \\(8.9\\)"):
        TensorRTBackend(engine, bundle=bundle)
    with pytest.raises(ConfigError, match="no engine fits this machine"):
        find_engine(bundle, "int8")
    monkeypatch.setattr(engine_trt, "machine_info", lambda device=0: orin)
    assert find_engine(bundle, "int8") == engine


# -- real TensorRT ---------------------------------------------------------------------------------------
needs_trt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None,
                               reason="TensorRT is not installed here (pip install 'usedge[trt]' on a CUDA machine)")


@pytest.mark.trt
@needs_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_and_run_tiny_engine(bundle, precision, tmp_path):
    from usedge.backends import open_backend
    from usedge.engine.build import build_engine

    res = build_engine(bundle, "desktop-gpu", precision, timing_cache=tmp_path / "t.cache", echo=lambda s: None)
    again = build_engine(bundle, "desktop-gpu", precision, timing_cache=tmp_path / "t.cache", echo=lambda s: None)
    assert again.reused and again.engine == res.engine
    x = np.random.default_rng(0).normal(size=(3, 3, 8, 8)).astype(np.float32)
    for graphs in (False, True):
        with open_backend("tensorrt", res.engine, bundle=bundle, cuda_graphs=graphs) as be:
            assert be.input.batch_min == 1 and be.input.batch_max == 16
            for _ in range(2):
                out = be.infer(x)
            np.testing.assert_allclose(out["FUGC.points"], np.maximum(x, 0), atol=0.05)
            np.testing.assert_allclose(out["organ_cls.logits"], 1 / (1 + np.exp(-x)), atol=0.05)
