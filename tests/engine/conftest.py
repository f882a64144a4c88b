"""A tiny synthetic bundle (fp32 + Q/DQ int8 ONNX, two heads: one landmark, one classification) written
with onnx.helper in milliseconds; no torch, no export pipeline."""
from __future__ import annotations

import numpy as np
import pytest

from usedge.bundle.engines import MachineInfo

ORIN = MachineInfo("Orin", "8.7", "10.3.0")
RTX = MachineInfo("NVIDIA GeForce RTX 4090", "8.9", "10.7.0")


def tiny_models(zero_point=np.int8(0), size: int = 8, batch="N"):
    """(fp32 model, Q/DQ model); ``zero_point`` sets the QuantizeLinear zero point (type and value)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def graph(nodes, inits):
        inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])
        outs = [helper.make_tensor_value_info("FUGC.points", TensorProto.FLOAT, [batch, 3, size, size]),
                helper.make_tensor_value_info("organ_cls.logits", TensorProto.FLOAT, [batch, 3, size, size])]
        g = helper.make_graph(nodes, "tiny", [inp], outs, initializer=inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    heads = [helper.make_node("Relu", ["x"], ["FUGC.points"], name="/FUGC/head/Relu"),
             helper.make_node("Sigmoid", ["x"], ["organ_cls.logits"], name="/organ_cls/head/Sigmoid")]
    fp32 = graph([helper.make_node("Identity", ["images"], ["x"], name="/backbone/Identity"), *heads], [])
    zp = np.asarray(zero_point)
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(zp, "zp")]
    qdq = graph([helper.make_node("QuantizeLinear", ["images", "s", "zp"], ["q"], name="/backbone/Q"),
                 helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["x"], name="/backbone/DQ"), *heads], inits)
    onnx.checker.check_model(qdq)
    return fp32, qdq


def make_bundle(root, zero_point=np.int8(0), batch="N", int8_record=None, fp16_onnx=False):
    """``fp16_onnx``: also carry model.fp16.onnx (here the fp32 graph's bytes: the stand-in parser reads names, not
    types)."""
    from usedge.bundle import load_bundle, write_bundle

    fp32, qdq = tiny_models(zero_point, batch=batch)
    meta = {
        "tasks": [{"id": "FUGC", "kind": "regression", "outputs": ["FUGC.points"]},
                  {"id": "organ_cls", "kind": "classification", "outputs": ["organ_cls.logits"]}],
        "input": {"name": "images", "shape": [batch, 3, 8, 8], "dtype": "float32"},
        "outputs": [{"name": "FUGC.points"}, {"name": "organ_cls.logits"}],
        "int8": int8_record or {"quantizers": 1, "signed_int8": 1, "zero_points_all_zero": True, "passed": True,
                                "float_layers": ["/FUGC/.*"], "float_activations": ["/backbone/x"]},
    }
    files = {"model.fp32.onnx": fp32.SerializeToString(), "model.int8.onnx": qdq.SerializeToString()}
    if fp16_onnx:
        files["model.fp16.onnx"] = fp32.SerializeToString()
    return load_bundle(write_bundle(root, files, meta))


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path / "bundle")


@pytest.fixture
def bundle_factory(tmp_path):
    """make_bundle(name, **kwargs) under tmp_path."""
    return lambda name="b", **kw: make_bundle(tmp_path / name, **kw)


@pytest.fixture
def orin():
    return ORIN


@pytest.fixture
def rtx():
    return RTX
