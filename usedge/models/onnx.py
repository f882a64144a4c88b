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


__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "ExportInfo", "check", "export_onnx", "model_metadata", "output_names",
           "read_metadata", "set_metadata", "simplify", "torch_export"]
