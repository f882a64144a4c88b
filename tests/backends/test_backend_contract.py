"""The backend contract: every registered backend declares its capabilities and answers for itself; each one
subclasses :class:`BackendContract` (as smp's model tests do), so a new backend gets the same checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tomllib

from usedge.backends import auto_order, backend_class, backend_names
from usedge.bundle import load_bundle

PRECISIONS = ("fp32", "fp16", "int8")
EXTRAS = set(tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
             ["project"]["optional-dependencies"])


class BackendContract:
    name: str

    @pytest.fixture
    def cls(self):
        return backend_class(self.name)

    def test_declares_its_capabilities(self, cls):
        assert cls.name == self.name and isinstance(cls.library, str) and cls.extra in EXTRAS
        assert cls.artefact in ("onnx", "engine", "checkpoint") and cls.device_kind in ("cpu", "gpu")
        assert cls.precisions and set(cls.precisions) <= set(PRECISIONS)
        assert set(cls.bench_precisions or cls.precisions) >= set(cls.precisions)
        assert cls.auto_rank is None or isinstance(cls.auto_rank, int)

    def test_says_why_it_cannot_run(self, cls, bundle_dir):
        bundle = load_bundle(bundle_dir)
        for p in PRECISIONS:
            reason = cls.skip_reason(bundle, p)
            assert reason is None or (isinstance(reason, str) and reason.strip())
            if not cls.available():
                assert reason and ("pip install" in reason or "extra" in reason)
            if p not in cls.precisions:
                assert reason, f"{self.name} must refuse {p}, which it does not declare"

    @pytest.fixture
    def opened(self, cls, bundle_dir):
        """(bundle, the backend open on its fp32 model); skipped with the backend's own reason where it cannot run."""
        bundle = load_bundle(bundle_dir)
        reason = cls.skip_reason(bundle, "fp32")
        if reason:
            pytest.skip(reason)
        backend = cls.open_for(bundle, "fp32")
        yield bundle, backend
        backend.close()

    def test_opens_the_bundle_and_answers_every_output(self, opened):
        bundle, backend = opened
        c, h, w = backend.input.channels, backend.input.height, backend.input.width
        out = backend.infer(np.zeros((1, c, h, w), np.float32))
        assert set(out) == set(backend.output_names) >= {o.name for o in bundle.meta.outputs}
        assert isinstance(backend.device_name(), str) and backend.device_name()

    def test_one_session_shared_by_threads_gives_each_caller_its_own_answer(self, opened):
        """Issue 26, class 4: an OpenVINO session called from two threads raised "Infer Request is busy" and
        returned the other thread's result. The base serialises native calls; every backend must pass this."""
        from concurrent.futures import ThreadPoolExecutor

        _, backend = opened
        c, h, w = backend.input.channels, backend.input.height, backend.input.width
        xs = np.random.default_rng(0).standard_normal((16, 1, c, h, w)).astype(np.float32)
        name = backend.output_names[0]
        alone = [backend.infer(x)[name] for x in xs]
        with ThreadPoolExecutor(4) as pool:
            shared = list(pool.map(lambda i: (i, backend.infer(xs[i % 16])[name]), range(96)))
        wrong = [i for i, out in shared if not np.allclose(out, alone[i % 16], atol=1e-5)]
        assert not wrong, f"{len(wrong)} of 96 concurrent calls got another input's answer"


class TestOpenVINO(BackendContract):
    name = "openvino"


class TestONNXRuntime(BackendContract):
    name = "onnxruntime"


class TestTensorRT(BackendContract):
    name = "tensorrt"


class TestTorch(BackendContract):
    name = "torch"


def test_every_registered_backend_has_a_contract_test():
    tested = {c.name for c in BackendContract.__subclasses__()}
    assert tested == set(backend_names())


def test_auto_order_comes_from_the_declared_ranks():
    ranks = {n: backend_class(n).auto_rank for n in backend_names()}
    assert auto_order() == sorted((n for n, r in ranks.items() if r is not None), key=ranks.get)
    assert auto_order()[0] == "tensorrt" and "torch" not in auto_order()   # an engine first; torch is a reference
