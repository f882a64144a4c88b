"""TensorRT backend: runs an engine built by ``usedge build`` on this machine.

The engine's sidecar (``<key>.json``) is checked before anything is deserialised: the engine file's sha256,
and that it was built on this GPU model + compute capability + TensorRT version (and from the bundle's
ONNX, when a bundle is given). A mismatching engine is refused with the fields that differ and the
``usedge build`` command that fixes it. All TensorRT / CUDA calls live in :mod:`usedge.engine` (runner, tensorrt),
imported only when a backend is opened, so this module imports without TensorRT, CUDA or torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from usedge.backends.base import Backend, InputSpec
from usedge.bundle.engines import check_engine_key, list_engines, read_sidecar, select_engine, verify_engine_file
from usedge.errors import DataError


def _bundle(bundle):
    if bundle is None:
        return None
    from usedge.bundle import Bundle, load_bundle

    return bundle if isinstance(bundle, Bundle) else load_bundle(bundle)


def _onnx_sha(bundle, precision: str) -> str | None:
    name = "model.int8.onnx" if precision == "int8" else "model.fp32.onnx"
    entry = bundle.meta.files.get(name) if bundle is not None else None
    return entry.sha256 if entry else None


def engines(bundle) -> list[Path]:
    """The engine files in ``BUNDLE/engines`` (any machine, any precision)."""
    folder = Path(bundle.path) / "engines"
    return sorted(folder.glob("*.engine")) if folder.is_dir() else []


def find_engine(bundle, precision: str, device: int = 0) -> Path:
    """The engine in ``BUNDLE/engines`` of ``precision`` that was built on this machine from this bundle."""
    from usedge.engine.tensorrt import machine_info

    b = _bundle(bundle)
    hint = f"usedge build {b.path} --target TARGET"
    return select_engine(list_engines(Path(b.path) / "engines"), machine_info(device), precision,
                         _onnx_sha(b, precision), rebuild=hint)


class TensorRTBackend(Backend):
    """Options: ``bundle`` (Bundle or path: also checks the engine was built from its ONNX, and orders the
    outputs as the bundle lists them), ``device`` (CUDA device index), ``cuda_graphs`` (capture one CUDA
    graph per batch size and replay it)."""

    name = "tensorrt"
    library = "tensorrt"
    extra = "trt"
    artefact = "engine"
    precisions = ("fp32", "fp16", "int8")
    device_kind = "gpu"
    preference = 2
    auto_rank = 0           # an engine built on this machine beats every CPU runtime
    fallback_precision = "fp16"

    @classmethod
    def bench_options(cls, precision: str, threads: int | None) -> dict:
        return {}           # the engine fixes its own parallelism

    @classmethod
    def usable(cls, bundle) -> bool:
        return cls.available() and bool(engines(bundle))

    @classmethod
    def skip_reason(cls, bundle, precision: str) -> str | None:
        reason = super().skip_reason(bundle, precision)
        if reason is None and not engines(bundle):
            return "tensorrt: no engine in the bundle (run `usedge build`)"
        return reason

    @classmethod
    def locate(cls, bundle, precision: str) -> Path:
        return find_engine(bundle, precision)

    @classmethod
    def open_for(cls, bundle, precision: str, **options) -> Backend:
        return cls(cls.locate(bundle, precision), bundle=bundle, **options)

    def device_name(self) -> str:
        from usedge.engine.tensorrt import machine_info

        return machine_info(int(self.options.get("device", 0))).gpu_name

    def _open(self, path: Path, bundle=None, device: int = 0, cuda_graphs: bool = False) -> tuple[InputSpec, list[str]]:
        from usedge.engine.runner import EngineRunner
        from usedge.engine.tensorrt import machine_info

        b = _bundle(bundle)
        sidecar = read_sidecar(path)
        check_engine_key(sidecar.key, machine_info(device), _onnx_sha(b, sidecar.key.precision),
                         name=Path(path).name, rebuild=sidecar.rebuild_hint)
        data = verify_engine_file(path, sidecar)
        self.runner = EngineRunner(data, device=int(device), cuda_graphs=bool(cuda_graphs))
        self.key = sidecar.key
        return self._spec(b), self._outputs(b)

    def _spec(self, bundle) -> InputSpec:
        r = self.runner
        c, h, w = (int(d) for d in r.input_shape[1:])
        if (h, w) != (self.key.height, self.key.width):
            raise DataError(f"engine input is {h}×{w}, its sidecar says {self.key.height}×{self.key.width}.",
                            fix=f"rebuild with `{read_sidecar(self.path).rebuild_hint}`.")
        if bundle is not None and r.input_name != bundle.meta.input.name:
            raise DataError(f"engine input '{r.input_name}' is not the bundle's '{bundle.meta.input.name}'.",
                            fix="build the engine from this bundle with `usedge build`.")
        return InputSpec(r.input_name, c, h, w, batch_min=r.batch_min, batch_max=r.batch_max)

    def _outputs(self, bundle) -> list[str]:
        names = list(self.runner.output_names)
        if bundle is None:
            return names
        wanted = [o.name for o in bundle.meta.outputs]
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise DataError(f"engine lacks the bundle outputs {missing[:5]}.",
                            fix="build the engine from this bundle with `usedge build`.")
        return wanted + [n for n in names if n not in wanted]

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = self.runner.run(images)
        return {name: out[name] for name in self.output_names}

    def _close(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
            self.runner = None
