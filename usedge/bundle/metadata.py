"""metadata.json as typed, frozen data: parsed and validated once, at load, with one clear error per field.

A bundle's metadata is read by the runtime (tasks, input, preprocessing, precisions, the INT8 gate, latency),
the engine builder (input shape, files, the INT8 record), the bench and the demo. They read it through
:class:`BundleMetadata` instead of ``.get()`` chains on a dict. The dict stays available as
``Bundle.metadata`` for what is informational only (reports, parity, provenance).

Schema versions (``schema_version``):

* 1 — written up to 2026-11-25: ``input.preprocess.resize`` was a description of usedge's own rule and
  there was no ``seg_decode``; read as ``resize="area"``, ``seg_decode="logits"`` (:func:`migrate`).
* 2 — ``input.preprocess`` carries ``resize`` (``area`` | ``bilinear``) and ``seg_decode``
  (``logits`` | ``argmax-nearest``), see docs/official-baseline.md.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from usedge.data.preprocess import PreprocessSpec
from usedge.errors import ConfigError, DataError

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
METADATA = "metadata.json"
MODEL_FILES = {"fp32": "model.fp32.onnx", "int8": "model.int8.onnx"}
#: in-domain images and the int8 graph's exact outputs on them, checked on each machine (usedge.backends.int8_check)
INT8_CHECK_FILE = "int8_check.npz"
#: the frame gate's statistics: the embeddings of in-distribution images per precision (usedge.runtime.gate)
FRAME_GATE_FILE = "frame_gate.npz"
#: the FP16 graph (head arithmetic fp32 behind explicit Casts) TensorRT builds fp16 engines from, strongly typed;
#: written for targets that run TensorRT (usedge.engine.plan), not a CPU runtime precision
FP16_FILE = "model.fp16.onnx"


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class TaskInfo:
    id: str
    kind: str
    classes: tuple[str, ...] = ()
    points: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputInfo:
    name: str
    shape: tuple[Any, ...]          # ("N", 3, S, S): N is a name (dynamic batch) or an int
    dtype: str
    preprocess: PreprocessSpec


@dataclass(frozen=True)
class OutputInfo:
    name: str
    task: str
    field: str
    shape: tuple[Any, ...]


@dataclass(frozen=True)
class Int8Info:
    """The INT8 export's record: whether the per-task gate passed, how the graph was made, what stayed float."""

    passed: bool | None                # None: the record does not say (older or hand-made bundles)
    method: str | None = None
    float_layers: tuple[str, ...] = ()
    float_activations: tuple[str, ...] = ()
    attempts: int = 0
    quantizers: int | None = None
    signed_int8: int | None = None     # how many quantizers are signed int8
    zero_points_all_zero: bool | None = None


@dataclass(frozen=True)
class BundleMetadata:
    schema_version: int
    tasks: tuple[TaskInfo, ...]
    input: InputInfo
    files: Mapping[str, FileEntry]
    outputs: tuple[OutputInfo, ...] = ()
    model: Mapping[str, Any] = field(default_factory=dict)
    int8: Int8Info | None = None
    latency: Mapping[str, Any] = field(default_factory=dict)
    usedge_version: str | None = None

    @property
    def task_ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    @property
    def precisions(self) -> list[str]:
        """The precisions whose model file the bundle holds, in MODEL_FILES order."""
        return [p for p, f in MODEL_FILES.items() if f in self.files]

    @property
    def int8_gate_passed(self) -> bool:
        return bool(self.int8 and self.int8.passed)

    @classmethod
    def from_dict(cls, d: object, root: Path) -> BundleMetadata:
        """Validate and type a metadata.json object; DataError naming the first problem."""
        return _parse(d, Path(root))


def migrate(d: dict) -> dict:
    """An older schema's metadata, brought to :data:`SCHEMA_VERSION` (a copy; the file is not rewritten)."""
    version = d.get("schema_version")
    if version == 1:
        d = {**d, "schema_version": 2}
        inp = d.get("input")
        if isinstance(inp, dict) and isinstance(inp.get("preprocess"), dict):
            pre = dict(inp["preprocess"])
            if not (isinstance(pre.get("resize"), str) and pre["resize"] in ("area", "bilinear")):
                pre["resize"] = "area"
            pre.setdefault("seg_decode", "logits")
            d["input"] = {**inp, "preprocess": pre}
    return d


# -- parsing ---------------------------------------------------------------------------------------------------
def _bad(root: Path, what: str) -> DataError:
    return DataError(f"{root / METADATA}: {what}.", fix="re-export the bundle; do not edit metadata.json by hand.")


def _parse(d: object, root: Path) -> BundleMetadata:
    if not isinstance(d, dict):
        raise _bad(root, f"holds a JSON {type(d).__name__}, not an object")
    files = _files(d.get("files"), root)
    version = d.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise DataError(f"bundle schema version {version} is not supported (this usedge reads "
                        f"{', '.join(map(str, READABLE_VERSIONS))}).",
                        fix="re-export the bundle with this usedge version, or upgrade usedge.")
    d = migrate(d)
    _check_sections(d, root)
    return BundleMetadata(schema_version=int(d["schema_version"]), tasks=_tasks(d.get("tasks"), root),
                          input=_input(d.get("input"), root), files=files, outputs=_outputs(d.get("outputs"), root),
                          model=dict(d.get("model") or {}), int8=_int8(d.get("int8"), root),
                          latency=dict(d.get("latency") or {}), usedge_version=d.get("usedge_version"))


#: the JSON type of each optional section readers use (checked so that a hand-edited value is one clear error)
_SECTIONS = {"model": dict, "latency": dict, "slim": dict, "fp16": dict, "parity": dict, "accuracy": dict,
             "source": dict, "export": dict, "target": dict, "versions": dict, "precisions": list,
             "usedge_version": str}
_INT8_SECTIONS = {"check": dict, "gate_machine": dict, "float_layers": list, "float_activations": list,
                  "weight_bits": int, "attempts": int}


def _check_sections(d: dict, root: Path) -> None:
    for key, kind in _SECTIONS.items():
        if d.get(key) is not None and not isinstance(d[key], kind):
            want = "an object" if kind is dict else "a " + kind.__name__
            raise _bad(root, f"'{key}' is a JSON {type(d[key]).__name__}, not {want}")
    if isinstance(d.get("latency"), dict):
        for prec, row in d["latency"].items():
            if not isinstance(row, dict):
                raise _bad(root, f"latency '{prec}' is a JSON {type(row).__name__}, not an object")
    rec = d.get("int8")
    if isinstance(rec, dict):
        for key, kind in _INT8_SECTIONS.items():
            value = rec.get(key)
            if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                raise _bad(root, f"int8.{key} is a JSON {type(value).__name__}, not "
                                 f"{'an object' if kind is dict else 'a ' + kind.__name__}")


def _files(files: object, root: Path) -> dict[str, FileEntry]:
    if not isinstance(files, dict) or not files:
        raise _bad(root, "has no 'files' listing")
    base = root.resolve()
    out = {}
    for name, entry in files.items():
        target = (base / name).resolve()
        if Path(name).is_absolute() or ".." in Path(name).parts or base not in target.parents:
            raise _bad(root, f"lists '{name}', which points outside the bundle")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("bytes"), int)):
            raise _bad(root, f"the entry of '{name}' needs a sha256 string and a byte count")
        out[name] = FileEntry(entry["sha256"], entry["bytes"])
    return out


def _tasks(tasks: object, root: Path) -> tuple[TaskInfo, ...]:
    from usedge.tasks import get_task

    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) and "id" in t for t in tasks):
        raise _bad(root, "has no 'tasks' list of {id: ...} objects")
    out = []
    for t in tasks:
        try:
            spec = get_task(str(t["id"]))
        except Exception:  # noqa: BLE001 - the registry's own error names the known ids
            raise _bad(root, f"names task '{t['id']}', which is not one of the 27 FMC-UIA tasks") from None
        out.append(TaskInfo(spec.id, spec.kind.value, tuple(t.get("classes") or spec.class_names),
                            tuple(t.get("points") or spec.point_names)))
    return tuple(out)


def _input(spec: object, root: Path) -> InputInfo:
    shape = spec.get("shape") if isinstance(spec, dict) else None
    if not (isinstance(shape, list) and len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape[1:])):
        raise _bad(root, f"input shape {shape} is not a positive N×C×S×S image shape")
    pre = spec.get("preprocess")
    if pre is None:
        pre = {"size": shape[2]}
    if not (isinstance(pre, dict) and isinstance(pre.get("size"), int) and pre["size"] > 0):
        raise _bad(root, f"preprocess size {pre.get('size') if isinstance(pre, dict) else pre} is not a positive "
                         "image side")
    try:
        preprocess = PreprocessSpec.from_dict(pre)
    except (ConfigError, TypeError, ValueError) as exc:
        raise _bad(root, f"preprocess {pre} is not valid: {exc}") from None
    return InputInfo(str(spec.get("name", "images")), tuple(shape), str(spec.get("dtype", "float32")), preprocess)


def _outputs(outputs: object, root: Path) -> tuple[OutputInfo, ...]:
    if outputs is None:
        return ()
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise _bad(root, "has an 'outputs' entry that is not a list of {name: ...} objects")
    return tuple(OutputInfo(o["name"], str(o.get("task", o["name"].split(".")[0])),
                            str(o.get("field", o["name"].split(".")[-1])), tuple(o.get("shape") or ()))
                 for o in outputs)


def _int8(rec: object, root: Path) -> Int8Info | None:
    if rec is None:
        return None
    if not isinstance(rec, dict):
        raise _bad(root, f"'int8' is a JSON {type(rec).__name__}, not an object")
    def opt(key: str, kind):
        value = rec.get(key)
        if value is None:
            return None
        # JSON types exactly: bool("false") is True and int(True) is 1, so a hand-edited "passed": "false" would
        # read as a passed gate; bool is not an int here either
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _bad(root, f"int8.{key} is {value!r} (JSON {type(value).__name__}); it must be a JSON "
                             f"{'true/false' if kind is bool else 'integer'}")
        return value

    return Int8Info(passed=opt("passed", bool), method=rec.get("method"),
                    float_layers=tuple(rec.get("float_layers") or ()),
                    float_activations=tuple(rec.get("float_activations") or ()), attempts=int(rec.get("attempts") or 0),
                    quantizers=opt("quantizers", int), signed_int8=opt("signed_int8", int),
                    zero_points_all_zero=opt("zero_points_all_zero", bool))


__all__ = ["BundleMetadata", "FP16_FILE", "FileEntry", "INT8_CHECK_FILE", "InputInfo", "Int8Info", "METADATA",
           "MODEL_FILES", "OutputInfo", "READABLE_VERSIONS", "SCHEMA_VERSION", "TaskInfo", "migrate"]
