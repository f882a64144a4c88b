"""Quantization-aware fine-tuning (QAT): the float student with fake-quant inserted, fine-tuned briefly so the
whole graph runs in INT8, exported as the same signed, zero-point-0 Q/DQ ONNX the PTQ path writes.

Steps (``run_qat``):
1. :func:`fold_batchnorm`: every BatchNorm that follows a convolution is folded into it (checked numerically),
   so the weights that are quantized during training are the weights that are deployed — TensorRT, OpenVINO
   and ONNX Runtime fold BatchNorm anyway, and a quantized weight followed by a BatchNorm would be
   re-quantized by the runtime, off the grid the training used.
2. :func:`insert_fake_quant`: NNCF (``nncf.quantize`` on the torch model, preset PERFORMANCE: symmetric,
   per-channel weights, per-tensor activations) places and initialises the quantizers on calibration
   images — the same placement algorithm as the ONNX PTQ path. NNCF makes post-ReLU activations unsigned;
   TensorRT takes only signed int8, so :func:`make_signed` turns them signed before training, and training
   sees the deployed grid.
3. :func:`finetune`: mixed-task batches (online phantom or the labelled train split), loss per task = label
   loss + distillation towards the float model (KL / box / point terms of ``usedge.distill.losses``);
   weights and quantizer scales are trained, AdamW, cosine.
4. :func:`export_qdq`: ONNX with QuantizeLinear/DequantizeLinear pairs, weight quantizers folded into int8
   initializers (int8 weights -> DequantizeLinear, the form TensorRT and ORT expect).

NNCF's torch QAT was chosen over NVIDIA ModelOpt (docs/export.md, "QAT"): it is already the PTQ engine of
the train extra, its placement quantizes residual Adds as well as Conv/Gemm inputs, and its quantizers export
to standard Q/DQ. The landmark soft-argmax stays float (``float_scopes``).
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from usedge.errors import DataError, UsedgeError, require

FOLD_TOLERANCE = 1e-3     # relative max-abs change of any output allowed by BatchNorm folding


@dataclass(frozen=True)
class QATConfig:
    steps: int = 300
    batch_size: int = 32
    tasks_per_batch: int = 8
    lr: float = 1e-4
    kd: float = 1.0                    # weight of the distillation term towards the float model
    gt: float = 1.0                    # weight of the label term
    phantom_size: int = 256
    seed: int = 0                      # seeds torch, the batches and the loader workers: same inputs, same graph
    weight_bits: int = 8               # 7 for targets whose CPUs may lack VNNI (Target.int8_weight_bits)
    workers: int = 1
    log_every: int = 50
    float_scopes: tuple[str, ...] = field(default_factory=tuple)   # NNCF ignored-scope regexes (torch names)


# --- 1. BatchNorm folding -------------------------------------------------------------------------------
def _conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[str, str]]:
    """(conv, batchnorm) module names where the BatchNorm's input is exactly the convolution's output."""
    produced: dict[int, str] = {}
    pairs: list[tuple[str, str]] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = []

    def conv_hook(mod, _inp, out):
        produced[id(out)] = names[mod]

    def bn_hook(mod, inp):
        src = produced.get(id(inp[0]))
        if src is not None:
            pairs.append((src, names[mod]))

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_pre_hook(bn_hook))
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in hooks:
            h.remove()
    return list(dict.fromkeys(pairs))


class _AfterFold(nn.Module):
    """What remains of a folded timm BatchNormAct2d: its dropout and activation."""

    def __init__(self, bn: nn.Module) -> None:
        super().__init__()
        self.drop, self.act = bn.drop, bn.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(x))


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def fold_batchnorm(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """A copy of ``model`` (eval mode) with each conv -> BatchNorm pair folded into the conv and in-place
    activations made out-of-place (NNCF hooks replace op outputs); returns (model, pairs folded).
    Raises when any output moves by more than FOLD_TOLERANCE of its range."""
    folded = copy.deepcopy(model).eval()
    for m in folded.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    pairs = _conv_bn_pairs(folded, example)
    with torch.no_grad():
        for conv_name, bn_name in pairs:
            conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
            k = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * k if bn.affine else -bn.running_mean * k
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.mul_(k.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bias * k + shift)
            _set_module(folded, bn_name, _AfterFold(bn) if hasattr(bn, "act") else nn.Identity())
        before, after = model.eval()(example), folded(example)
    for key, ref in before.items():
        err = float((after[key] - ref).abs().max()) / max(float(ref.abs().max()), 1e-6)
        if not math.isfinite(err) or err > FOLD_TOLERANCE:
            raise UsedgeError(f"folding BatchNorm changed output {key} by {err:.2e} of its range.",
                              fix="the model has a BatchNorm whose conv output is also used elsewhere; "
                                  "report the architecture (QAT needs foldable conv -> BatchNorm pairs).")
    return folded, len(pairs)


# --- 2. fake-quant insertion ----------------------------------------------------------------------------
def insert_fake_quant(model: nn.Module, calibration: np.ndarray, float_scopes: Sequence[str] = (),
                      batch: int = 8, weight_bits: int = 8) -> nn.Module:
    """NNCF quantizers placed and initialised on ``calibration`` (N×3×S×S); all of them signed int8.
    ``weight_bits`` 7: every weight quantizer trains on [-64, 63] (:func:`set_weight_bits`), the grid the
    ``cpu`` target exports (exact on CPUs without VNNI, usedge._cpu)."""
    nncf = require("nncf", "train", "quantization-aware training")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    items = [torch.from_numpy(calibration[i:i + batch]) for i in range(0, len(calibration), batch)]
    data = nncf.Dataset(items)
    kwargs = {"ignored_scope": nncf.IgnoredScope(patterns=list(float_scopes), validate=False)} if float_scopes else {}
    # no NNCF overflow fix here: it widens the initial range without restricting training to 7 bits
    quantized = nncf.quantize(model.eval(), data, preset=nncf.QuantizationPreset.PERFORMANCE,
                              subset_size=len(items), fast_bias_correction=True,
                              advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix.DISABLE),
                              **kwargs)
    make_signed(quantized)
    set_weight_bits(quantized, items[0][:1], weight_bits)
    return quantized


def set_weight_bits(qmodel: nn.Module, example: torch.Tensor, bits: int) -> int:
    """Weight quantizers on ``bits``: 8 leaves NNCF's [-127, 127]; 7 puts them on [-64, 63] over the same range
    (twice the step; NNCF's half range, which exports as int8 Q/DQ with integers in [-64, 63] — its export
    needs the full, not the narrow, 7-bit range). Returns how many changed."""
    if bits not in (7, 8):
        raise DataError(f"int8 weight bits {bits!r}.", fix="use 7 (every x86 CPU) or 8 (VNNI CPUs, GPUs)")
    if bits == 8:
        return 0
    changed = 0
    for quantizer, _ in weight_quantizers(qmodel, example):
        if not quantizer._half_range:          # noqa: SLF001 - NNCF has no public setter
            quantizer._half_range = True       # noqa: SLF001
            quantizer._narrow_range = False    # noqa: SLF001
            quantizer.set_levels()
            changed += 1
    return changed


def quantizers(model: nn.Module) -> list[nn.Module]:
    from nncf.torch.quantization.layers import BaseQuantizer

    return [m for m in model.modules() if isinstance(m, BaseQuantizer)]


def make_signed(model: nn.Module) -> int:
    """Turn every unsigned (post-ReLU) quantizer signed, keeping its range; returns how many changed.
    Same grid as :func:`usedge.quantize.int8.to_signed_int8` gives the PTQ graph: [-s·128/127, s] in 256 steps."""
    from nncf.torch.quantization.layers import SymmetricQuantizer

    changed = 0
    for q in quantizers(model):
        if not isinstance(q, SymmetricQuantizer):
            raise DataError(f"quantizer {type(q).__name__} is not symmetric.",
                            fix="QAT uses the PERFORMANCE (symmetric) preset; TensorRT needs zero point 0.")
        if not q.signed:
            q.signed = True
            changed += 1
    return changed


# head arithmetic that stays float: soft-argmax (softmax -> expected coordinate) and the in-graph box decode
# (sigmoid distances -> corners). They sit after the last weighted layer, so TensorRT would run them in float
# anyway; quantizing them only adds rounding (FUGC MRE 21 -> 153 px measured with the soft-argmax in int8).
# NNCF names the heads' functional ops without a module scope ("/softmax/0", "/sub/1"); the backbone and neck
# ops all carry one ("neck/add/0"), so anchored patterns select the heads' arithmetic only.
HEAD_ARITHMETIC = tuple(rf"^/{op}/\d+$" for op in ("softmax", "mul", "sum", "sigmoid", "sub", "add", "stack",
                                                   "clamp", "view", "flatten", "arange"))


# --- 3. fine-tuning -------------------------------------------------------------------------------------
def _slice_outputs(out: dict[str, torch.Tensor], names: Sequence[str], sl: slice) -> dict[str, torch.Tensor]:
    return {n: out[n][sl] for n in names}


def qat_loss(specs: dict, student: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], batch,
             cfg: QATConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per task of the batch, on its own samples: ``gt`` × label loss + ``kd`` × distillation towards the
    float model. All heads run on the whole batch (one graph for every step, as NNCF's hooks expect)."""
    from usedge.distill.losses import KDWeights, task_kd
    from usedge.train.losses import task_loss

    weights = KDWeights()
    per_task = {}
    for task, sl in batch.groups.items():
        spec = specs[task]
        s = _slice_outputs(student, spec.output_names, sl)
        terms = [cfg.kd * task_kd(spec, s, _slice_outputs(reference, spec.output_names, sl), weights)]
        if task in batch.targets and cfg.gt > 0:
            terms.append(cfg.gt * task_loss(spec, s, batch.targets[task]))
        per_task[task] = torch.stack(terms).sum()
    return torch.stack(list(per_task.values())).mean(), per_task


def finetune(qmodel: nn.Module, reference: nn.Module, batches, cfg: QATConfig,
             on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """``cfg.steps`` AdamW steps on ``batches`` (an iterator of MixedBatch); returns the loss per step."""
    qmodel.train()
    reference.eval()
    opt = torch.optim.AdamW([p for p in qmodel.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    specs = qmodel.task_specs
    losses: list[float] = []
    for step in range(1, cfg.steps + 1):
        batch = next(batches)
        with torch.no_grad():
            ref = reference(batch.images)
        loss, _ = qat_loss(specs, qmodel(batch.images), ref, batch, cfg)
        if not torch.isfinite(loss):
            raise UsedgeError(f"QAT loss became {float(loss)} at step {step}.", fix="lower the QAT learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step, float(np.mean(losses[-cfg.log_every:])))
    qmodel.eval()
    return losses


def qat_batches(config, data: str | Path | None, cfg: QATConfig):
    """Endless mixed-task batches: online phantom images (``data`` None) or a labelled set's train split."""
    from usedge.data.transforms import AugmentConfig
    from usedge.train.batches import ItemDataset, MixedBatchSampler, PhantomStream, TaskSampler, collate_mixed

    tasks = list(config.tasks)
    if data is None:
        dataset = PhantomStream(tasks, config, AugmentConfig(), cfg.seed + 5000, cfg.phantom_size)
    else:
        from usedge.data.fmcuia import load_split
        from usedge.train.dataset import load_items

        by_task: dict[str, list] = {}
        for it in load_items(load_split(Path(data), "train", tasks), config.input_size, config.resize):
            by_task.setdefault(it.task.id, []).append(it)
        if not by_task:
            raise DataError(f"no training samples for QAT in {data}/train.", fix="pass a labelled set with --data")
        dataset = ItemDataset(by_task, config, AugmentConfig(), cfg.seed)
    sizes = dataset.sizes()
    k = min(cfg.tasks_per_batch, len(sizes))
    batch = max(1, cfg.batch_size // k) * k   # whole images per task, whatever the number of tasks
    sampler = MixedBatchSampler(sizes, TaskSampler(sizes, "uniform"), batch, k, cfg.steps, cfg.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_mixed,
                                         num_workers=cfg.workers, persistent_workers=False,
                                         generator=torch.Generator().manual_seed(cfg.seed))
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


# --- 4. export ------------------------------------------------------------------------------------------
def export_qdq(qmodel: nn.Module, config, path: str | Path, dynamic_batch: bool = True, opset: int = 17,
               weight_bits: int = 8) -> None:
    """The fake-quant model as a Q/DQ ONNX graph (usedge output names and metadata, int8 weights)."""
    onnx = require("onnx", "train", "ONNX export")
    from nncf.torch.quantization.layers import QuantizerExportMode

    from usedge._io import atomic_write_bytes
    from usedge.models.onnx import check, model_metadata, set_metadata, simplify_qdq, torch_export
    from usedge.quantize.int8 import require_weight_bits

    snap_weights(qmodel, torch.zeros(1, 3, config.input_size, config.input_size))
    for q in quantizers(qmodel):
        q.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
    proto = onnx.load_from_string(torch_export(qmodel, config.input_size, opset, dynamic_batch))
    fold_weight_quantizers(proto)
    proto, _ = simplify_qdq(proto)
    require_weight_bits(proto, weight_bits)
    set_metadata(proto, {**model_metadata(qmodel, config), "usedge.precision": "int8", "usedge.qat": "nncf",
                         "usedge.int8_weight_bits": str(weight_bits)})
    check(proto)
    atomic_write_bytes(Path(path), proto.SerializeToString())


def weight_quantizers(qmodel: nn.Module, example: torch.Tensor) -> list[tuple[nn.Module, nn.Parameter]]:
    """(quantizer, the weight it quantizes) for every weight quantizer of an NNCF model."""
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.model_graph_manager import get_const_node, get_module_by_name, split_const_name

    graph = build_nncf_graph(qmodel, example)
    found = []
    for name, quantizer in get_hook_storage(qmodel).named_hooks():
        hook_type, op_name, port = decode_hook_name(name)
        const = get_const_node(graph.get_node_by_name(op_name), port, graph) if hook_type == "pre_hooks" else None
        if const is None:
            continue
        module_name, attr = split_const_name(const.layer_attributes.name)
        found.append((quantizer, getattr(get_module_by_name(module_name, qmodel), attr)))
    return found


@torch.no_grad()
def snap_weights(qmodel: nn.Module, example: torch.Tensor) -> int:
    """Replace each quantized weight by its fake-quantized value (k × step exactly), in place.

    NNCF rounds ``(w - low) / step`` and ONNX QuantizeLinear rounds ``w / step``: for a weight within float
    precision of a half step the two pick neighbouring integers (measured: 2 of 216 weights of a 3-conv
    model, enough to move outputs by ~60 % of the int8 noise). On the grid both give the same integer, so the
    exported graph computes what the fake-quant model computed. Returns how many weights were snapped."""
    pairs = weight_quantizers(qmodel, example)
    for quantizer, param in pairs:
        param.data = quantizer.quantize(param.data, execute_traced_op_as_identity=False)
    return len(pairs)


def fold_weight_quantizers(proto) -> int:
    """QuantizeLinear of a constant (a weight) -> its int8 result as an initializer feeding the
    DequantizeLinear; returns how many were folded."""
    from onnx import numpy_helper

    from usedge.bundle.qdq import constants
    from usedge.quantize.int8 import quantize_linear

    consts = constants(proto)
    folded, keep = 0, []
    for node in proto.graph.node:
        if node.op_type == "QuantizeLinear" and all(i in consts for i in node.input):
            x, scale, zp = (consts[i] for i in node.input)
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            q = quantize_linear(x, scale, zp, axis)
            proto.graph.initializer.append(numpy_helper.from_array(q, node.output[0]))
            folded += 1
        else:
            keep.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(keep)
    _drop_unused(proto)
    return folded


def _drop_unused(proto) -> None:
    used = {i for n in proto.graph.node for i in n.input} | {o.name for o in proto.graph.output}
    keep_nodes = [n for n in proto.graph.node if n.op_type != "Constant" or n.output[0] in used]
    del proto.graph.node[:]
    proto.graph.node.extend(keep_nodes)
    keep = [i for i in proto.graph.initializer if i.name in used]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)


# --- the whole step -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QATResult:
    path: str
    quantizers: int
    folded_batchnorms: int
    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def run_qat(model: nn.Module, config, calibration: np.ndarray, out: str | Path, data: str | Path | None = None,
            cfg: QATConfig = QATConfig(), log: Callable[[str], None] = print) -> QATResult:
    """Fold, insert fake-quant, fine-tune against the float model, export the Q/DQ graph to ``out``."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    example = torch.from_numpy(calibration[: min(8, len(calibration))])
    reference, n_folded = fold_batchnorm(model, example)
    qmodel = insert_fake_quant(copy.deepcopy(reference), calibration, HEAD_ARITHMETIC + tuple(cfg.float_scopes),
                               weight_bits=cfg.weight_bits)
    n_q = len(quantizers(qmodel))
    log(f"QAT: {n_folded} BatchNorms folded, {n_q} quantizers (signed int8, {cfg.weight_bits}-bit weights), "
        f"{cfg.steps} steps of "
        f"{cfg.batch_size} images ({'online phantom' if data is None else data})")
    losses = finetune(qmodel, reference, qat_batches(config, data, cfg), cfg,
                      on_step=lambda s, v: log(f"QAT step {s}/{cfg.steps}: loss {v:.4f}")
                      if s % cfg.log_every == 0 or s == cfg.steps else None)
    export_qdq(qmodel, config, out, weight_bits=cfg.weight_bits)
    head = float(np.mean(losses[: cfg.log_every])) if losses else math.nan
    tail = float(np.mean(losses[-cfg.log_every:])) if losses else math.nan
    return QATResult(str(out), n_q, n_folded, cfg.steps, head, tail, round(time.perf_counter() - t0, 1))
