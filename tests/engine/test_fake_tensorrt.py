"""The builder and runner driven by a stand-in ``tensorrt`` module that records calls.

This checks usedge's plumbing (which flags, profile shapes, pinned layers, files written, buffers bound,
CUDA-graph replay), not TensorRT itself: the stand-ins follow the TensorRT 10 and the TensorRT 11 Python APIs as
documented (11: no FP16 / INT8 / BF16 / FP8 / OBEY_ / PREFER_PRECISION_CONSTRAINTS builder flags, no calibrator,
no ``platform_has_fast_*``; any use of them is an AttributeError), and real TensorRT runs only in the
``trt``-marked tests."""
from __future__ import annotations

import itertools
import json
import sys
import types

import numpy as np
import pytest

import usedge.engine.build as E
import usedge.engine.runner as R
import usedge.engine.tensorrt as L
from usedge.bundle import engines as BE
from usedge.engine import plan as P
from usedge.errors import DataError


class _Tensor:
    def __init__(self, name, dtype="f32"):
        self.name, self.dtype = name, dtype


class _Layer:
    """A strongly typed network refuses per-layer precisions (TensorRT 10 and 11 alike)."""

    def __init__(self, name, dtype="f32", strong=False):
        self.name, self.outputs, self._precision, self.out_types = name, [_Tensor(name + "_out", dtype)], None, {}
        self.strong = strong

    num_outputs = property(lambda self: len(self.outputs))

    @property
    def precision(self):
        return self._precision

    @precision.setter
    def precision(self, value):
        if self.strong:
            raise RuntimeError(f"{self.name}: setting a layer precision is not allowed in a strongly typed network")
        self._precision = value

    def get_output(self, i):
        return self.outputs[i]

    def set_output_type(self, i, dtype):
        if self.strong:
            raise RuntimeError(f"{self.name}: setting an output type is not allowed in a strongly typed network")
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
        strong = bool(self.network.flags) or _Builder.major >= 11       # 11: every network is strongly typed
        self.network.path = path
        self.network.inputs = [_Tensor(i.name) for i in model.graph.input]
        self.network.layers = [_Layer(n.name, "i8" if n.op_type == "QuantizeLinear" else "f32", strong)
                               for n in model.graph.node]
        self.network.layers.append(_Layer("shape_of_something", "i32", strong))
        return True

    num_errors = 1

    def get_error(self, i):
        return types.SimpleNamespace(node_name=lambda: "/FUGC/Bad", node_operator=lambda: "FancyOp",
                                     desc=lambda: "No importer registered for op: FancyOp")


class _Config:
    def __init__(self):
        self.flags, self.cleared, self.pools, self.profiles, self.progress_monitor = set(), set(), {}, [], None
        self.builder_optimization_level, self.cache, self.devices = None, None, {}
        self.default_device_type, self.DLA_core = "GPU", -1
        self.profiling_verbosity = "LAYER_NAMES_ONLY"

    def set_device_type(self, layer, device):
        self.devices[layer.name] = device

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
    major = 10

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

    def create_engine_inspector(self):
        return _Inspector(_Builder.last)


class _Inspector:
    """The engine inspector's JSON for the last build: on a DLA build, one ``DLA`` layer for what the stand-in DLA
    runs (everything but the layers set to the GPU and the i32 shape layer, which it "cannot" run)."""

    def __init__(self, builder):
        self.builder = builder

    def get_engine_information(self, fmt):
        assert fmt == "JSON" and self.builder.config.profiling_verbosity == "DETAILED"
        config, layers = self.builder.config, self.builder.network.layers
        if config.default_device_type != "DLA":
            return json.dumps({"Layers": [{"Name": la.name, "LayerType": "CaskConvolution"} for la in layers]})
        gpu = [la.name for la in layers if config.devices.get(la.name) == "GPU" or la.outputs[0].dtype == "i32"]
        dla = [la.name for la in layers if la.name not in gpu]
        return json.dumps({"Layers": [{"Name": f"{{ForeignNode[{dla[0]}...{dla[-1]}]}}", "LayerType": "DLA"},
                                      {"Name": f"Reformatting CopyNode for Input Tensor 0 to {gpu[0]}",
                                       "LayerType": "Reformat"}]
                          + [{"Name": n, "LayerType": "PointWiseV2"} for n in gpu]})


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


#: the builder flags each major has (TensorRT 11 removed weak typing: no precision-enabling flag is left)
FLAGS = {10: ("FP16", "INT8", "BF16", "FP8", "TF32", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
              "DIRECT_IO", "GPU_FALLBACK"),
         11: ("TF32", "GPU_FALLBACK")}


def fake_module(monkeypatch, machine):
    """A stand-in ``tensorrt`` of ``machine.trt_version``'s major, installed with ``machine`` as this GPU."""
    major = int(machine.trt_version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = machine.trt_version
    trt.float32, trt.float16 = "f32", "f16"
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)   # 11: kept, ignored
    trt.BuilderFlag = types.SimpleNamespace(**{f: f for f in FLAGS[major]})
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.DeviceType = types.SimpleNamespace(DLA="DLA", GPU="GPU")
    trt.ProfilingVerbosity = types.SimpleNamespace(DETAILED="DETAILED", LAYER_NAMES_ONLY="LAYER_NAMES_ONLY")
    trt.LayerInformationFormat = types.SimpleNamespace(JSON="JSON", ONELINE="ONELINE")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.IProgressMonitor = type("IProgressMonitor", (), {"__init__": lambda self: None})
    trt.Builder, trt.OnnxParser = _Builder, _Parser
    trt.Runtime = type("Runtime", (), {"__init__": lambda self, lg: None,
                                       "deserialize_cuda_engine": lambda self, data: _Engine() if data == b"ENGINE" else None})
    trt.nptype = lambda dtype: np.float32
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(_Builder, "major", major)
    monkeypatch.setattr(_Builder, "num_DLA_cores", 2 if machine.compute_capability == "8.7" else 0)
    monkeypatch.setattr(L, "machine_info", lambda device=0: machine)
    monkeypatch.setattr(L, "torch_cuda", lambda: None)
    monkeypatch.setattr(L, "cudart_module", lambda: None)
    monkeypatch.setattr(R, "_buffers", lambda device: _Buffers())
    monkeypatch.setattr(_Parser, "fail", False)
    return trt


@pytest.fixture
def fake_trt(monkeypatch, rtx):
    return fake_module(monkeypatch, rtx)


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
    side = BE.read_sidecar(res.engine)
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
    from usedge.backends import open_backend

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
    from usedge.backends.tensorrt import find_engine

    assert find_engine(bundle, "int8") == res.engine


# -- TensorRT 11 (strong typing only) and the Jetson / DLA matrix ----------------------------------------
TRT11 = BE.MachineInfo("NVIDIA GeForce RTX 5090", "12.0", "11.4.0.106")


def _dla_target():
    import dataclasses

    from usedge.targets import load_target

    return dataclasses.replace(load_target("jetson-agx-orin"), dla_core=0, batch={"min": 1, "opt": 1, "max": 1},
                               dynamic_batch=False)


def _quiet(*args, **kw):
    return E.build_engine(*args, progress=False, echo=lambda s: None, **kw)


def test_trt11_int8_and_fp32_builds_are_strongly_typed_and_use_no_removed_flag(monkeypatch, bundle):
    fake_module(monkeypatch, TRT11)
    assert not hasattr(sys.modules["tensorrt"].BuilderFlag, "FP16")     # the stand-in really is TensorRT 11
    res = _quiet(bundle, "desktop-gpu")
    b = _Builder.last
    assert b.network.flags == 1 << 1 and b.config.flags == set() and b.config.cleared == set()
    assert BE.read_sidecar(res.engine).build["strongly_typed"] is True
    assert res.key.machine.trt_version == "11.4.0.106"
    _quiet(bundle, "desktop-gpu", "fp32", force=True)
    assert _Builder.last.config.cleared == {"TF32"} and _Builder.last.network.flags == 1 << 1


def test_trt11_fp16_builds_from_the_fp16_onnx_or_refuses_before_any_work(monkeypatch, bundle_factory):
    fake_module(monkeypatch, TRT11)
    legacy = bundle_factory("legacy")
    with pytest.raises(P.ConfigError, match=r"TensorRT 11\.4\.0 on NVIDIA GeForce RTX 5090 builds fp16 only from an "
                                            r"FP16 ONNX .* has no model\.fp16\.onnx"):
        _quiet(legacy, "desktop-gpu", "fp16")
    assert not (legacy.path / "engines").exists()
    res = _quiet(bundle_factory("new", fp16_onnx=True), "desktop-gpu", "fp16")
    b = _Builder.last
    assert b.network.path.endswith("model.fp16.onnx") and b.network.flags == 1 << 1 and b.config.flags == set()
    assert not any(layer.precision for layer in b.network.layers)         # nothing pinned: the graph carries its types
    assert BE.read_sidecar(res.engine).build["onnx"] == "model.fp16.onnx"


def test_trt10_fp16_prefers_the_fp16_onnx_and_keeps_the_weak_path_for_older_bundles(fake_trt, bundle_factory):
    _quiet(bundle_factory("new", fp16_onnx=True), "desktop-gpu", "fp16")
    assert _Builder.last.network.flags == 1 << 1 and _Builder.last.config.flags == set()
    _quiet(bundle_factory("legacy"), "desktop-gpu", "fp16")
    assert _Builder.last.network.flags == 0 and _Builder.last.config.flags == {"FP16", "OBEY_PRECISION_CONSTRAINTS"}


@pytest.mark.parametrize("version", ["11.2.0", "11.4.0.106"])
def test_trt11_before_11_4_1_on_a_jetson_is_one_clear_error(monkeypatch, bundle, version):
    fake_module(monkeypatch, BE.MachineInfo("Orin", "8.7", version))
    with pytest.raises(P.ConfigError, match=f"TensorRT {version[:6].rstrip('.')}.* does not support Jetson") as exc:
        _quiet(bundle, "jetson-orin-nano")
    assert "TensorRT 10.3" in exc.value.fix and "11.4.1" in exc.value.fix
    assert not (bundle.path / "engines").exists()


def test_trt11_dla_on_agx_orin_is_strongly_typed_with_the_heads_on_the_gpu(monkeypatch, bundle):
    fake_module(monkeypatch, BE.MachineInfo("Orin", "8.7", "11.4.1"))
    _quiet(bundle, _dla_target())
    b = _Builder.last
    assert b.network.flags == 1 << 1 and b.config.flags == {"GPU_FALLBACK"}
    assert (b.config.default_device_type, b.config.DLA_core) == ("DLA", 0)
    assert b.config.devices == {"/FUGC/head/Relu": "GPU", "/organ_cls/head/Sigmoid": "GPU"}


def test_trt10_dla_is_weakly_typed_int8_fp16_with_the_heads_on_the_gpu(monkeypatch, bundle):
    fake_module(monkeypatch, BE.MachineInfo("Orin", "8.7", "10.3.0"))
    lines: list[str] = []
    res = E.build_engine(bundle, _dla_target(), progress=False, echo=lines.append)
    b = _Builder.last
    assert b.network.flags == 0 and b.config.flags == {"INT8", "FP16", "OBEY_PRECISION_CONSTRAINTS", "GPU_FALLBACK"}
    assert set(b.config.devices) == {"/FUGC/head/Relu", "/organ_cls/head/Sigmoid"}
    # the engine inspector's report: which layers run where; the layer the DLA could not run fell back
    placement = BE.read_sidecar(res.engine).build["placement"]
    assert placement == {"dla_layers": 1, "gpu_planned_layers": 2, "data_movement_layers": 1,
                         "fallback": ["shape_of_something"]}
    assert "layers     1 on the DLA, 2 head layers on the GPU as planned, 1 reformat / data movement, 1 fell back " \
           "to the GPU" in lines and "  fallback shape_of_something" in lines


@pytest.mark.parametrize("machine,why", [(BE.MachineInfo("Thor", "11.0", "11.4.1"), "Thor has no DLA"),
                                         (TRT11, "DLA exists on Jetson boards only")])
def test_trt11_dla_elsewhere_is_refused_with_the_reason(monkeypatch, bundle, machine, why):
    fake_module(monkeypatch, machine)
    with pytest.raises(P.ConfigError, match=why):
        _quiet(bundle, _dla_target())
