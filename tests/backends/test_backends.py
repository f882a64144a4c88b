"""The Backend base: input specs read from the model, validation errors, latency stats, the registry."""
import numpy as np
import pytest

from usedge.backends import available_backends, backend_names, open_backend
from usedge.errors import ConfigError, DataError

pytestmark = pytest.mark.skipif(not available_backends(), reason="needs OpenVINO or ONNX Runtime (usedge[cpu])")


@pytest.mark.parametrize("name", available_backends())
def test_input_spec_and_validation(bundle_dir, name, request):
    b = open_backend(name, bundle_dir / "model.fp32.onnx")
    request.addfinalizer(b.close)
    spec = b.input
    assert (spec.name, spec.channels, spec.height, spec.width, spec.batch_min, spec.batch_max) == \
        ("images", 3, 64, 64, 1, None)
    x = np.zeros((2, 3, 64, 64), np.float32)
    out = b.infer({"images": x})
    assert set(out) == set(b.output_names) and out["organ_cls.logits"].shape == (2, 6)
    with pytest.raises(DataError, match="float32"):
        b.infer(x.astype(np.float64))
    with pytest.raises(DataError, match=r"N×3×64×64"):
        b.infer(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(DataError, match="NaN"):
        b.infer(np.full((1, 3, 64, 64), np.nan, np.float32))
    with pytest.raises(DataError, match="do not match the model's input 'images'"):
        b.infer({"input": x})
    with pytest.raises(DataError, match="numpy array"):
        b.infer([[0.0]])
    stats = b.latency()
    assert stats.calls == 1 and stats.p50_ms > 0 and stats.p99_ms >= stats.p50_ms


def test_fixed_batch_model_refuses_other_batches(bundle_dir, tmp_path, request):
    torch = pytest.importorskip("torch")
    from usedge.models.checkpoint import load_checkpoint
    from usedge.models.onnx import export_onnx

    model, config, _ = load_checkpoint(bundle_dir / "torch")
    export_onnx(model, config, tmp_path / "b1.onnx", dynamic_batch=False)
    b = open_backend(available_backends()[0], tmp_path / "b1.onnx")
    request.addfinalizer(b.close)
    assert b.input.batch_min == b.input.batch_max == 1
    with pytest.raises(DataError, match="batch of 2, the model takes 1..1"):
        b.infer(np.zeros((2, 3, 64, 64), np.float32))
    assert torch is not None


def test_registry_lists_every_backend_and_refuses_unknown_names():
    assert backend_names() == ["openvino", "onnxruntime", "tensorrt", "torch"]
    with pytest.raises(ConfigError, match="openvino, onnxruntime, tensorrt, torch"):
        open_backend("tflite", "m.onnx")


def test_torch_backend_matches_onnx_on_the_bundle(bundle_dir):
    pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with open_backend("torch", bundle_dir) as ref_backend, \
            open_backend(available_backends()[0], bundle_dir / "model.fp32.onnx") as backend:
        ref, got = ref_backend.infer(x), backend.infer(x)
    assert set(ref) == set(got)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=2e-4, rtol=1e-3, err_msg=k)
    with pytest.raises(ConfigError, match="CUDA"):
        open_backend("torch", bundle_dir, half=True)


@pytest.mark.parametrize("name", available_backends())
def test_close_waits_for_an_inference_on_another_thread(bundle_dir, name):
    """A server or stream thread may still be in a call when the owner closes the session: close() waits for
    it (the native session is never dropped under a running inference), and later calls say it is closed."""
    import threading

    from usedge.errors import SourceError

    b = open_backend(name, bundle_dir / "model.fp32.onnx")
    x = np.zeros((8, 3, 64, 64), np.float32)
    started, outcomes = threading.Event(), []

    def worker():
        started.set()
        for _ in range(200):
            try:
                outcomes.append(sorted(b.infer(x)) == sorted(b.output_names))
            except SourceError:
                outcomes.append("closed")
                return

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    b.close()
    b.close()                                   # twice is fine
    t.join(30)
    assert not t.is_alive() and outcomes and all(o is True for o in outcomes[:-1]) and outcomes[-1] in (True, "closed")
    with pytest.raises(SourceError, match="closed"):
        b.infer(x[:1])
