"""The builder and runner driven by a stand-in ``tensorrt`` module that records calls.

This checks usedge's plumbing (which flags, profile shapes, pinned layers, files written, buffers bound,
CUDA-graph replay), not TensorRT itself: the stand-in follows the TensorRT 10 Python API as documented,
and real TensorRT runs only in the ``trt``-marked tests."""
from __future__ import annotations

import itertools
import json
import sys
import types

import numpy as np
import pytest

import usedge.engine.tensorrt as E
from usedge.engine import plan as P
from usedge.errors import DataError


class _Tensor:
    def __init__(self, name, dtype="f32"):
        self.name, self.dtype = name, dtype


class _Layer:
    def __init__(self, name, dtype="f32"):
        self.name, self.outputs, self.precision, self.out_types = name, [_Tensor(name + "_out", dtype)], None, {}

    num_outputs = property(lambda self: len(self.outputs))

    def get_output(self, i):
        return self.outputs[i]

    def set_output_type(self, i, dtype):
        self.out_types[i] = dtype


class _Network:
    def __init__(self, flags):
        self.flags, self.layers, self.inputs = flags, [], []

    num_layers = property(lambda self: len(self.layers))
    num_inputs = property(lambda self: len(self.inputs))

    def get_layer(self, i):
        return self.layers[i]

    def get_input(self, i):
        return self.inputs[i]


class _Parser:
    fail = False

    def __init__(self, network, logger):
        self.network = network

    def parse_from_file(self, path):
        import onnx

        if self.fail:
            return False
        model = onnx.load(path)
        self.network.inputs = [_Tensor(i.name) for i in model.graph.input]
        self.network.layers = [_Layer(n.name, "i8" if n.op_type == "QuantizeLinear" else "f32") for n in model.graph.node]
        self.network.layers.append(_Layer("shape_of_something", "i32"))
        return True

    num_errors = 1

    def get_error(self, i):
        return types.SimpleNamespace(node_name=lambda: "/FUGC/Bad", node_operator=lambda: "FancyOp",
                                     desc=lambda: "No importer registered for op: FancyOp")


class _Config:
    def __init__(self):
        self.flags, self.cleared, self.pools, self.profiles, self.progress_monitor = set(), set(), {}, [], None
        self.builder_optimization_level, self.cache = None, None

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size

    def set_flag(self, f):
        self.flags.add(f)

    def clear_flag(self, f):
        self.cleared.add(f)

    def add_optimization_profile(self, p):
        self.profiles.append(p)

    def create_timing_cache(self, data):
        return types.SimpleNamespace(data=data, serialize=lambda: b"timing:" + data)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.cache = cache

    def get_timing_cache(self):
        return self.cache


class _OptProfile(dict):
    def set_shape(self, name, lo, opt, hi):
        self[name] = (lo, opt, hi)


class _Builder:
    last = None
    num_DLA_cores = 0

    def __init__(self, logger):
        _Builder.last = self

    def create_network(self, flags):
        self.network = _Network(flags)
        return self.network

    def create_builder_config(self):
        self.config = _Config()
        return self.config

    def create_optimization_profile(self):
        return _OptProfile()

    def build_serialized_network(self, network, config):
        if config.progress_monitor is not None:
            config.progress_monitor.phase_start("Building engine", None, 1)
            config.progress_monitor.phase_finish("Building engine")
        return b"ENGINE"


# -- runtime stand-ins: tensors live in a dict keyed by fake device pointers ------------------------------
MEMORY: dict[int, np.ndarray] = {}
_ptrs = itertools.count(1000)


class _Context:
    def __init__(self):
        self.addr, self.n, self.runs = {}, None, 0

    def set_input_shape(self, name, shape):
        self.n = shape[0]

    def get_tensor_shape(self, name):
        return (self.n, 3, 8, 8)

    def set_tensor_address(self, name, ptr):
        self.addr[name] = ptr

    def execute_async_v3(self, stream):
        x = MEMORY[self.addr["images"]][: self.n]
        MEMORY[self.addr["FUGC.points"]][: self.n] = np.maximum(x, 0)
        MEMORY[self.addr["organ_cls.logits"]][: self.n] = -x
        self.runs += 1
        return True


class _Engine:
    names = ["images", "organ_cls.logits", "FUGC.points"]
    num_io_tensors = 3

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return "in" if name == "images" else "out"

    def get_tensor_dtype(self, name):
        return "f32"

    def get_tensor_shape(self, name):
        return (-1, 3, 8, 8)

    def get_tensor_profile_shape(self, name, i):
        return [(1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8)]

    def create_execution_context(self):
        self.context = _Context()
        return self.context


class _Buffers:
    def __init__(self):
        self.arrays, self.graphs, self.handle = {}, {}, 7

    def alloc(self, name, shape, dtype):
        ptr = next(_ptrs)
        MEMORY[ptr] = self.arrays[name] = np.zeros(shape, dtype)
        return ptr

    def put(self, name, array):
        self.arrays[name][: len(array)] = array

    def get_all(self, names, n):
        return {k: self.arrays[k][:n].copy() for k in names}

    def capture(self, n, run):
        self.graphs[n] = run

    def replay(self, n):
        self.graphs[n]()

    def free(self):
        self.arrays.clear()


@pytest.fixture
def fake_trt(monkeypatch, rtx):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = rtx.trt_version
    trt.float32, trt.float16 = "f32", "f16"
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
    trt.BuilderFlag = types.SimpleNamespace(**{f: f for f in ("FP16", "INT8", "TF32", "OBEY_PRECISION_CONSTRAINTS",
                                                                "GPU_FALLBACK")})
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.DeviceType = types.SimpleNamespace(DLA="DLA")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.IProgressMonitor = type("IProgressMonitor", (), {"__init__": lambda self: None})
    trt.Builder, trt.OnnxParser = _Builder, _Parser
    trt.Runtime = type("Runtime", (), {"__init__": lambda self, lg: None,
                                       "deserialize_cuda_engine": lambda self, data: _Engine() if data == b"ENGINE" else None})
    trt.nptype = lambda dtype: np.float32
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(E, "machine_info", lambda device=0: rtx)
    monkeypatch.setattr(E, "_torch_cuda", lambda: None)
    monkeypatch.setattr(E, "_cudart", lambda: None)
    monkeypatch.setattr(E, "_buffers", lambda device: _Buffers())
    monkeypatch.setattr(_Parser, "fail", False)
    return trt


def test_int8_build_writes_engine_sidecar_and_timing_cache(fake_trt, bundle, tmp_path, rtx):
    lines = []
    res = E.build_engine(bundle, "desktop-gpu", timing_cache=tmp_path / "t.cache", echo=lines.append)
    b = _Builder.last
    assert b.network.flags == 1 << 1  # 1 << int(STRONGLY_TYPED), which is 1 in TensorRT 10
    assert b.config.flags == set() and b.config.pools == {"WORKSPACE": 4096 << 20}
    assert b.config.builder_optimization_level == 3
    assert b.config.profiles == [{"images": ((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))}]
    assert "Building engine (1 step)" in lines
    assert res.engine.read_bytes() == b"ENGINE" and res.engine.parent == bundle.path / "engines"
    side = P.read_sidecar(res.engine)
    assert side.key == res.key and side.key.machine == rtx and side.key.precision == "int8"
    assert side.build["strongly_typed"] is True and side.build["target"] == "desktop-gpu"
    assert (tmp_path / "t.cache").read_bytes() == b"timing:"
    again = E.build_engine(bundle, "desktop-gpu", timing_cache=tmp_path / "t.cache", echo=lines.append)
    assert again.reused and again.engine == res.engine
    E.build_engine(bundle, "desktop-gpu", timing_cache=tmp_path / "t.cache", force=True, echo=lines.append)
    assert (tmp_path / "t.cache").read_bytes() == b"timing:timing:"  # the saved cache was loaded and grown


def test_fp16_build_pins_landmark_layers(fake_trt, bundle, tmp_path):
    res = E.build_engine(bundle, "jetson-agx-orin", "fp16", out_dir=tmp_path / "e", progress=False, echo=lambda s: None)
    b = _Builder.last
    assert b.network.flags == 0 and b.config.flags == {"FP16", "OBEY_PRECISION_CONSTRAINTS"}
    pinned = {layer.name: (layer.precision, layer.out_types) for layer in b.network.layers if layer.precision}
    assert pinned == {"/FUGC/head/Relu": ("f32", {0: "f32"})}
    assert res.fp32_layers == ("/FUGC/head/Relu",) and res.engine.parent == tmp_path / "e"
    assert json.loads(res.sidecar.read_text())["build"]["fp32_layers"] == ["/FUGC/head/Relu"]


def test_fp32_build_clears_tf32(fake_trt, bundle):
    E.build_engine(bundle, "desktop-gpu", "fp32", progress=False, echo=lambda s: None)
    assert _Builder.last.config.cleared == {"TF32"} and _Builder.last.config.flags == set()


def test_parser_errors_are_reported(fake_trt, bundle, monkeypatch):
    monkeypatch.setattr(_Parser, "fail", True)
    with pytest.raises(DataError, match="could not parse model.int8.onnx: node /FUGC/Bad \\(FancyOp\\): No importer"):
        E.build_engine(bundle, "desktop-gpu", echo=lambda s: None)
    assert not (bundle.path / "engines").exists()


@pytest.mark.parametrize("graphs", [False, True])
def test_backend_runs_through_the_runner(fake_trt, bundle, graphs):
    from usedge.runtime.backends import open_backend

    res = E.build_engine(bundle, "desktop-gpu", progress=False, echo=lambda s: None)
    x = np.random.default_rng(0).normal(size=(3, 3, 8, 8)).astype(np.float32)
    with open_backend("tensorrt", res.engine, bundle=bundle, cuda_graphs=graphs) as be:
        assert (be.input.name, be.input.batch_min, be.input.batch_max) == ("images", 1, 16)
        assert be.output_names == ["FUGC.points", "organ_cls.logits"]  # the bundle's order
        for _ in range(3):
            out = be.infer(x)
        np.testing.assert_array_equal(out["FUGC.points"], np.maximum(x, 0))
        np.testing.assert_array_equal(out["organ_cls.logits"], -x)
        out1 = be.infer(x[:1])
        assert out1["FUGC.points"].shape == (1, 3, 8, 8)
        # 4 executions either way (capture records without running; replays run the recorded enqueue)
        assert be.runner.context.runs == 4
        assert set(be.runner.mem.graphs) == ({3, 1} if graphs else set())
    from usedge.runtime.backends.tensorrt import find_engine

    assert find_engine(bundle, "int8") == res.engine
