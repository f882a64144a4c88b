"""torch backend: the reference the other backends are checked against, and the GPU path where TensorRT is
missing (CUDA, fp16, optional CUDA graphs). Loads a usedge checkpoint folder or a bundle's ``torch/``
folder (safetensors weights + config.json). Needs the ``train`` extra; never imported by the runtime itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from usedge.backends.base import Backend, InputSpec
from usedge.errors import ConfigError, require
from usedge.tasks import EMBEDDING_OUTPUT


class TorchBackend(Backend):
    """Options: ``device`` ("cpu", "cuda", "cuda:1"), ``half`` (fp16 on CUDA), ``cuda_graphs`` (capture one
    graph per batch size on first use; CUDA only), ``threads`` (CPU intra-op threads)."""

    name = "torch"
    library = "torch"
    extra = "train"
    artefact = "checkpoint"
    precisions = ("fp32", "fp16")            # fp32 on the CPU (the reference), fp16 on CUDA
    device_kind = "gpu"
    preference = 3                           # a reference, never picked automatically (auto_rank None)

    @classmethod
    def skip_reason(cls, bundle, precision: str) -> str | None:
        if not cls.available() or not (Path(bundle.path) / "torch" / "config.json").is_file():
            return "torch: needs the bundle's torch/ weights and the train extra"
        if precision == "fp16":
            import torch

            return None if torch.cuda.is_available() else "torch fp16 on CUDA: no CUDA device here"
        return None if precision == "fp32" else f"torch: {precision} is not benchmarked (fp32 on CPU, fp16 on CUDA)"

    @classmethod
    def locate(cls, bundle, precision: str) -> Path:
        return Path(bundle.path)

    @classmethod
    def auto_precision(cls, bundle) -> tuple[str, str] | None:
        return "fp32", "torch reference"

    @classmethod
    def bench_options(cls, precision: str, threads: int | None) -> dict:
        return {**super().bench_options(precision, threads), **({"device": "cuda"} if precision == "fp16" else {})}

    @classmethod
    def open_for(cls, bundle, precision: str, **options) -> Backend:
        if precision == "fp16":
            options = {"half": True, **options}
        return cls(cls.locate(bundle, precision), **options)

    def device_name(self) -> str:
        if getattr(self.device, "type", "cpu") == "cuda":
            return self.torch.cuda.get_device_name(self.device)
        return str(self.device).upper()

    def _open(self, path: Path, device: str = "cpu", half: bool = False, cuda_graphs: bool = False,
              threads: int | None = None) -> tuple[InputSpec, list[str]]:
        torch = require("torch", "train", "the torch backend")
        from usedge.models.checkpoint import load_checkpoint

        folder = path / "torch" if (path / "torch" / "config.json").is_file() else path
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"torch backend: device '{device}' requested but CUDA is not available here.",
                              fix="use device='cpu', or run on a machine with a CUDA GPU.")
        if (half or cuda_graphs) and not device.startswith("cuda"):
            raise ConfigError("torch backend: half / cuda_graphs need a CUDA device.", fix="pass device='cuda'.")
        if threads:
            torch.set_num_threads(int(threads))
        model, config, _ = load_checkpoint(folder, device=device)
        self.torch, self.device = torch, torch.device(device)
        self.model = (model.half() if half else model.float()).eval()
        self.dtype = torch.float16 if half else torch.float32
        self.cuda_graphs, self._graphs = cuda_graphs, {}
        self.version = torch.__version__
        names = [o.name for s in config.task_specs for o in s.outputs]
        # the frame gate's output when the bundle's graphs carry it (the same names as ONNX; usedge.runtime.gate)
        self.embedding = _has_embedding(path) and hasattr(self.model, "feature_statistics")
        s = int(config.input_size)
        return InputSpec("images", 3, s, s), names + ([EMBEDDING_OUTPUT] if self.embedding else [])

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(images).to(self.device, self.dtype, non_blocking=True)
            out = self._graph_run(x) if self.cuda_graphs else self._forward(x)
            return {k: out[k].float().cpu().numpy() for k in self.output_names}

    def _forward(self, x):
        """The model's outputs, with the frame gate's embedding when the bundle carries one."""
        return self.model(x, embedding=True) if self.embedding else self.model(x)

    def _graph_run(self, x):
        """Replay a captured CUDA graph for this batch size (captured on first use after a warm-up)."""
        torch = self.torch
        n = x.shape[0]
        if n not in self._graphs:
            static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self._forward(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self._graphs[n] = (graph, static_in, static_out)
        graph, static_in, static_out = self._graphs[n]
        static_in.copy_(x)
        graph.replay()
        return static_out

    def _close(self) -> None:
        self.model = None
        self._graphs = {}


def _has_embedding(path: Path) -> bool:
    """Whether the bundle at ``path`` (or the folder above a torch/ checkpoint) fitted a frame gate."""
    import json

    for folder in (path, path.parent):
        meta = folder / "metadata.json"
        if meta.is_file():
            try:
                return "segments" in (json.loads(meta.read_text()).get("frame_gate") or {})
            except (OSError, ValueError):
                return False
    return False
