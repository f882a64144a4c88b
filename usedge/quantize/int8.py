"""INT8 post-training quantization of the ONNX graph with NNCF: symmetric Q/DQ that TensorRT, OpenVINO and
ONNX Runtime all consume.

NNCF (preset PERFORMANCE) gives symmetric per-channel int8 weights and symmetric activations with zero point
0, but quantizes non-negative activations (after ReLU) as **uint8**. TensorRT's explicit quantization takes
only signed int8 with zero point 0, so :func:`to_signed_int8` re-expresses each uint8 quantizer as int8 with
scale × 255/127 (same range, one bit less — the bit TensorRT would drop anyway). The gate then measures
the final graph; :mod:`usedge.bundle.qdq` checks every QuantizeLinear and where the pairs sit.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from usedge._io import atomic_write_bytes
from usedge.bundle.qdq import constants, qdq_report
from usedge.errors import DataError, require
from usedge.models.onnx import INPUT_NAME, check, set_metadata


def head_arithmetic_scopes(specs) -> list[str]:
    """ONNX node-name patterns of the head arithmetic that stays float: everything of a landmark or detection
    head after its convs ("/<task>/block/...", "/<task>/block_obj/..."): the soft-argmax (softmax -> expected
    coordinate; int8 moved FUGC from 21 to 153 px) and the in-graph box decode. Names are "/<task>/..." (the exporter drops the
    ModuleDict's "heads" scope) in both the fp32 export and the QAT export."""
    return [f"/{s.id}/(?!block(_obj)?/).*" for s in specs if s.kind.value in ("regression", "detection")]


# activation range estimators (NNCF RangeEstimatorParametersSet); "default" is NNCF's own choice per preset
RANGE_ESTIMATORS = ("default", "minmax", "mean_minmax", "median_minmax", "mean_quantile")


def quantize_onnx(fp32: str | Path, calibration: np.ndarray, out: str | Path, ignored_patterns: Sequence[str] = (),
                  fast_bias_correction: bool = True, range_estimator: str = "default", weight_bits: int = 8):
    """NNCF PTQ of ``fp32`` with ``calibration`` (N×3×S×S); writes the signed-int8 Q/DQ graph to ``out``.

    ``weight_bits`` 7 quantizes every weight to [-64, 63] (NNCF's ``OverflowFix.ENABLE``: exact on CPUs
    without VNNI, see usedge._cpu); 8 uses the full [-127, 127] (VNNI CPUs, GPUs)."""
    onnx = require("onnx", "train", "INT8 quantization")
    nncf = require("nncf", "train", "INT8 quantization")
    model = onnx.load(str(fp32))
    data = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))], lambda x: {INPUT_NAME: x})
    scope = nncf.IgnoredScope(patterns=list(ignored_patterns), validate=False) if ignored_patterns else None
    kwargs = {"ignored_scope": scope} if scope else {}
    if range_estimator not in RANGE_ESTIMATORS:
        raise DataError(f"unknown range estimator {range_estimator!r}.", fix=f"use one of {', '.join(RANGE_ESTIMATORS)}")
    if weight_bits not in (7, 8):
        raise DataError(f"int8 weight bits {weight_bits!r}.", fix="use 7 (every x86 CPU) or 8 (VNNI CPUs, GPUs)")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    advanced = {"overflow_fix": OverflowFix.ENABLE if weight_bits == 7 else OverflowFix.DISABLE}
    if range_estimator != "default":
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        advanced["activations_range_estimator_params"] = getattr(RangeEstimatorParametersSet, range_estimator.upper())
    kwargs["advanced_parameters"] = AdvancedQuantizationParameters(**advanced)
    quantized = nncf.quantize(model, data, preset=nncf.QuantizationPreset.PERFORMANCE,
                              subset_size=len(calibration), fast_bias_correction=fast_bias_correction, **kwargs)
    quantized = to_signed_int8(quantized)
    if weight_bits == 7:
        narrow_weights(quantized)   # NNCF's ONNX backend leaves depthwise / grouped convs at 8 bits
    require_weight_bits(quantized, weight_bits)
    set_metadata(quantized, {p.key: p.value for p in model.metadata_props}
                 | {"usedge.precision": "int8", "usedge.int8_weight_bits": str(weight_bits)})
    check(quantized)
    atomic_write_bytes(Path(out), quantized.SerializeToString())
    return qdq_report(quantized)


def to_signed_int8(model):
    """Rewrite uint8 activation quantizers (zero point 0) as int8 with scale × 255/127, in place."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    changed: set[str] = set()
    for node in [n for n in model.graph.node if n.op_type == "QuantizeLinear"]:
        if len(node.input) < 3 or node.input[2] not in inits:
            continue
        zp = numpy_helper.to_array(inits[node.input[2]])
        if zp.dtype != np.uint8:
            continue
        if np.any(zp != 0):
            raise DataError(f"quantizer {node.name} is asymmetric (uint8 zero point {zp.ravel()[:4]}).",
                            fix="quantize with a symmetric preset; TensorRT needs zero point 0.")
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        new_scale = numpy_helper.from_array((scale * (255.0 / 127.0)).astype(np.float32), node.input[1] + "_s8")
        new_zp = numpy_helper.from_array(np.zeros_like(zp, dtype=np.int8), node.input[2] + "_s8")
        model.graph.initializer.extend([new_scale, new_zp])
        for target in [node] + [c for c in consumers.get(node.output[0], []) if c.op_type == "DequantizeLinear"]:
            target.input[1], target.input[2] = new_scale.name, new_zp.name
        changed.add(node.output[0])
    stale = [v for v in model.graph.value_info if v.name in changed]  # typed uint8 by NNCF
    for v in stale:
        model.graph.value_info.remove(v)
    used = {name for n in model.graph.node for name in n.input}
    keep = [i for i in model.graph.initializer if i.name in used or i.name in {x.name for x in model.graph.input}]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return model


def weight_levels(model) -> dict[str, int]:
    """The largest |integer| of each int8 weight, by the name of its DequantizeLinear: the weight is an int8
    constant behind the DequantizeLinear (QAT, folded) or a float constant quantized by a QuantizeLinear with
    constant scale and zero point (PTQ)."""
    values = constants(model)
    producers = {n.output[0]: n for n in model.graph.node}
    out: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        src = node.input[0]
        if src in values and values[src].dtype == np.int8:
            out[node.name] = int(np.abs(values[src].astype(np.int32)).max(initial=0))
            continue
        q = producers.get(src)
        if q is not None and q.op_type == "QuantizeLinear" and all(i in values for i in q.input[:3]):
            axis = next((a.i for a in q.attribute if a.name == "axis"), 1)
            ints = quantize_linear(*(values[i] for i in q.input[:3]), axis)
            out[node.name] = int(np.abs(ints.astype(np.int32)).max(initial=0))
    return out


def quantize_linear(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point)."""
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    info = np.iinfo(zp.dtype)
    return np.clip(np.rint(x / scale) + zp.astype(np.int32), info.min, info.max).astype(zp.dtype)


#: the largest |integer weight| each weight range allows (7 bits: [-64, 63]; NNCF's half range can reach 64 by rounding)
WEIGHT_LIMIT = {7: 64, 8: 127}


def narrow_weights(model) -> int:
    """Put every int8 weight beyond 7 bits on the 7-bit grid, in place; returns how many were changed.

    NNCF's ``OverflowFix.ENABLE`` does this for Conv / ConvTranspose / MatMul but, in its ONNX backend, leaves
    depthwise and grouped convolutions (whose CPU kernels are as exposed to saturation) at 8 bits, as int8
    constants. Those get twice the step and half the integers (``rint(q / 2)``, |q| <= 64: the new grid is every
    other point of the old one, so the weight moves by at most one old step); a float weight behind a
    QuantizeLinear gets its scale × 127/63."""
    from onnx import numpy_helper

    values = constants(model)
    producers = {n.output[0]: n for n in model.graph.node}
    inits = {i.name: i for i in model.graph.initializer}
    changed = 0
    for dq in [n for n in model.graph.node if n.op_type == "DequantizeLinear"]:
        src, q = dq.input[0], producers.get(dq.input[0])
        if src in inits and values[src].dtype == np.int8 and dq.input[1] in values:
            if np.abs(values[src].astype(np.int32)).max(initial=0) <= WEIGHT_LIMIT[7]:
                continue
            ints = np.rint(values[src].astype(np.float32) / 2).astype(np.int8)
            inits[src].CopyFrom(numpy_helper.from_array(ints, src))
            factor = np.float32(2)
        elif q is not None and q.op_type == "QuantizeLinear" and all(i in values for i in q.input[:3]):
            axis = next((a.i for a in q.attribute if a.name == "axis"), 1)
            if np.abs(quantize_linear(*(values[i] for i in q.input[:3]), axis).astype(np.int32)).max() <= WEIGHT_LIMIT[7]:
                continue
            factor = np.float32(127 / 63)
        else:
            continue
        scale = numpy_helper.from_array((values[dq.input[1]] * factor).astype(np.float32), f"{dq.input[1]}_w7_{changed}")
        model.graph.initializer.append(scale)
        dq.input[1] = scale.name
        if q is not None and q.op_type == "QuantizeLinear":
            q.input[1] = scale.name
        changed += 1
    return changed


def require_weight_bits(model, bits: int) -> int:
    """Raise unless every int8 weight fits ``bits`` (see WEIGHT_LIMIT); returns the largest |integer| found."""
    levels = weight_levels(model)
    worst = max(levels.values(), default=0)
    over = sorted(k for k, v in levels.items() if v > WEIGHT_LIMIT[bits])
    if over:
        raise DataError(f"{len(over)} int8 weights exceed the {bits}-bit range (largest |w| {worst}, e.g. {over[:3]}).",
                        fix="re-quantize with the target's int8_weight_bits (usedge export --target cpu).")
    return worst
