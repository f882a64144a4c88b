"""Engine cache keys and sidecars: which TensorRT engine in ``BUNDLE/engines/`` belongs to which machine,
precision, ONNX and profile, and whether one on disk may run here. Plain Python (no TensorRT): the bundle
format owns its ``engines/`` folder; :mod:`usedge.engine.plan` decides what to build and
:mod:`usedge.backends.tensorrt` picks what to run with these.

* :class:`EngineKey` names ``engines/<hash>.engine`` and its ``<hash>.json`` :class:`Sidecar`;
* :func:`key_mismatches` / :func:`check_engine_key` refuse an engine built elsewhere, saying what differs;
* :func:`list_engines` / :func:`select_engine` find the one that fits.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from usedge.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: bump when the build recipe changes in a way that must invalidate engines built by older usedge versions
KEY_VERSION = 1
SIDECAR_FORMAT = "usedge-engine/1"
ENGINE_DIR = "engines"
#: the fields that describe the machine (GPU + TensorRT) rather than the build request
MACHINE_FIELDS = ("gpu_name", "compute_capability", "trt_version")


# -- machine ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MachineInfo:
    """The GPU and TensorRT an engine is built on / runs on. ``compute_capability`` like ``"8.7"``."""

    gpu_name: str
    compute_capability: str
    trt_version: str

    def describe(self) -> str:
        return f"TensorRT {self.trt_version} on {self.gpu_name} ({self.compute_capability})"


# -- cache key -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. Its :meth:`digest` names the engine file."""

    gpu_name: str
    compute_capability: str
    trt_version: str
    precision: str
    onnx_sha256: str
    batch_min: int
    batch_opt: int
    batch_max: int
    height: int
    width: int
    dla_core: int | None = None
    key_version: int = KEY_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> EngineKey:
        names = {f.name for f in fields(cls)}
        missing = names - set(d) - {"dla_core", "key_version"}
        if missing:
            raise DataError(f"engine key lacks {sorted(missing)}.", fix="rebuild the engine with `usedge build`.")
        return cls(**{k: v for k, v in d.items() if k in names})

    def digest(self) -> str:
        """A stable 16-hex-digit hash of every field (sorted JSON)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def machine(self) -> MachineInfo:
        return MachineInfo(self.gpu_name, self.compute_capability, self.trt_version)


def make_key(machine: MachineInfo, precision: str, onnx_sha256: str, profile: Any,
             dla_core: int | None = None) -> EngineKey:
    return EngineKey(machine.gpu_name, machine.compute_capability, machine.trt_version, precision, onnx_sha256,
                     profile.batch_min, profile.batch_opt, profile.batch_max, profile.height, profile.width, dla_core)


def engine_paths(out_dir: str | Path, key: EngineKey) -> tuple[Path, Path]:
    """(``<out_dir>/<digest>.engine``, ``<out_dir>/<digest>.json``)."""
    out = Path(out_dir)
    return out / f"{key.digest()}.engine", out / f"{key.digest()}.json"


def key_mismatches(built: EngineKey, current: EngineKey | MachineInfo,
                   fields_: Iterable[str] | None = None) -> dict[str, tuple[Any, Any]]:
    """``{field: (built, current)}`` for every field that differs (only the fields ``current`` has, or
    ``fields_``)."""
    have = fields_ or [f.name for f in fields(current)]
    return {f: (getattr(built, f), getattr(current, f)) for f in have
            if getattr(built, f) != getattr(current, f)}


def _short(field_: str, value: Any) -> str:
    return str(value)[:12] + "…" if field_ == "onnx_sha256" and value else str(value)


def mismatch_message(built: EngineKey, current: EngineKey | MachineInfo, diff: Mapping[str, tuple[Any, Any]],
                     name: str = "engine", rebuild: str = "usedge build BUNDLE --target TARGET") -> str:
    parts = [f"{name} was built for {built.machine.describe()}"]
    cur = current.machine if isinstance(current, EngineKey) else current
    if any(f in diff for f in MACHINE_FIELDS):
        parts.append(f"; this machine has {cur.describe()}")
    listed = ", ".join(f"{f} {_short(f, a)} -> {_short(f, b)}" for f, (a, b) in diff.items())
    return f"{''.join(parts)}. Differs: {listed}: rebuild with `{rebuild}`."


def check_engine_key(built: EngineKey, machine: MachineInfo, onnx_sha256: str | None = None,
                     name: str = "engine", rebuild: str = "usedge build BUNDLE --target TARGET") -> None:
    """Raise ConfigError unless ``built`` was made on this GPU + TensorRT (and from this ONNX, if given)."""
    diff = key_mismatches(built, machine)
    if onnx_sha256 is not None and built.onnx_sha256 != onnx_sha256:
        diff["onnx_sha256"] = (built.onnx_sha256, onnx_sha256)
    if diff:
        raise ConfigError(mismatch_message(built, machine, diff, name, rebuild),
                          fix="TensorRT engines only run on the GPU model and TensorRT version they were built with; "
                              f"`{rebuild}` on this machine.")


# -- sidecar ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sidecar:
    """``<digest>.json`` next to an engine: the full key, the engine's checksum, how it was built."""

    key: EngineKey
    engine_sha256: str
    engine_bytes: int
    build: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"format": SIDECAR_FORMAT, "key_hash": self.key.digest(), "key": self.key.to_dict(),
                "engine": {"sha256": self.engine_sha256, "bytes": self.engine_bytes}, "build": dict(self.build)}

    @property
    def rebuild_hint(self) -> str:
        return f"usedge build {self.build.get('bundle', 'BUNDLE')} --target {self.build.get('target', 'TARGET')} " \
               f"--precision {self.key.precision}"


def sidecar_path(engine: str | Path) -> Path:
    return Path(engine).with_suffix(".json")


def read_sidecar(engine: str | Path) -> Sidecar:
    """Read and check an engine's sidecar; an engine without one is refused (its build machine is unknown)."""
    path = sidecar_path(engine)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{engine} has no sidecar {path.name}; refusing to load an engine whose GPU and TensorRT "
                        "version are unknown.", fix="rebuild it with `usedge build BUNDLE --target TARGET`.") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc.msg}).", fix="rebuild the engine with `usedge build`.") from None
    if not isinstance(raw, dict) or raw.get("format") != SIDECAR_FORMAT:
        fmt = raw.get("format") if isinstance(raw, dict) else "?"
        raise DataError(f"{path} is not a usedge engine sidecar (format {fmt!r}).",
                        fix="rebuild the engine with `usedge build`.")
    key = EngineKey.from_dict(raw.get("key", {}))
    if raw.get("key_hash") != key.digest():
        raise DataError(f"{path}: key_hash does not match its key (edited by hand?).",
                        fix="rebuild the engine with `usedge build`.")
    eng = raw.get("engine", {})
    return Sidecar(key, str(eng.get("sha256", "")), int(eng.get("bytes", -1)), dict(raw.get("build", {})))


def verify_engine_file(engine: str | Path, sidecar: Sidecar) -> bytes:
    """The engine's bytes, after checking size and sha256 against the sidecar."""
    path = Path(engine)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"engine {path} is missing.", fix="rebuild it with `usedge build`.") from None
    if len(data) != sidecar.engine_bytes or hashlib.sha256(data).hexdigest() != sidecar.engine_sha256:
        raise DataError(f"{path} does not match the checksum in {sidecar_path(path).name} (truncated or replaced).",
                        fix=f"rebuild with `{sidecar.rebuild_hint}`.")
    return data


def list_engines(folder: str | Path) -> list[tuple[Path, Sidecar]]:
    """Every ``*.engine`` in ``folder`` with a readable sidecar (others are skipped with a warning)."""
    out = []
    for p in sorted(Path(folder).glob("*.engine")) if Path(folder).is_dir() else []:
        try:
            out.append((p, read_sidecar(p)))
        except DataError as exc:
            log.warning("skipping %s: %s", p.name, exc.message)
    return out


def select_engine(candidates: Sequence[tuple[Path, Sidecar]], machine: MachineInfo, precision: str,
                  onnx_sha256: str | None = None, rebuild: str = "usedge build BUNDLE --target TARGET") -> Path:
    """The engine of ``precision`` built on this machine (from this ONNX); the widest batch range wins.

    Raises ConfigError naming what differs when no engine fits."""
    same = [(p, s) for p, s in candidates if s.key.precision == precision]
    if not same:
        have = sorted({s.key.precision for _, s in candidates})
        raise ConfigError(f"no {precision} TensorRT engine found (engines present: {', '.join(have) or 'none'}).",
                          fix=f"build one with `{rebuild} --precision {precision}`.")
    fits, reasons = [], []
    for p, s in same:
        diff = key_mismatches(s.key, machine)
        if onnx_sha256 is not None and s.key.onnx_sha256 != onnx_sha256:
            diff["onnx_sha256"] = (s.key.onnx_sha256, onnx_sha256)
        if diff:
            reasons.append(mismatch_message(s.key, machine, diff, p.name, rebuild))
        else:
            fits.append((s.key.batch_max, -s.key.batch_min, p.name, p))
    if not fits:
        raise ConfigError("no engine fits this machine: " + " | ".join(reasons[:3]),
                          fix=f"`{rebuild} --precision {precision}` on this machine.")
    return max(fits)[-1]


__all__ = ["ENGINE_DIR", "KEY_VERSION", "MACHINE_FIELDS", "SIDECAR_FORMAT", "EngineKey", "MachineInfo", "Sidecar",
           "check_engine_key", "engine_paths", "key_mismatches", "list_engines", "make_key", "mismatch_message",
           "read_sidecar", "select_engine", "sidecar_path", "verify_engine_file"]
