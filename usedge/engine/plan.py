"""Plain-Python decisions for TensorRT engines: what to build, and whether an engine on disk fits this machine.

Nothing here imports TensorRT, CUDA or torch. :mod:`usedge.engine.tensorrt` turns a :class:`BuildPlan` into
TensorRT calls; this module decides

* what the TensorRT version can do on this device (:func:`trt_support`: TensorRT 11 removed weak typing; Jetson
  needs 10.x on JetPack 6 or 11.4.1+ on JetPack 7.2.2; DLA on 11.x only from 11.4.1, on AGX Orin),
* the optimisation profile (:func:`compute_profile`) from the target's batch range and the bundle's input,
* the precision plan (:func:`precision_plan`): which ONNX, strongly typed or not, which builder flags, which
  layers stay fp32 (weak typing, TensorRT 10 only) or run on the GPU beside a DLA,
* DLA use (only where the target names a core; GPU fallback on; static shapes only),
* the cache key and sidecar it writes (:mod:`usedge.bundle.engines`, re-exported here: the bundle format owns
  its ``engines/`` folder; :func:`key_mismatches` / :func:`check_engine_key` refuse an engine built elsewhere),
* the persistent timing-cache path (:func:`timing_cache_path`).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usedge.bundle.engines import EngineKey, MachineInfo, make_key
from usedge.bundle.metadata import FP16_FILE
from usedge.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PRECISIONS = ("int8", "fp16", "fp32")


# -- TensorRT version x device --------------------------------------------------------------------------
TRT_MIN = (10, 0, 0)
#: TensorRT 11.2 - 11.4.0 do not support JetPack; 11.4.1 supports JetPack 7.2.2+ on AGX Orin and Thor
JETSON_TRT11_MIN = (11, 4, 1)
#: DLA came back in TensorRT 11.4.1, on AGX Orin only (Thor has none; Orin NX / Nano stay on JetPack 6, TensorRT 10.3)
DLA_TRT11_MIN = (11, 4, 1)
#: compute capabilities of the Jetson GPUs usedge targets: Orin (8.7), Thor (11.0; 10.1 before CUDA 13)
JETSON_CC = {"8.7": "Orin", "10.1": "Thor", "11.0": "Thor"}
#: the TensorRT a build is planned for when none is installed (``usedge build --dry-run``): JetPack 6's
PLAN_DEFAULT_TRT = "10.3.0"


def parse_trt_version(text: str) -> tuple[int, int, int]:
    """``"10.3.0.30"`` / ``"11.4"`` -> (major, minor, patch); a string that is not a version is a DataError."""
    parts = str(text).strip().split(".")
    try:
        nums = [int(p) for p in parts[:3]]
    except ValueError:
        raise DataError(f"TensorRT version {text!r} is not a version number.",
                        fix="give it as MAJOR.MINOR[.PATCH], e.g. 10.3.0 or 11.4.1.") from None
    if not nums:
        raise DataError("empty TensorRT version.", fix="give it as MAJOR.MINOR[.PATCH], e.g. 10.3.0.")
    return tuple((nums + [0, 0])[:3])


@dataclass(frozen=True)
class TrtSupport:
    """What one TensorRT version offers on one device.

    ``weak_typing``: the builder flags FP16 / INT8 / OBEY_PRECISION_CONSTRAINTS exist (10.x; TensorRT 11 removed
    them: every network is strongly typed, fp16 comes from an FP16 ONNX, int8 from Q/DQ). ``dla``: DLA engines
    can be built (``why_no_dla`` says why not)."""

    version: tuple[int, int, int]
    device: str                  # "Orin", "Thor", or the GPU name
    jetson: bool
    weak_typing: bool
    dla: bool
    why_no_dla: str = ""

    @property
    def label(self) -> str:
        return f"TensorRT {'.'.join(map(str, self.version))} on {self.device}"


def trt_support(trt_version: str, machine: MachineInfo | None = None, jetson: bool | None = None) -> TrtSupport:
    """Decide what ``trt_version`` can do on ``machine`` (None: a GPU of unknown kind, Jetson iff ``jetson``).

    Raises ConfigError, naming the version and the fix, for a TensorRT usedge does not build with (< 10) and for
    TensorRT 11 before 11.4.1 on a Jetson (no JetPack support)."""
    v = parse_trt_version(trt_version)
    cc = machine.compute_capability if machine is not None else ""
    is_jetson = cc in JETSON_CC if machine is not None else bool(jetson)
    device = JETSON_CC.get(cc, machine.gpu_name if machine is not None else ("a Jetson" if is_jetson else "a GPU"))
    text = ".".join(map(str, v))
    if v < TRT_MIN:
        raise ConfigError(f"TensorRT {text}: usedge builds engines with TensorRT 10.0 or newer.",
                          fix="install TensorRT 10.x (JetPack 6 ships 10.3) or 11.x (pip install 'usedge[trt]').")
    if v[0] >= 11 and is_jetson and v < JETSON_TRT11_MIN:
        raise ConfigError(f"TensorRT {text} does not support Jetson (JetPack): TensorRT 11.2 - 11.4.0 are desktop and "
                          "data-centre only.",
                          fix="on JetPack 6 (Orin Nano / NX / AGX) use its TensorRT 10.3; on JetPack 7.2.2+ "
                              "(AGX Orin, Thor) TensorRT 11.4.1 or newer.")
    if v[0] < 11:
        dla, why = is_jetson, "" if is_jetson else "DLA exists on Jetson boards only"
    elif not is_jetson:
        dla, why = False, "DLA exists on Jetson boards only"
    elif device != "Orin":
        dla, why = False, f"{device} has no DLA"
    elif v < DLA_TRT11_MIN:
        dla, why = False, f"TensorRT {text} has no DLA support; 11.4.1 brought it back on AGX Orin"
    else:
        dla, why = True, ""
    return TrtSupport(v, device, is_jetson, weak_typing=v[0] < 11, dla=dla, why_no_dla=why)


# -- optimisation profile --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """One optimisation profile for the N×C×H×W input: batch ``min <= opt <= max``."""

    batch_min: int
    batch_opt: int
    batch_max: int
    channels: int
    height: int
    width: int

    @property
    def dynamic(self) -> bool:
        return self.batch_min != self.batch_max

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) full input shapes for ``IOptimizationProfile.set_shape``."""
        chw = (self.channels, self.height, self.width)
        return (self.batch_min, *chw), (self.batch_opt, *chw), (self.batch_max, *chw)


def _static_dim(d: Any) -> int | None:
    return int(d) if isinstance(d, int) and not isinstance(d, bool) and d > 0 else None


def compute_profile(target, input_shape: Sequence[Any]) -> Profile:
    """The profile for ``target`` (a :class:`~usedge.targets.Target`) and the ONNX input shape
    (``metadata["input"]["shape"]``, e.g. ``["N", 3, 128, 128]``; a str / None / -1 batch is dynamic).

    Raises ConfigError when the ONNX cannot take the target's batch range, or the target is inconsistent.
    """
    dims = list(input_shape)
    chw = [_static_dim(d) for d in dims[1:]]
    if len(dims) != 4 or None in chw:
        raise DataError(f"bundle input shape {dims} is not N×C×H×W with fixed C, H, W.",
                        fix="re-export with `usedge export` (fixed spatial size).")
    b = dict(target.batch)
    lo, opt, hi = int(b.get("min", 1)), int(b.get("opt", 1)), int(b.get("max", 1))
    if not 1 <= lo <= opt <= hi:
        raise ConfigError(f"target {target.name}: batch needs 1 <= min <= opt <= max, got {b}.",
                          fix="edit the target profile.")
    if not target.dynamic_batch and lo != hi:
        raise ConfigError(f"target {target.name} has dynamic_batch: false but a batch range {lo}..{hi}.",
                          fix="set batch min = opt = max for a fixed-batch target, or dynamic_batch: true.")
    fixed = _static_dim(dims[0])
    if fixed is not None and (lo, hi) != (fixed, fixed):
        raise ConfigError(f"the bundle's ONNX takes a fixed batch of {fixed}, but target {target.name} asks for "
                          f"batch {lo}..{hi}.",
                          fix=f"re-export with a dynamic batch (the `usedge export` default), or use a target with "
                              f"batch min = opt = max = {fixed}.")
    return Profile(lo, opt, hi, *chw)


# -- precision -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrecisionPlan:
    """How to build one precision.

    ``builder_flags`` / ``clear_flags`` are ``trt.BuilderFlag`` member names; ``fp32_layer_patterns`` are
    regular expressions (matched from the start of the layer name, :func:`select_layers`) for layers whose
    precision and output types are pinned to fp32 (with OBEY_PRECISION_CONSTRAINTS; weakly typed networks only,
    TensorRT 10). ``gpu_layer_patterns``: layers kept on the GPU when the rest runs on a DLA.
    """

    precision: str
    onnx: Path
    onnx_sha256: str
    strongly_typed: bool
    builder_flags: tuple[str, ...] = ()
    clear_flags: tuple[str, ...] = ()
    fp32_layer_patterns: tuple[str, ...] = ()
    gpu_layer_patterns: tuple[str, ...] = ()
    float_layers: tuple[str, ...] = ()
    float_activations: tuple[str, ...] = ()
    qdq_check: str = ""
    notes: tuple[str, ...] = ()


def landmark_patterns(tasks: Iterable) -> tuple[str, ...]:
    """``/<task>/.*`` for every landmark (soft-argmax) head: a task of kind "regression" (typed
    :class:`~usedge.bundle.metadata.TaskInfo`, or metadata.json task objects, where a ``.points`` output counts too)."""
    out = []
    for t in tasks:
        if isinstance(t, Mapping):
            landmark = t.get("kind") == "regression" or any(str(o).endswith(".points") for o in t.get("outputs", []))
            task_id = t["id"]
        else:
            landmark, task_id = t.kind == "regression", t.id
        if landmark:
            out.append(f"/{re.escape(task_id)}/.*")
    return tuple(out)


def head_patterns(tasks: Iterable) -> tuple[str, ...]:
    """``/<task>/.*`` for every task: the heads, which a DLA cannot run (soft-argmax, box decode, resize of the
    logits) and which stay on the GPU beside it."""
    return tuple(f"/{re.escape(t['id'] if isinstance(t, Mapping) else t.id)}/.*" for t in tasks)


def select_layers(names: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """The layer names that match any pattern (``re.match``: anchored at the start). Bad patterns raise."""
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p))
        except re.error as exc:
            raise ConfigError(f"layer pattern {p!r} is not a valid regular expression ({exc}).",
                              fix="fix int8.float_layers in the bundle metadata, or re-export.") from None
    return [n for n in names if any(c.match(n) for c in compiled)]


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def check_qdq(onnx_path: Path, int8) -> str:
    """Refuse a Q/DQ graph TensorRT cannot take (uint8 or nonzero zero points). Measures the graph with
    onnx where installed ("onnx"); otherwise trusts the export record of the same checksummed file
    ("metadata": the bundle's :class:`~usedge.bundle.metadata.Int8Info`). Returns which check ran."""
    if importlib.util.find_spec("onnx") is not None:
        from usedge.bundle.qdq import assert_trt_compatible

        assert_trt_compatible(onnx_path)
        return "onnx"
    n = (int8.quantizers if int8 else None) or 0
    if not (n > 0 and int8.signed_int8 == n and int8.zero_points_all_zero is True):
        seen = {k: getattr(int8, k, None) for k in ("quantizers", "signed_int8", "zero_points_all_zero")}
        raise DataError(f"the bundle's int8 record {seen} does not show a TensorRT-compatible Q/DQ graph "
                        "(all int8, zero point 0).",
                        fix="re-export with `usedge export --int8` (symmetric, signed), or install onnx to measure it.")
    return "metadata"


def _sha(bundle, name: str) -> str:
    try:
        return bundle.meta.files[name].sha256
    except KeyError:
        raise DataError(f"bundle {bundle.path} has no checksum for {name}.", fix="re-export the bundle.") from None


def precision_plan(bundle, precision: str, dla: bool = False, support: TrtSupport | None = None) -> PrecisionPlan:
    """The build plan for ``precision`` on ``bundle`` (a :class:`~usedge.bundle.files.Bundle`) for the TensorRT
    of ``support`` (default: :data:`PLAN_DEFAULT_TRT`, JetPack 6's; on a Jetson when ``dla``).

    * int8: the bundle's Q/DQ graph, checked with :func:`check_qdq`, strongly typed (explicit quantization, no
      calibrator, no precision flags: the float parts of the graph stay fp32), on TensorRT 10 and 11 alike. On a
      DLA the heads stay on the GPU; TensorRT 10 builds the DLA network weakly typed (INT8 + FP16, the form
      JetPack 6's DLA compiler takes), TensorRT 11.4.1+ strongly typed.
    * fp16: the bundle's FP16 ONNX (:data:`FP16_FILE`, head arithmetic kept fp32 by its own Casts), strongly
      typed. A bundle without one builds only on TensorRT 10, weakly typed: the fp32 graph + FP16 with the
      landmark heads and ``int8.float_layers`` pinned to fp32 (OBEY); TensorRT 11 has no such flags.
    * fp32: the fp32 graph, strongly typed on TensorRT 11; TF32 cleared so the engine is a true fp32 reference.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown precision '{precision}'.", fix=f"use one of: {', '.join(PRECISIONS)}")
    support = support or trt_support(PLAN_DEFAULT_TRT, jetson=dla)
    if dla and not support.dla:
        raise ConfigError(f"{support.label}: no DLA ({support.why_no_dla}).",
                          fix="use a target with dla_core: null (GPU only); DLA needs TensorRT 10.x on a Jetson "
                              "(JetPack 6) or TensorRT 11.4.1+ on AGX Orin (JetPack 7.2.2+).")
    rec = bundle.meta.int8
    float_layers = rec.float_layers if rec else ()
    float_acts = rec.float_activations if rec else ()
    on_gpu = head_patterns(bundle.meta.tasks) if dla else ()
    if precision == "int8":
        return _int8_plan(bundle, rec, dla, support, on_gpu)
    common = dict(precision=precision, float_layers=float_layers, float_activations=float_acts,
                  gpu_layer_patterns=on_gpu)
    if precision == "fp16":
        return _fp16_plan(bundle, support, common)
    onnx = bundle.model_path("fp32")
    return PrecisionPlan(onnx=onnx, onnx_sha256=_sha(bundle, onnx.name), strongly_typed=not support.weak_typing,
                         clear_flags=("TF32",), **common)


def _int8_plan(bundle, rec, dla: bool, support: TrtSupport, on_gpu: tuple[str, ...]) -> PrecisionPlan:
    onnx = bundle.model_path("int8")
    how = check_qdq(onnx, rec)
    notes = [f"Q/DQ graph checked ({how}): every QuantizeLinear int8 with zero point 0"]
    if rec is not None and rec.passed is False:
        notes.append("WARNING: int8 did not pass the accuracy gate (report.md); fp16 is the safer choice")
    float_layers, float_acts = (rec.float_layers, rec.float_activations) if rec else ((), ())
    if float_layers or float_acts:
        notes.append(f"already float in the Q/DQ graph: {len(float_layers)} layer scopes, {len(float_acts)} activations")
    common = dict(precision="int8", onnx=onnx, onnx_sha256=_sha(bundle, onnx.name), float_layers=float_layers,
                  float_activations=float_acts, qdq_check=how, gpu_layer_patterns=on_gpu)
    if dla and support.weak_typing:
        pinned = _dedupe((*landmark_patterns(bundle.meta.tasks), *float_layers))
        return PrecisionPlan(strongly_typed=False, builder_flags=("INT8", "FP16", "OBEY_PRECISION_CONSTRAINTS"),
                             fp32_layer_patterns=pinned, notes=(*notes, "DLA: weakly typed Q/DQ (INT8 + FP16), "
                                                                "heads on the GPU"), **common)
    if dla:
        notes.append("DLA: strongly typed Q/DQ, heads on the GPU")
    return PrecisionPlan(strongly_typed=True, notes=tuple(notes), **common)


def _fp16_plan(bundle, support: TrtSupport, common: dict) -> PrecisionPlan:
    if FP16_FILE in bundle.meta.files:
        onnx = Path(bundle.path) / FP16_FILE
        return PrecisionPlan(onnx=onnx, onnx_sha256=_sha(bundle, FP16_FILE), strongly_typed=True,
                             notes=(f"strongly typed from {FP16_FILE} (head arithmetic fp32 by its Casts)",), **common)
    if not support.weak_typing:
        raise ConfigError(f"{support.label} builds fp16 only from an FP16 ONNX (strongly typed; TensorRT 11 removed "
                          f"the FP16 builder flag), and bundle {bundle.path} has no {FP16_FILE}.",
                          fix="build --precision int8 (the Q/DQ graph) or fp32, or build fp16 with TensorRT 10.x.")
    pinned = _dedupe((*landmark_patterns(bundle.meta.tasks), *common["float_layers"]))
    onnx = bundle.model_path("fp32")
    flags = ("FP16", "OBEY_PRECISION_CONSTRAINTS") if pinned else ("FP16",)
    return PrecisionPlan(onnx=onnx, onnx_sha256=_sha(bundle, onnx.name), strongly_typed=False, builder_flags=flags,
                         fp32_layer_patterns=pinned,
                         notes=(f"weakly typed (no {FP16_FILE} in the bundle; TensorRT 10 only)",
                                f"fp32 pinned: {', '.join(pinned) or 'none'}"), **common)


# -- DLA -------------------------------------------------------------------------------------------------
def dla_core_for(target, precision: str, profile: Profile) -> int | None:
    """The DLA core to use (None: GPU only). DLA runs int8/fp16 only and needs static shapes."""
    core = target.dla_core
    if core is None:
        return None
    if not isinstance(core, int) or isinstance(core, bool) or core < 0:
        raise ConfigError(f"target {target.name}: dla_core must be null or a core number >= 0, got {core!r}.",
                          fix="edit the target profile (Orin has cores 0 and 1).")
    if precision == "fp32":
        raise ConfigError(f"target {target.name} uses DLA core {core}, which runs int8 or fp16 only.",
                          fix="build with --precision int8 or fp16, or use a target with dla_core: null.")
    if profile.dynamic:
        raise ConfigError(f"DLA does not take dynamic shapes; target {target.name} asks for batch "
                          f"{profile.batch_min}..{profile.batch_max}.",
                          fix="set batch min = opt = max and dynamic_batch: false for the DLA target.")
    return core


# -- timing cache ----------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "gpu"


def default_cache_root() -> Path:
    """``$USEDGE_TRT_CACHE``, else ``$XDG_CACHE_HOME/usedge/tensorrt``, else ``~/.cache/usedge/tensorrt``."""
    if os.environ.get("USEDGE_TRT_CACHE"):
        return Path(os.environ["USEDGE_TRT_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "usedge" / "tensorrt"


def timing_cache_path(machine: MachineInfo, root: str | Path | None = None) -> Path:
    """A persistent timing cache per GPU model + compute capability + TensorRT version."""
    cc = machine.compute_capability.replace(".", "")
    name = f"{_slug(machine.gpu_name)}-sm{cc}-trt{_slug(machine.trt_version)}.timing"
    return Path(root).expanduser() / name if root else default_cache_root() / name


# -- progress --------------------------------------------------------------------------------------------
class ProgressLog:
    """Formats IProgressMonitor callbacks as indented phase lines (thread-safe; depth-limited so the
    per-tactic phases do not flood the terminal). ``echo`` receives each line."""

    def __init__(self, echo=print, max_depth: int = 1) -> None:
        self.echo, self.max_depth = echo, max_depth
        self._lock = threading.Lock()
        self._phases: dict[str, tuple[int, int, float]] = {}  # name -> (depth, steps, start)

    def phase_start(self, name: str, parent: str | None, num_steps: int) -> None:
        with self._lock:
            depth = self._phases[parent][0] + 1 if parent in self._phases else 0
            self._phases[name] = (depth, int(num_steps), time.perf_counter())
        if depth <= self.max_depth:
            self.echo(f"{'  ' * depth}{name} ({num_steps} step{'s' if num_steps != 1 else ''})")

    def step_complete(self, name: str, step: int) -> bool:
        return True  # never cancel the build

    def phase_finish(self, name: str) -> None:
        with self._lock:
            depth, _, start = self._phases.pop(name, (self.max_depth + 1, 0, time.perf_counter()))
        if depth <= self.max_depth:
            self.echo(f"{'  ' * depth}{name}: done in {time.perf_counter() - start:.1f} s")


# -- the whole plan --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildPlan:
    """Everything a build needs except the machine: bundle, target, precision, profile, DLA, builder knobs."""

    bundle_path: Path
    target: str
    input_name: str
    precision: PrecisionPlan
    profile: Profile
    dla_core: int | None
    workspace_mb: int | None
    optimization_level: int | None
    tensorrt: str = ""              # TrtSupport.label: the TensorRT and device the plan was made for

    def key(self, machine: MachineInfo) -> EngineKey:
        return make_key(machine, self.precision.precision, self.precision.onnx_sha256, self.profile, self.dla_core)

    @property
    def rebuild_hint(self) -> str:
        return f"usedge build {self.bundle_path} --target {self.target} --precision {self.precision.precision}"

    def describe(self) -> list[str]:
        p, pp = self.profile, self.precision
        lines = [f"bundle     {self.bundle_path}", f"target     {self.target}",
                 f"tensorrt   {self.tensorrt or 'unknown'}",
                 f"precision  {pp.precision} from {pp.onnx.name} ({'strongly typed' if pp.strongly_typed else 'weakly typed'}"
                 f"; flags {', '.join(pp.builder_flags) or 'none'}"
                 f"{'; cleared ' + ', '.join(pp.clear_flags) if pp.clear_flags else ''})",
                 f"profile    {self.input_name}: batch {p.batch_min}/{p.batch_opt}/{p.batch_max} × "
                 f"{p.channels}×{p.height}×{p.width} ({'dynamic' if p.dynamic else 'fixed'} batch)",
                 "device     " + (f"DLA core {self.dla_core} + GPU fallback, heads on the GPU" if self.dla_core is not None
                                   else "GPU"),
                 f"workspace  {self.workspace_mb or 'TensorRT default'} MiB; optimisation level "
                 f"{self.optimization_level if self.optimization_level is not None else 'default'}"]
        lines += [f"note       {n}" for n in pp.notes]
        return lines


def tensorrt_targets() -> list[str]:
    from usedge.targets import load_target, target_names

    return [n for n in target_names() if "tensorrt" in load_target(n).backends]


def check_tensorrt_target(target) -> None:
    """Refuse a target whose backends do not include TensorRT (e.g. ``cpu``)."""
    if "tensorrt" not in target.backends:
        raise ConfigError(f"target {target.name} does not run TensorRT (backends: {', '.join(target.backends)}).",
                          fix=f"use one of: {', '.join(tensorrt_targets())}")


def plan_build(bundle, target, precision: str | None = None, support: TrtSupport | None = None) -> BuildPlan:
    """Decide everything about a build of ``bundle`` for ``target`` (a Target) with the TensorRT of ``support``
    (:func:`trt_support`; default :data:`PLAN_DEFAULT_TRT` on the target's kind of device), without TensorRT."""
    check_tensorrt_target(target)
    support = support or trt_support(PLAN_DEFAULT_TRT, jetson=target.name.startswith("jetson"))
    precision = precision or target.precision
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown precision '{precision}'.", fix=f"use one of: {', '.join(PRECISIONS)}")
    inp = bundle.meta.input
    profile = compute_profile(target, list(inp.shape))
    core = dla_core_for(target, precision, profile)
    return BuildPlan(Path(bundle.path), target.name, inp.name,
                     precision_plan(bundle, precision, dla=core is not None, support=support), profile, core,
                     target.workspace_mb, target.builder_optimization_level, support.label)
