"""A bundle as an NVIDIA Triton Inference Server model repository (``usedge triton-repo BUNDLE REPO``).

One Triton model per precision × backend the bundle can run there, and one pre/post-processing model that takes
raw frames and answers the Predictor's JSON::

    REPO/
      usedge/                      Python backend: UINT8 frame H×W×C in, JSON result out (the Predictor)
        config.pbtxt
        1/model.py
        1/bundle/                  a copy of the bundle the Predictor opens
      usedge_int8_onnxruntime/     platform onnxruntime_onnx: the bundle's named tensors in and out
        config.pbtxt
        1/model.onnx
      usedge_int8_openvino/        backend openvino (reads the same ONNX file)
      usedge_int8_tensorrt/        platform tensorrt_plan: only for engines already built in the bundle
        1/model.plan

Every ``config.pbtxt`` carries the bundle's exact input and output names, dtypes and dims,
``max_batch_size`` / ``dynamic_batching`` from the target profile, an instance group for the target's device
(CPU, GPU, GPU + DLA), and the bundle's tasks, classes and preprocessing as ``parameters``. The text is built
here without Triton; :func:`validate_config` parses it against Triton's own ``ModelConfig`` protobuf (from
``tritonclient``), field names, enums and types, and the tests run it on every generated file.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from usedge.errors import ConfigError, DependencyError, require

#: numpy / bundle dtype names -> Triton's DataType enum
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8", "int32": "TYPE_INT32",
                 "int64": "TYPE_INT64", "bool": "TYPE_BOOL", "bytes": "TYPE_STRING"}
#: the pre/post model's tensors (also what ``usedge serve --triton`` binds)
FRAME_INPUT, TASKS_INPUT, REGION_INPUT, RESULT_OUTPUT = "frame", "tasks", "region", "result"
#: optional FP32 [batch, 2]: the frame's pixel size in mm (x, y); present, the answer carries its measurements
MM_INPUT = "mm_per_pixel"
#: microseconds a request may wait for others to form a batch
QUEUE_DELAY_US = 500


class Enum(str):
    """A protobuf enum value: written bare (TYPE_FP32), not quoted."""


@dataclass(frozen=True)
class TritonModel:
    """One model folder of the repository: its config and the files of version 1 (name -> source path, or
    text for generated files)."""

    name: str
    config: dict[str, Any]
    files: Mapping[str, Path | str] = field(default_factory=dict)
    note: str = ""

    def config_text(self) -> str:
        return to_pbtxt(self.config)


def to_pbtxt(message: Mapping[str, Any], indent: int = 0) -> str:
    """A dict as protobuf text format: scalars ``key: value``, dicts ``key { ... }``, lists of dicts as repeated
    blocks, lists of scalars ``key: [a, b]``; :class:`Enum` values bare, strings quoted."""
    pad, lines = "  " * indent, []
    for key, value in message.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            lines += [f"{pad}{key} {{", to_pbtxt(value, indent + 1), f"{pad}}}"]
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
            for item in value:
                lines += [f"{pad}{key} {{", to_pbtxt(item, indent + 1), f"{pad}}}"]
        elif isinstance(value, (list, tuple)):
            lines.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in value)}]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(line for line in lines if line)


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + "".join(_ESCAPES.get(ch) or (f"\\{ord(ch):03o}" if ord(ch) < 32 or ord(ch) == 127 else ch)
                         for ch in str(value)) + '"'


#: protobuf text-format escapes; other control characters are written as octal (Triton's C++ parser refuses
#: them raw); UTF-8 text stays as it is
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def validate_config(text: str, where: str = "config.pbtxt") -> Any:
    """Parse ``text`` as Triton's ``inference.ModelConfig``; returns the message. Raises ConfigError naming
    the problem (an unknown field, a bad enum, a wrong type)."""
    require("tritonclient", "triton", "validating Triton model configs")
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except (ImportError, RuntimeError) as exc:     # tritonclient without its gRPC part raises RuntimeError
        raise DependencyError(f"validating Triton model configs needs tritonclient's gRPC part ({exc}).",
                              fix="pip install 'tritonclient[grpc]' (or usedge[triton]).") from None

    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ConfigError(f"{where} is not a valid Triton model config: {exc}",
                          fix="this is a usedge bug if usedge wrote the file; please report it.") from None


# -- planning --------------------------------------------------------------------------------------------


def _dims(shape: Sequence[Any], batched: bool) -> list[int]:
    dims = list(shape[1:] if batched else shape)
    return [int(d) if isinstance(d, int) else -1 for d in dims]


def _batching(bundle, target) -> tuple[int, dict | None]:
    """(max_batch_size, dynamic_batching) from the bundle's batch dim and the target profile."""
    first = bundle.meta.input.shape[0]
    if isinstance(first, int):                       # a fixed batch in the graph: Triton sees full shapes
        return 0, None
    batch = dict(getattr(target, "batch", None) or {"min": 1, "opt": 1, "max": 8})
    top = max(1, int(batch.get("max", 1)))
    if not getattr(target, "dynamic_batch", True) or top == 1:
        return top, None
    preferred = sorted({int(batch.get("opt", 1)), top} - {1}) or [top]
    return top, {"preferred_batch_size": preferred, "max_queue_delay_microseconds": QUEUE_DELAY_US}


def _parameters(bundle, precision: str | None = None) -> list[dict]:
    meta = bundle.meta
    values = {"usedge.tasks": [t.id for t in meta.tasks],
              "usedge.classes": {t.id: list(t.classes) for t in meta.tasks if t.classes},
              "usedge.points": {t.id: list(t.points) for t in meta.tasks if t.points},
              "usedge.preprocess": meta.input.preprocess.to_dict(),
              "usedge.outputs": {o.name: {"task": o.task, "field": o.field} for o in meta.outputs}}
    if precision:
        values["usedge.precision"] = precision
    return [{"key": k, "value": {"string_value": v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))}}
            for k, v in values.items()]


def _tensor_model(bundle, target, name: str, precision: str, runtime: str, files: dict,
                  engine_key=None) -> TritonModel:
    """One tensor model; for a TensorRT plan (``engine_key``: its sidecar's key) the batch range and the DLA core
    are the engine's own, and the device is always the GPU."""
    meta = bundle.meta
    max_batch, dynamic = _batching(bundle, target) if engine_key is None else _engine_batching(bundle, engine_key)
    batched = max_batch > 0
    config: dict[str, Any] = {"name": name}
    if runtime == "onnxruntime":
        config["platform"] = "onnxruntime_onnx"
    elif runtime == "openvino":
        config["backend"] = "openvino"
    else:
        config["platform"] = "tensorrt_plan"
    config["max_batch_size"] = max_batch
    config["input"] = [{"name": meta.input.name, "data_type": Enum(TRITON_DTYPES[meta.input.dtype]),
                        "dims": _dims(meta.input.shape, batched)}]
    config["output"] = [{"name": o.name, "data_type": Enum("TYPE_FP32"), "dims": _dims(o.shape, batched)}
                        for o in meta.outputs]
    if dynamic:
        config["dynamic_batching"] = dynamic
    if engine_key is not None:
        config["instance_group"] = _engine_instances(engine_key)
    else:
        # OpenVINO and CPU targets on the CPU; ONNX Runtime of a GPU target on the GPU
        on_gpu = runtime != "openvino" and _gpu_target(target)
        config["instance_group"] = [{"count": 1, "kind": Enum("KIND_GPU" if on_gpu else "KIND_CPU")}]
    if runtime == "openvino":
        config["default_model_filename"] = "model.onnx"
    config["parameters"] = _parameters(bundle, precision) + (
        [{"key": "PERFORMANCE_HINT", "value": {"string_value": "LATENCY"}}] if runtime == "openvino" else [])
    return TritonModel(name, config, files)


def _engine_batching(bundle, key) -> tuple[int, dict | None]:
    """A TensorRT engine accepts exactly the batch range it was built with."""
    if isinstance(bundle.meta.input.shape[0], int):
        return 0, None
    top = max(1, int(key.batch_max))
    if top == 1:
        return 1, None
    preferred = sorted({int(key.batch_opt), top} - {1}) or [top]
    return top, {"preferred_batch_size": preferred, "max_queue_delay_microseconds": QUEUE_DELAY_US}


def _engine_instances(key) -> list[dict]:
    group: dict[str, Any] = {"count": 1, "kind": Enum("KIND_GPU")}
    if key.dla_core is not None:
        group["secondary_devices"] = [{"kind": Enum("KIND_NVDLA"), "device_id": int(key.dla_core)}]
    return [group]


def _gpu_target(target) -> bool:
    return target is not None and "tensorrt" in getattr(target, "backends", ())


def _predictor_model(bundle, target, name: str, precision: str) -> TritonModel:
    max_batch, dynamic = _batching(bundle, target)
    max_batch = max(max_batch, 1)
    config: dict[str, Any] = {
        "name": name, "backend": "python", "max_batch_size": max_batch,
        "input": [{"name": FRAME_INPUT, "data_type": Enum("TYPE_UINT8"), "dims": [-1, -1, -1]},
                  {"name": TASKS_INPUT, "data_type": Enum("TYPE_STRING"), "dims": [1], "optional": True},
                  {"name": REGION_INPUT, "data_type": Enum("TYPE_INT32"), "dims": [4], "optional": True},
                  {"name": MM_INPUT, "data_type": Enum("TYPE_FP32"), "dims": [2], "optional": True}],
        "output": [{"name": RESULT_OUTPUT, "data_type": Enum("TYPE_STRING"), "dims": [1]}],
        "dynamic_batching": dynamic,
        "instance_group": [{"count": 1, "kind": Enum("KIND_CPU")}],
        "parameters": _parameters(bundle, precision) + [
            {"key": "usedge.bundle", "value": {"string_value": "bundle"}},
            {"key": "usedge.backend", "value": {"string_value": "auto"}}],
    }
    return TritonModel(name, config, {"model.py": PYTHON_MODEL, "bundle": bundle.path},
                       note="Python backend: needs usedge[cpu] importable by Triton's Python (docs/triton.md)")


def plan_repository(bundle, target=None, prefix: str = "usedge", predictor: bool = True) -> list[TritonModel]:
    """The models :func:`write_repository` writes, without writing anything."""
    from usedge.bundle.engines import ENGINE_DIR, list_engines

    runtimes = [b for b in ("onnxruntime", "openvino") if target is None or b in target.backends] or \
        ["onnxruntime"]
    models = []
    for precision in bundle.precisions:
        onnx = bundle.model_path(precision)
        for runtime in runtimes:
            models.append(_tensor_model(bundle, target, f"{prefix}_{precision}_{runtime}", precision, runtime,
                                        {"model.onnx": onnx}))
    engines = list_engines(bundle.path / ENGINE_DIR)
    for engine, sidecar in engines:
        key = sidecar.key
        twins = sum(1 for _, other in engines if other.key.precision == key.precision)
        # engines of one precision for several GPUs / DLA cores: one model each, named by the engine's digest
        name = f"{prefix}_{key.precision}_tensorrt" + (f"_{engine.stem[:8]}" if twins > 1 else "")
        where = f"{key.gpu_name}" + (f", DLA core {key.dla_core}" if key.dla_core is not None else "")
        models.append(replace(_tensor_model(bundle, target, name, key.precision, "tensorrt", {"model.plan": engine},
                                            engine_key=key),
                              note=f"TensorRT {key.trt_version} engine for {where}: runs only there"))
    if predictor:
        models.append(_predictor_model(bundle, target, prefix, "auto"))
    return models


#: written at the root of every repository usedge writes: only such a folder is ever replaced
MARKER = ".usedge-triton-repo.json"


def write_repository(bundle, repo: str | Path, target=None, prefix: str = "usedge", predictor: bool = True,
                     overwrite: bool = False) -> list[TritonModel]:
    """Write the repository of :func:`plan_repository` into ``repo``: built beside it, then renamed (a failed
    write leaves no half repository). A non-empty ``repo`` is replaced only with ``overwrite`` and only when usedge
    wrote it (its marker file); any other folder is refused."""
    repo = Path(repo).expanduser().resolve()
    if repo.parent == repo or not repo.name:
        raise ConfigError(f"{repo} cannot be a model repository.", fix="name a folder of its own, e.g. ./triton-repo.")
    if repo.exists() and (not repo.is_dir() or any(repo.iterdir())):
        if not (repo / MARKER).is_file():
            raise ConfigError(f"{repo} exists, is not empty and was not written by usedge: it is left alone.",
                              fix="pass a new or empty folder.")
        if not overwrite:
            raise ConfigError(f"{repo} holds a repository usedge wrote earlier.", fix="pass --overwrite to replace it.")
    models = plan_repository(bundle, target, prefix, predictor)
    tmp = repo.with_name(f".{repo.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for model in models:
            _write_model(tmp, model)
        marker = {"bundle": str(Path(bundle.path).resolve()), "models": [m.name for m in models],
                  "target": getattr(target, "name", None)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if repo.exists():
            shutil.rmtree(repo)
        tmp.rename(repo)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return models


def _write_model(root: Path, model: TritonModel) -> None:
    version = root / model.name / "1"
    version.mkdir(parents=True)
    (root / model.name / "config.pbtxt").write_text(model.config_text() + "\n", encoding="utf-8")
    for name, source in model.files.items():
        if isinstance(source, str):
            (version / name).write_text(source, encoding="utf-8")
        elif source.is_dir():
            shutil.copytree(source, version / name)
        else:
            shutil.copy2(source, version / name)


#: The pre/post model's ``model.py``: the Predictor behind Triton's Python backend (usedge.serve.triton).
PYTHON_MODEL = '''"""usedge pre/post-processing model for Triton's Python backend: raw frames in, the Predictor's JSON out.
Written by `usedge triton-repo`; needs usedge[cpu] importable by the Python that Triton's stub runs."""
import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import usedge
        from usedge.serve.triton import FrameHandler

        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        here = Path(args["model_repository"]) / args["model_version"]
        predictor = usedge.load(here / params.get("usedge.bundle", "bundle"),
                                backend=params.get("usedge.backend", "auto"),
                                precision=params.get("usedge.precision", "auto"))
        self.handler = FrameHandler(predictor)

    def execute(self, requests):
        inputs = []
        for request in requests:
            tasks = pb_utils.get_input_tensor_by_name(request, "tasks")
            region = pb_utils.get_input_tensor_by_name(request, "region")
            mm = pb_utils.get_input_tensor_by_name(request, "mm_per_pixel")
            inputs.append((pb_utils.get_input_tensor_by_name(request, "frame").as_numpy(),
                           None if tasks is None else tasks.as_numpy(),
                           None if region is None else region.as_numpy(),
                           None if mm is None else mm.as_numpy()))
        try:            # every request in one Predictor batch per task selection
            answers = self.handler.answer_requests(inputs)
        except Exception:  # a bad request among them: answer each on its own, so only it gets the error
            answers = []
            for frames, tasks, region, mm in inputs:
                try:
                    answers.append(self.handler.answer(frames, tasks, region, mm))
                except Exception as exc:
                    answers.append(exc)
        return [pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(a)))
                if isinstance(a, Exception) else
                pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor("result", np.array(a, dtype=object).reshape(-1, 1))])
                for a in answers]

    def finalize(self):
        self.handler.close()
'''


__all__ = ["FRAME_INPUT", "MM_INPUT", "REGION_INPUT", "RESULT_OUTPUT", "TASKS_INPUT", "TRITON_DTYPES", "TritonModel",
           "plan_repository",
           "to_pbtxt", "validate_config", "write_repository"]
