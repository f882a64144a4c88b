"""The ONNX Q/DQ invariants of an INT8 bundle graph, checked on the graph itself: every QuantizeLinear signed
int8 with zero point 0 (:func:`qdq_report`, :func:`assert_trt_compatible`: TensorRT explicit quantization), and
where the Q/DQ pairs sit (:func:`check_placement`). Read by quantize and export (which write such graphs), the
engine planner and ``usedge verify`` (which check them).

The placement rules,

The rules, from TensorRT's "Q/DQ Layer-Placement Recommendations" (Developer Guide, Explicit Quantization:
https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/quantized-types-explicit-quantization.html)
and OpenVINO's low-precision transformations (which fuse the same patterns); docs/export.md lists them with
the measurements behind them:

- ``weighted-input``: every Conv / ConvTranspose / Gemm / MatMul reads its data input through a
  DequantizeLinear (directly or through ops Q/DQ commutes with: Reshape, MaxPool, ...) — otherwise it runs in
  float (a "float activation").
- ``int8-weights``: its weight is an int8 constant behind a DequantizeLinear, per channel along the output axis.
- ``residual-add``: an Add of two data tensors (a residual connection) has both inputs quantized, so TensorRT
  fuses it into the preceding convolution and OpenVINO keeps the block in int8.
- ``no-reformat``: no activation Q/DQ pair feeds only float arithmetic (Sigmoid, Softmax, Mul, ReduceSum,
  graph outputs, ...): such a pair only adds a conversion and rounding.
- ``signed``: every QuantizeLinear is int8 with zero point 0 (TensorRT's only integer scheme).

"Data tensor" means: computed from the image (shape arithmetic such as Shape -> Range is not data).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usedge.errors import DataError, require

WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
# ops Q/DQ commutes with: a DequantizeLinear before them counts as quantizing their consumer's input
PASS_THROUGH = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "MaxPool", "Slice", "Identity",
                "Split", "Gather"}
# consumers that can take int8 (directly or by fusion): what a Q/DQ pair may legitimately feed
INT8_CONSUMERS = WEIGHTED | PASS_THROUGH | {"Add", "Concat", "AveragePool", "GlobalAveragePool", "ReduceMean",
                                            "Resize", "Relu", "Clip", "QuantizeLinear"}
SHAPE_OPS = {"Shape", "Size"}


@dataclass(frozen=True)
class Violation:
    rule: str
    node: str
    detail: str


@dataclass(frozen=True)
class PlacementReport:
    violations: tuple[Violation, ...]
    weighted_ops: int
    residual_adds: int
    quantizers: int
    float_inputs: tuple[str, ...] = field(default_factory=tuple)   # weighted / residual inputs left float

    @property
    def ok(self) -> bool:
        return not self.violations

    def by_rule(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in self.violations:
            counts[v.rule] = counts.get(v.rule, 0) + 1
        return counts

    def summary(self) -> str:
        if self.ok:
            return (f"placement ok: {self.weighted_ops} weighted ops and {self.residual_adds} residual Adds all "
                    f"int8, {self.quantizers} quantizers")
        rules = ", ".join(f"{k} x{n}" for k, n in sorted(self.by_rule().items()))
        return f"placement: {len(self.violations)} violations ({rules}); first: {self.violations[0]}"


class _Graph:
    def __init__(self, model) -> None:

        g = model.graph
        self.nodes = list(g.node)
        self.consts = constants(model)
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in g.output}
        self.data = self._data_tensors({i.name for i in g.input} - set(self.consts))

    def _data_tensors(self, inputs: set[str]) -> set[str]:
        data = set(inputs)
        for n in self.nodes:  # ONNX graphs are topologically sorted
            if n.op_type not in SHAPE_OPS and any(i in data for i in n.input):
                data.update(n.output)
        return data

    def through_dq(self, tensor: str) -> bool:
        """Is ``tensor`` a DequantizeLinear output, directly or through pass-through ops?"""
        seen = 0
        while tensor in self.producer and seen < 16:
            node = self.producer[tensor]
            if node.op_type == "DequantizeLinear":
                return True
            if node.op_type not in PASS_THROUGH:
                return False
            tensor, seen = node.input[0], seen + 1
        return False


def check_placement(model_or_path) -> PlacementReport:
    """Check an int8 Q/DQ ONNX graph against the rules above."""
    onnx = require("onnx", "train", "checking Q/DQ placement")
    model = onnx.load(str(model_or_path)) if isinstance(model_or_path, (str, Path)) else model_or_path
    g = _Graph(model)
    violations: list[Violation] = []
    floats: list[str] = []
    weighted = residual = quantizers = 0
    for n in g.nodes:
        if n.op_type in WEIGHTED and n.input[0] in g.data:
            weighted += 1
            violations += _weighted(g, n, floats)
        elif n.op_type == "Add" and sum(i in g.data for i in n.input) == 2:
            residual += 1
            for i in n.input:
                if not g.through_dq(i):
                    violations.append(Violation("residual-add", n.name, f"input {i} is float"))
                    floats.append(i)
        elif n.op_type == "QuantizeLinear" and n.input[0] not in g.consts:
            quantizers += 1
            violations += _quantizer(g, n)
    return PlacementReport(tuple(violations), weighted, residual, quantizers, tuple(dict.fromkeys(floats)))


def _weighted(g: _Graph, n, floats: list[str]) -> list[Violation]:
    out = []
    if not g.through_dq(n.input[0]):
        out.append(Violation("weighted-input", n.name, f"data input {n.input[0]} is float"))
        floats.append(n.input[0])
    w = n.input[1] if len(n.input) > 1 else ""
    dq = g.producer.get(w)
    if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in g.consts:
        out.append(Violation("int8-weights", n.name, "weight is not an int8 constant behind a DequantizeLinear"))
        return out
    q = g.consts[dq.input[0]]
    scale = g.consts.get(dq.input[1])
    if q.dtype != np.int8:
        out.append(Violation("int8-weights", n.name, f"weight is {q.dtype}, not int8"))
    channels = q.shape[1] if n.op_type == "Gemm" and _trans_b(n) == 0 else q.shape[0]
    if n.op_type in ("Conv", "Gemm") and (scale is None or scale.size != channels):
        out.append(Violation("int8-weights", n.name, f"weight scale has {0 if scale is None else scale.size} "
                                                     f"values, not one per output channel ({channels})"))
    return out


def _trans_b(n) -> int:
    return next((a.i for a in n.attribute if a.name == "transB"), 0)


def _quantizer(g: _Graph, q) -> list[Violation]:
    out = []
    zp = g.consts.get(q.input[2]) if len(q.input) > 2 else None
    if zp is None or zp.dtype != np.int8 or np.any(zp != 0):
        out.append(Violation("signed", q.name, "not int8 with zero point 0"))
    dqs = [c for c in g.consumers.get(q.output[0], []) if c.op_type == "DequantizeLinear"]
    users = [c for d in dqs for c in g.consumers.get(d.output[0], [])]
    to_output = any(d.output[0] in g.outputs for d in dqs)
    if to_output or not any(u.op_type in INT8_CONSUMERS for u in users):
        kinds = sorted({u.op_type for u in users} | ({"graph output"} if to_output else set()))
        out.append(Violation("no-reformat", q.name, f"feeds only float arithmetic: {', '.join(kinds) or 'nothing'}"))
    return out


def float_activation_count(report: PlacementReport) -> int:
    """Weighted-op and residual-Add inputs left in float (the issue's "float activation tensors")."""
    return len(report.float_inputs)


@dataclass(frozen=True)
class QDQReport:
    quantizers: int
    int8: int
    uint8: int
    nonzero_zero_points: tuple[str, ...]

    @property
    def trt_compatible(self) -> bool:
        return self.quantizers > 0 and self.uint8 == 0 and not self.nonzero_zero_points


def constants(model) -> dict[str, np.ndarray]:
    """Every constant tensor of an ONNX graph by name: initializers and Constant-node outputs."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    values.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].type == 4})
    return values


def qdq_report(model_or_path) -> QDQReport:
    """Count QuantizeLinear nodes by type and list any with a nonzero zero point."""
    onnx = require("onnx", "train", "inspecting Q/DQ graphs")
    from onnx import numpy_helper

    model = onnx.load(str(model_or_path)) if isinstance(model_or_path, (str, Path)) else model_or_path
    inits = {i.name: i for i in model.graph.initializer}
    consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    total = s8 = u8 = 0
    nonzero = []
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        total += 1
        if len(node.input) < 3:  # no zero point: uint8 with zero point 0 by the ONNX spec
            u8 += 1
            continue
        name = node.input[2]
        if name in inits:
            zp = numpy_helper.to_array(inits[name])
        elif name in consts:
            zp = numpy_helper.to_array(consts[name].attribute[0].t)
        else:
            nonzero.append(f"{node.name} (zero point computed at run time)")
            continue
        s8 += zp.dtype == np.int8
        u8 += zp.dtype == np.uint8
        if np.any(zp != 0):
            nonzero.append(node.name)
    return QDQReport(total, s8, u8, tuple(nonzero))


def assert_trt_compatible(model_or_path) -> QDQReport:
    """Raise unless every QuantizeLinear is int8 with zero point 0 (TensorRT explicit quantization)."""
    rep = qdq_report(model_or_path)
    if not rep.trt_compatible:
        raise DataError(f"Q/DQ graph is not TensorRT-compatible: {rep.quantizers} quantizers, {rep.uint8} uint8, "
                        f"nonzero zero points at {list(rep.nonzero_zero_points)[:5]}.",
                        fix="re-export with `usedge export --int8` (symmetric, signed).")
    return rep
