"""torch model -> checked, simplified ONNX with the output names of usedge/tasks.py and usedge metadata.

One graph answers all of the model's tasks in one pass: input ``images`` (N×3×S×S float32, the runtime's
preprocessing), outputs ``<task>.<field>``. Opset 17, dynamic batch by default (fixed shapes on request),
``onnx.checker`` full check, onnx-simplifier with onnxslim as fallback (the one that ran is reported), and
the usedge metadata (tasks, classes, preprocessing, versions) in ``metadata_props``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usedge._io import atomic_write_bytes
from usedge.data.preprocess import PreprocessSpec
from usedge.errors import DataError, require
from usedge.models.presets import ModelConfig

INPUT_NAME = "images"
DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportInfo:
    path: str
    opset: int
    dynamic_batch: bool
    input_size: int
    simplifier: str        # "onnxsim 0.x", "onnxslim 0.x", or "none: <why>"
    outputs: tuple[str, ...]


def output_names(model) -> list[str]:
    return [o.name for spec in model.task_specs.values() for o in spec.outputs]


def model_metadata(model, config: ModelConfig, input_size: int | None = None) -> dict[str, str]:
    """The usedge description stored in ``metadata_props`` (values are strings; JSON where structured)."""
    from usedge import __version__

    specs = list(model.task_specs.values())
    pre = PreprocessSpec.from_config(config)
    if input_size:
        pre = dataclasses.replace(pre, size=int(input_size))
    return {
        "usedge.version": __version__,
        "usedge.model": json.dumps({"name": config.name, "arch": config.arch, "backbone": config.backbone}),
        "usedge.tasks": json.dumps([{"id": s.id, "kind": s.kind.value, "classes": list(s.class_names),
                                     "points": list(s.point_names), "outputs": [o.name for o in s.outputs]}
                                    for s in specs]),
        "usedge.preprocess": json.dumps(pre.to_dict()),
    }


def torch_export(model, size: int, opset: int, dynamic_batch: bool) -> bytes:
    torch = require("torch", "train", "ONNX export")
    names = output_names(model)
    axes = {INPUT_NAME: {0: "N"}, **{n: {0: "N"} for n in names}} if dynamic_batch else None
    device = next(model.parameters()).device
    buf = io.BytesIO()
    was = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 3, size, size, device=device),), buf, input_names=[INPUT_NAME],
                              output_names=names, opset_version=opset, dynamic_axes=axes, dynamo=False)
    finally:
        model.train(was)
    return buf.getvalue()


def simplify(proto):
    """onnx-simplifier, else onnxslim; returns (model, which ran)."""
    from usedge._logging import native_stderr

    try:
        import onnxsim

        with native_stderr("onnx-simplifier"):
            simplified, ok = onnxsim.simplify(proto)
        if ok:
            return simplified, f"onnxsim {onnxsim.__version__}"
        why = "onnxsim could not validate its result"
    except ImportError:
        why = "onnxsim not installed"
    except Exception as exc:  # onnxsim raises plain RuntimeErrors from C++
        why = f"onnxsim failed: {str(exc).splitlines()[0][:120]}"
    try:
        import onnxslim

        return onnxslim.slim(proto), f"onnxslim {onnxslim.__version__} ({why})"
    except ImportError:
        return proto, f"none: {why}; onnxslim not installed"
    except Exception as exc:
        return proto, f"none: {why}; onnxslim failed: {str(exc).splitlines()[0][:120]}"


def simplify_qdq(proto):
    """:func:`simplify` for a Q/DQ graph: the shape arithmetic of the trace (Shape → Gather → Concat chains
    of every resize) folds to constants, the int8 weights stay int8. A simplifier folds every node whose
    inputs are all constant, so a weight's DequantizeLinear would become a float constant and the graph
    would lose its int8 weights; here those int8 tensors are graph inputs while it runs, then initializers
    again. Returns (model, which ran). Measured on the packaged default's QAT graph: 1 094 → 720 nodes,
    outputs bitwise equal (ONNX Runtime, no optimisation)."""
    onnx = require("onnx", "train", "ONNX export")
    from onnx import helper

    graph = proto.graph
    int8 = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    dequantized = {n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    held = [t for t in graph.initializer if t.name in dequantized and t.data_type in int8]
    for t in held:
        graph.initializer.remove(t)
        graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    out, how = simplify(proto)
    names = {t.name for t in held}
    for value in [i for i in out.graph.input if i.name in names]:
        out.graph.input.remove(value)
    out.graph.initializer.extend(held)
    return out, how


def to_fp16(proto, keep_fp32: Sequence[str] = ()):
    """The FP16 graph TensorRT 11 builds fp16 engines from (strongly typed; 10.x too): every float tensor in
    fp16 except the nodes whose names match a ``keep_fp32`` pattern (``re.match``: the head arithmetic,
    :func:`usedge.quantize.int8.head_arithmetic_scopes` — soft-argmax and box decode), which stay fp32 behind
    explicit Casts. The input and every output stay float32 under their own names. Returns (model, how).

    onnxconverter-common's converter does the casting; it leaves some outputs fp16 (the logits of Gemm heads,
    and the landmark outputs of kept-fp32 heads, which it casts down), so each such output is turned back to
    float32 here (its Cast re-targeted, or a Cast appended)."""
    require("onnx", "train", "the FP16 ONNX")
    conv = require("onnxconverter_common", "train", "the FP16 ONNX")
    from onnxconverter_common import float16

    patterns = [re.compile(p) for p in keep_fp32]
    kept = [n.name for n in proto.graph.node if any(p.match(n.name) for p in patterns)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # per-node "the value is out of the float16 range" notes
        out = float16.convert_float_to_float16(proto, keep_io_types=True, node_block_list=kept)
    _float32_outputs(out)
    return out, f"onnxconverter-common {conv.__version__}: {len(kept)} head-arithmetic nodes fp32"


def _float32_outputs(proto) -> None:
    from onnx import TensorProto, helper

    producers = {o: n for n in proto.graph.node for o in n.output}
    for value in proto.graph.output:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            continue
        node = producers[value.name]
        if node.op_type == "Cast":
            del node.attribute[:]
            node.attribute.append(helper.make_attribute("to", TensorProto.FLOAT))
        else:
            inner = f"{value.name}/fp16"
            node.output[list(node.output).index(value.name)] = inner
            proto.graph.node.append(helper.make_node("Cast", [inner], [value.name], to=TensorProto.FLOAT,
                                                     name=f"/{value.name}/to_float32"))
        value.type.tensor_type.elem_type = TensorProto.FLOAT


def check(proto_or_path) -> None:
    """``onnx.checker`` full check (with shape inference); raises DataError with the checker's message."""
    onnx = require("onnx", "train", "checking ONNX models")
    try:
        onnx.checker.check_model(proto_or_path if not isinstance(proto_or_path, (str, Path)) else str(proto_or_path),
                                 full_check=True)
    except onnx.checker.ValidationError as exc:
        raise DataError(f"the ONNX model fails onnx.checker: {str(exc).splitlines()[0]}",
                        fix="re-export it; if it persists, report the model and usedge version.") from None


def set_metadata(proto, metadata: dict[str, str]) -> None:
    keep = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(path: str | Path) -> dict[str, str]:
    onnx = require("onnx", "train", "reading ONNX metadata")
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


#: ops between the pooled feature and a classification head's matrix product (int8 graphs: the Q/DQ pair)
_PASS_THROUGH = ("DequantizeLinear", "QuantizeLinear", "Flatten", "Reshape", "Squeeze", "Identity", "Dropout", "Cast")
_POOLS = ("ReduceMean", "GlobalAveragePool")


def pooled_feature(proto, classification_outputs: Sequence[str]) -> str | None:
    """The float tensor a classification head's linear layer reads, before any Q/DQ: the global average of the
    backbone's last feature map (``ReduceMean`` / ``GlobalAveragePool``), found by walking back from the first
    of ``classification_outputs`` through its ``Gemm`` / ``MatMul``; None when the graph has no such path."""
    made = {o: n for n in proto.graph.node for o in n.output}
    for name in classification_outputs:
        node = made.get(name)
        while node is not None and node.op_type in ("Add", "Identity", "Cast"):   # MatMul + Add; FP16 casts
            node = made.get(node.input[0])
        if node is None or node.op_type not in ("Gemm", "MatMul"):
            continue
        node = made.get(node.input[0])
        while node is not None and node.op_type in _PASS_THROUGH:
            node = made.get(node.input[0])
        if node is not None and node.op_type in _POOLS:
            return node.output[0]
    return None


def feature_taps(proto, classification_outputs: Sequence[str], segmentation_outputs: Sequence[str]) -> list[str]:
    """The float feature maps an embedding is pooled from, shallow to deep, each once: the backbone stages the
    neck reads (the inputs of its ``lateral`` convolutions), the dense map the segmentation heads read, and the
    stride-32 map the classification heads pool (:func:`pooled_feature`'s input)."""
    made = {o: n for n in proto.graph.node for o in n.output}
    taps = [n.input[0] for n in proto.graph.node if n.op_type == "Conv" and "lateral" in n.name]
    for name in segmentation_outputs[:1]:
        node = made.get(name)
        while node is not None and node.op_type in ("Cast", "Identity"):    # an FP16 graph's float outputs
            node = made.get(node.input[0])
        if node is not None and node.op_type == "Conv":
            taps.append(node.input[0])
    pooled = pooled_feature(proto, classification_outputs)
    if pooled is not None:
        taps.append(made[pooled].input[0])
    return list(dict.fromkeys(taps))


def add_embedding_output(proto, classification_outputs: Sequence[str], segmentation_outputs: Sequence[str],
                         name: str) -> list[tuple[str, int]]:
    """Make the frame's feature statistics an output ``name`` of ``proto`` (in place): for every
    :func:`feature_taps` map, the per-channel spatial mean and standard deviation, concatenated (float32, N×D).
    Returns the segments (tap, channels), in order (each tap's D is 2 × channels: means, then SDs); empty when
    the graph has no maps to tap or their channel counts cannot be inferred."""
    onnx = require("onnx", "train", "editing ONNX graphs")
    helper = onnx.helper
    taps = feature_taps(proto, classification_outputs, segmentation_outputs)
    channels = _channels(proto, taps)
    taps = [t for t in taps if channels.get(t)]
    if not taps or any(o.name == name for o in proto.graph.output):
        return [(t, channels[t]) for t in taps] if taps else []
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 17)
    nodes, parts = [], []
    axes_name = f"{name}/axes"
    if opset >= 18:
        proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array([2, 3], np.int64), axes_name))

    def reduce_mean(x: str, out: str):
        if opset >= 18:
            return helper.make_node("ReduceMean", [x, axes_name], [out], keepdims=0, name=out)
        return helper.make_node("ReduceMean", [x], [out], axes=[2, 3], keepdims=0, name=out)

    for i, tap in enumerate(taps):
        p = f"{name}/{i}"
        t = f"{p}/float"          # statistics in float32 whatever the graph's type (an FP16 graph's maps)
        nodes += [helper.make_node("Cast", [tap], [t], to=onnx.TensorProto.FLOAT, name=t),
                  reduce_mean(t, f"{p}/mean"), helper.make_node("Mul", [t, t], [f"{p}/sq"], name=f"{p}/sq"),
                  reduce_mean(f"{p}/sq", f"{p}/msq"),
                  helper.make_node("Mul", [f"{p}/mean", f"{p}/mean"], [f"{p}/mean2"], name=f"{p}/mean2"),
                  helper.make_node("Sub", [f"{p}/msq", f"{p}/mean2"], [f"{p}/var"], name=f"{p}/var"),
                  helper.make_node("Relu", [f"{p}/var"], [f"{p}/var+"], name=f"{p}/var+"),
                  helper.make_node("Sqrt", [f"{p}/var+"], [f"{p}/sd"], name=f"{p}/sd")]
        parts += [f"{p}/mean", f"{p}/sd"]
    nodes.append(helper.make_node("Concat", parts, [name], axis=1, name=f"{name}/Concat"))
    proto.graph.node.extend(nodes)
    proto.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["N", sum(
        2 * channels[t] for t in taps)]))
    return [(t, channels[t]) for t in taps]


def _channels(proto, tensors: Sequence[str]) -> dict[str, int]:
    """Channel count (dim 1) of each tensor, from ONNX shape inference; missing where it cannot say."""
    onnx = require("onnx", "train", "editing ONNX graphs")
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:          # a graph shape inference cannot handle: no taps rather than a failed export
        return {}
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.name in tensors:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].HasField("dim_value"):
                out[vi.name] = int(dims[1].dim_value)
    return out


def export_onnx(model, config: ModelConfig, path: str | Path, opset: int = DEFAULT_OPSET, dynamic_batch: bool = True,
                input_size: int | None = None, simplify_graph: bool = True) -> ExportInfo:
    """Export ``model`` (all its tasks, one pass) to ``path`` atomically and return what was done."""
    onnx = require("onnx", "train", "ONNX export")
    size = input_size or config.input_size
    proto = onnx.load_from_string(torch_export(model, size, opset, dynamic_batch))
    which = "none: not requested"
    if simplify_graph:
        proto, which = simplify(proto)
    set_metadata(proto, {**model_metadata(model, config, size), "usedge.simplifier": which})
    check(proto)
    atomic_write_bytes(Path(path), proto.SerializeToString())
    return ExportInfo(str(path), opset, dynamic_batch, size, which, tuple(output_names(model)))


__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "ExportInfo", "add_embedding_output", "check", "export_onnx", "feature_taps",
           "model_metadata", "output_names", "pooled_feature", "read_metadata", "set_metadata", "simplify", "torch_export"]
