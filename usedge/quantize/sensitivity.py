"""Per-layer sensitivity search for the INT8 gate: which activation quantizers hurt which tasks.

The Q/DQ graph is mixed-precision by construction: removing one activation QuantizeLinear -> DequantizeLinear
pair leaves that tensor in float, and TensorRT, OpenVINO and ONNX Runtime then run its consumer in float
(weights stay int8-stored and are dequantized). So the search works on the quantized graph itself:

1. ``candidates``: the activation quantizers upstream of the failing tasks' outputs (a quantizer in another
   head cannot change them);
2. ``rank``: bypass each candidate alone and measure how much closer the failing tasks' outputs get to the
   float model's on calibration images of those tasks (normalised MSE);
3. the caller bypasses the top 1, 2, 4, ... and re-runs the gate until it passes (``usedge export``).
"""
from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usedge.errors import require

#: model file -> {output name: array} for the probe images
RunFn = Callable[[Path], dict[str, np.ndarray]]


@dataclass(frozen=True)
class QPair:
    """An activation quantizer: QuantizeLinear ``q`` of float tensor ``tensor``, read back by ``dq``."""

    q: str
    dq: tuple[str, ...]
    tensor: str


def activation_pairs(model) -> list[QPair]:
    """Every QuantizeLinear on a run-time tensor (not an initializer) with its DequantizeLinear readers."""
    inits = {i.name for i in model.graph.initializer}
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    pairs = []
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits:
            continue
        dqs = readers.get(node.output[0], [])
        if dqs and all(d.op_type == "DequantizeLinear" for d in dqs):
            pairs.append(QPair(node.name, tuple(d.name for d in dqs), node.input[0]))
    return pairs


def bypass(model, q_names: Iterable[str]):
    """A copy of ``model`` with the listed activation quantizers removed (those tensors stay float)."""
    model = copy.deepcopy(model)
    chosen = {p.q: p for p in activation_pairs(model) if p.q in set(q_names)}
    drop = set(chosen) | {d for p in chosen.values() for d in p.dq}
    rewire = {}
    for node in model.graph.node:
        if node.name in drop and node.op_type == "DequantizeLinear":
            src = next(p.tensor for p in chosen.values() if node.name in p.dq)
            rewire[node.output[0]] = src
    keep = [n for n in model.graph.node if n.name not in drop]
    for node in keep:
        for i, name in enumerate(node.input):
            if name in rewire:
                node.input[i] = rewire[name]
    onnx = require("onnx", "train", "editing Q/DQ graphs")
    outputs = {o.name for o in model.graph.output}
    extra = [onnx.helper.make_node("Identity", [src], [dq_out], name=f"{dq_out}_float")
             for dq_out, src in rewire.items() if dq_out in outputs]
    del model.graph.node[:]
    model.graph.node.extend(keep + extra)
    used = {name for n in model.graph.node for name in n.input}
    unused = [i for i in model.graph.initializer if i.name not in used]
    for init in unused:  # the removed pairs' scales and zero points
        model.graph.initializer.remove(init)
    return model


def upstream(model, outputs: Sequence[str]) -> set[str]:
    """Names of the nodes that the given graph outputs depend on."""
    producer = {o: n for n in model.graph.node for o in n.output}
    seen: set[str] = set()
    stack = [producer[o] for o in outputs if o in producer]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        stack.extend(producer[i] for i in node.input if i in producer)
    return seen


def candidates(model, outputs: Sequence[str]) -> list[QPair]:
    """Activation quantizers the given outputs depend on, in graph order."""
    up = upstream(model, outputs)
    return [p for p in activation_pairs(model) if p.q in up]


def output_error(got: dict[str, np.ndarray], ref: dict[str, np.ndarray], outputs: Sequence[str]) -> float:
    """Sum over ``outputs`` of MSE / variance of the reference (scale-free across heads)."""
    total = 0.0
    for name in outputs:
        r, g = ref[name].astype(np.float64), got[name].astype(np.float64)
        total += float(np.mean((g - r) ** 2) / (np.var(r) + 1e-8))
    return total


def rank(model, ref: dict[str, np.ndarray], outputs: Sequence[str], run: RunFn,
         progress: bool = True) -> list[tuple[QPair, float]]:
    """(quantizer, error reduction when it alone is float), most helpful first; only reductions > 0."""
    onnx = require("onnx", "train", "the sensitivity search")
    pairs = candidates(model, outputs)
    with tempfile.TemporaryDirectory(prefix="usedge-sens-") as tmp:
        base_path = Path(tmp) / "base.onnx"
        onnx.save(model, str(base_path))
        base = output_error(run(base_path), ref, outputs)
        gains = []
        for pair in _progress(pairs, progress, f"sensitivity of {len(pairs)} quantizers"):
            path = Path(tmp) / "probe.onnx"
            onnx.save(bypass(model, [pair.q]), str(path))
            gains.append((pair, base - output_error(run(path), ref, outputs)))
    return sorted([g for g in gains if g[1] > 0], key=lambda g: -g[1])


def probe_backend() -> str:
    """The backend to rank with: ONNX Runtime opens a small graph about 5x faster than OpenVINO compiles it
    (0.17 vs 0.95 s per open + 12-image batch, student-s at 64², measured here), and ranking opens one graph
    per quantizer."""
    from usedge.backends import available_backends

    found = available_backends()
    if not found:
        from usedge.errors import ConfigError

        raise ConfigError("the sensitivity search needs ONNX Runtime or OpenVINO.", fix="pip install 'usedge[cpu]'")
    return "onnxruntime" if "onnxruntime" in found else found[0]


def _progress(items, enabled: bool, label: str):
    if not enabled:
        return items
    from rich.progress import track

    return track(items, description=label, transient=True)


__all__ = ["QPair", "activation_pairs", "bypass", "candidates", "output_error", "probe_backend", "rank",
           "upstream"]


def fewest_passing(attempt, limit: int, budget: int):
    """Smallest k in 1..limit with ``attempt(k)`` passing, assuming more float never hurts: doubling until a
    pass, then bisection, within ``budget`` calls. ``attempt(k) -> (passed, payload)``.
    Returns (k, payload) of the best pass, or (None, payload of the last try) when none passes."""
    k, low, best, last, calls = 1, 0, None, ([], {}, []), 0
    while k <= limit and calls < budget:
        ok, last = attempt(k)
        calls += 1
        if ok:
            best = (k, last)
            break
        low = k
        k = limit if k < limit < 2 * k else 2 * k
    if best is None:
        return None, last
    high = best[0]
    while high - low > 1 and calls < budget:
        mid = (low + high) // 2
        ok, payload = attempt(mid)
        calls += 1
        if ok:
            high, best = mid, (mid, payload)
        else:
            low = mid
    return best
