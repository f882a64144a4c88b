"""Build a TensorRT engine from a :class:`~usedge.engine.plan.BuildPlan` (``usedge build``): parse the ONNX the
plan names, configure precision / DLA / profile / timing cache, build, report where the layers run, and write
the engine with its sidecar. TensorRT comes from :mod:`usedge.engine.tensorrt`."""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from usedge._io import atomic_write_bytes, atomic_write_json
from usedge.bundle.engines import EngineKey, Sidecar, engine_paths, read_sidecar, verify_engine_file
from usedge.engine import tensorrt as libs
from usedge.engine.layers import LayerPlacement, read_placement
from usedge.engine.plan import (
    BuildPlan,
    ProgressLog,
    check_tensorrt_target,
    plan_build,
    select_layers,
    timing_cache_path,
    trt_support,
)
from usedge.errors import ConfigError, DataError

log = logging.getLogger(__name__)


# -- build -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildResult:
    engine: Path
    sidecar: Path
    key: EngineKey
    reused: bool
    seconds: float
    fp32_layers: tuple[str, ...] = ()


def _monitor(trt, echo: Callable[[str], None]):
    """An ``IProgressMonitor`` that prints phases via :class:`ProgressLog` (None where TensorRT has none)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.log = ProgressLog(echo)

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.log.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name, step):
            return self.log.step_complete(phase_name, step)

        def phase_finish(self, phase_name):
            self.log.phase_finish(phase_name)

    return _Monitor()


def _parser_errors(parser) -> list[str]:
    out = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        node = getattr(e, "node_name", lambda: "")() or f"#{getattr(e, 'node', lambda: -1)()}"
        op = getattr(e, "node_operator", lambda: "")()
        desc = getattr(e, "desc", lambda: str(e))()
        out.append(f"node {node} ({op or '?'}): {desc}")
    return out


def _parse(trt, builder, logger, plan: BuildPlan):
    # TensorRT 11 types every network strongly and keeps the flag only for compatibility (ignored)
    strong = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    flags = 1 << int(strong) if plan.precision.strongly_typed and strong is not None else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.precision.onnx)):
        errors = _parser_errors(parser)
        raise DataError(f"TensorRT {trt.__version__} could not parse {plan.precision.onnx.name}: "
                        + "; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""),
                        fix="check the bundle (`usedge verify BUNDLE`); an unsupported operator needs a newer TensorRT.")
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    if names != [plan.input_name]:
        raise DataError(f"{plan.precision.onnx.name} has inputs {names}; the bundle metadata says '{plan.input_name}'.",
                        fix="re-export the bundle.")
    return network, parser


def _pin_fp32(trt, network, patterns) -> tuple[str, ...]:
    """Set precision and output types of matching float layers to fp32; returns their names."""
    floats = {trt.float32, trt.float16}
    layers = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if outs and all(o.dtype in floats for o in outs):
            layers[layer.name] = (layer, len(outs))
    chosen = select_layers(layers, patterns)
    for name in chosen:
        layer, n = layers[name]
        layer.precision = trt.float32
        for j in range(n):
            layer.set_output_type(j, trt.float32)
    return tuple(chosen)


def _layers_on_gpu(trt, network, config, patterns) -> list[str]:
    """Keep the layers matching ``patterns`` (the heads) on the GPU beside a DLA; returns their names."""
    layers = {network.get_layer(i).name: network.get_layer(i) for i in range(network.num_layers)}
    chosen = select_layers(layers, patterns)
    for name in chosen:
        config.set_device_type(layers[name], trt.DeviceType.GPU)
    return chosen


def _load_timing_cache(config, path: Path):
    data = path.read_bytes() if path.is_file() else b""
    try:
        cache = config.create_timing_cache(data)
    except Exception:  # a corrupt cache file: TensorRT may raise rather than return None
        cache = None
    if cache is None:
        log.warning("timing cache %s is unreadable; starting a new one", path)
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, ignore_mismatch=False)


def _configure(trt, builder, network, plan: BuildPlan, cache_file: Path, progress, echo) -> tuple:
    config = builder.create_builder_config()
    if plan.workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(plan.workspace_mb) << 20)
    if plan.optimization_level is not None:
        config.builder_optimization_level = int(plan.optimization_level)
    for flag in plan.precision.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in plan.precision.clear_flags:
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    pinned = _pin_fp32(trt, network, plan.precision.fp32_layer_patterns) if plan.precision.fp32_layer_patterns else ()
    if plan.dla_core is not None:
        if plan.dla_core >= builder.num_DLA_cores:
            raise ConfigError(f"target {plan.target} asks for DLA core {plan.dla_core}; this device has "
                              f"{builder.num_DLA_cores}.", fix="set dla_core: null (GPU only) or a core that exists.")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(plan.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        on_gpu = _layers_on_gpu(trt, network, config, plan.precision.gpu_layer_patterns)
        echo(f"DLA core {plan.dla_core}: {len(on_gpu)} head layers kept on the GPU, the rest on the DLA where it "
             "can run them (GPU fallback)")
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED    # layer names and types for the inspector
    profile = builder.create_optimization_profile()
    profile.set_shape(plan.input_name, *plan.profile.shapes())
    config.add_optimization_profile(profile)
    _load_timing_cache(config, cache_file)
    monitor = _monitor(trt, echo) if progress else None
    if monitor is not None:
        config.progress_monitor = monitor
    return config, pinned, monitor


def build_engine(bundle, target, precision: str | None = None, out_dir: str | Path | None = None,
                 progress: bool = True, force: bool = False, device: int = 0,
                 timing_cache: str | Path | None = None, echo: Callable[[str], None] = print) -> BuildResult:
    """Build (or reuse) the TensorRT engine of ``bundle`` for ``target`` on this machine.

    Args:
        bundle: bundle folder / .zip, or a loaded Bundle.
        target: target name (``desktop-gpu``, ``jetson-orin-nano``, ...) or a Target.
        precision: int8 / fp16 / fp32; default the target's.
        out_dir: where ``<key>.engine`` + ``<key>.json`` go; default ``BUNDLE/engines``.
        progress: print the builder's phases.
        force: rebuild even when an engine with this key exists.
        timing_cache: timing-cache file; default per GPU + TensorRT under ~/.cache/usedge/tensorrt/.
    """
    from usedge.bundle import Bundle, load_bundle
    from usedge.targets import Target, load_target

    target = target if isinstance(target, Target) else load_target(target)
    check_tensorrt_target(target)
    if out_dir is None and not isinstance(bundle, Bundle) and Path(bundle).is_file():
        raise ConfigError(f"{bundle} is a zipped bundle; engines cannot be stored inside it.",
                          fix="unzip it and build on the folder, or pass --out-dir.")
    trt = libs.trt_module()  # before the (slow) bundle checksums: fail fast where TensorRT is missing
    machine = libs.machine_info(device)
    support = trt_support(machine.trt_version, machine)   # an unsupported version x device fails before any work
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    plan = plan_build(bundle, target, precision, support)
    key = plan.key(machine)
    engine_file, sidecar_file = engine_paths(out_dir or Path(bundle.path) / "engines", key)
    if not force and engine_file.is_file() and sidecar_file.is_file():
        existing = read_sidecar(engine_file)
        if existing.key == key:
            verify_engine_file(engine_file, existing)
            echo(f"engine up to date: {engine_file} (--force rebuilds)")
            return BuildResult(engine_file, sidecar_file, key, True, 0.0)
    for line in plan.describe():
        echo(line)
    echo(f"machine    {machine.describe()}")
    return _build(trt, plan, machine, key, engine_file, sidecar_file, progress, device, timing_cache, echo)


def _build(trt, plan, machine, key, engine_file, sidecar_file, progress, device, timing_cache, echo) -> BuildResult:
    torch = libs.torch_cuda()
    if torch is not None:
        torch.cuda.set_device(device)
    elif (cudart := libs.cudart_module()) is not None:
        libs.cuda_check(cudart.cudaSetDevice(device))
    cache_file = Path(timing_cache) if timing_cache else timing_cache_path(machine)
    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, plan)
    config, pinned, _monitor_ref = _configure(trt, builder, network, plan, cache_file, progress, echo)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise DataError(f"TensorRT {trt.__version__} could not build {plan.precision.onnx.name} "
                        f"({plan.precision.precision}); its log above says why.",
                        fix="try --precision fp16 / fp32, a larger workspace_mb in the target, or a newer TensorRT.")
    atomic_write_bytes(cache_file, bytes(memoryview(config.get_timing_cache().serialize())))
    data = bytes(memoryview(serialized))
    seconds = time.perf_counter() - start
    placement = _placement(trt, logger, data, plan)
    for line in placement.describe(plan.dla_core is not None):
        echo(line)
    atomic_write_bytes(engine_file, data)
    sidecar = Sidecar(key, hashlib.sha256(data).hexdigest(), len(data), {
        "bundle": str(plan.bundle_path), "target": plan.target, "onnx": plan.precision.onnx.name,
        "strongly_typed": plan.precision.strongly_typed, "builder_flags": list(plan.precision.builder_flags),
        "cleared_flags": list(plan.precision.clear_flags), "fp32_layers": list(pinned),
        "float_layers": list(plan.precision.float_layers),
        "float_activations": len(plan.precision.float_activations), "workspace_mb": plan.workspace_mb,
        "optimization_level": plan.optimization_level, "timing_cache": str(cache_file),
        "build_seconds": round(seconds, 1), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "placement": placement.to_dict(),
    })
    atomic_write_json(sidecar_file, sidecar.to_dict())  # written last: a sidecar means a complete engine
    echo(f"engine {engine_file} ({len(data) / 2**20:.1f} MiB, {seconds:.0f} s; {len(pinned)} layers pinned fp32)")
    return BuildResult(engine_file, sidecar_file, key, False, seconds, tuple(pinned))


def _placement(trt, logger, data: bytes, plan: BuildPlan) -> LayerPlacement:
    """Where the built engine's layers run, from TensorRT's engine inspector (see usedge.engine.layers)."""
    engine = trt.Runtime(logger).deserialize_cuda_engine(data)
    if engine is None:
        raise DataError("TensorRT built an engine it cannot load back.", fix="rebuild with --force; check the log.")
    info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    on_gpu = plan.precision.gpu_layer_patterns if plan.dla_core is not None else (".*",)
    return read_placement(info, on_gpu)
