"""Run a built engine (:class:`EngineRunner`, behind the ``tensorrt`` backend): device buffers from torch or
cuda-python, one execution context, optional CUDA-graph replay per batch size. TensorRT and CUDA come from
:mod:`usedge.engine.tensorrt`."""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from usedge.engine import tensorrt as libs
from usedge.errors import DataError, DependencyError, SourceError

log = logging.getLogger(__name__)


# -- run -------------------------------------------------------------------------------------------------
class _TorchBuffers:
    """Device tensors from torch; the stream is a ``torch.cuda.Stream``."""

    def __init__(self, torch, device: int) -> None:
        self.torch, self.device = torch, torch.device("cuda", device)
        self.stream = torch.cuda.Stream(device=self.device)
        self.tensors: dict[str, object] = {}
        self.graphs: dict[int, object] = {}

    @property
    def handle(self) -> int:
        return self.stream.cuda_stream

    def alloc(self, name: str, shape, dtype: np.dtype) -> int:
        tdtype = self.torch.from_numpy(np.empty(0, dtype)).dtype
        self.tensors[name] = self.torch.empty(tuple(shape), dtype=tdtype, device=self.device)
        return self.tensors[name].data_ptr()

    def put(self, name: str, array: np.ndarray) -> None:
        with self.torch.cuda.stream(self.stream):
            self.tensors[name][: len(array)].copy_(self.torch.from_numpy(array))

    def get_all(self, names: list[str], n: int) -> dict[str, np.ndarray]:
        self.stream.synchronize()
        with self.torch.cuda.stream(self.stream):
            return {name: self.tensors[name][:n].cpu().numpy() for name in names}

    def capture(self, n: int, run: Callable[[], None]) -> None:
        graph = self.torch.cuda.CUDAGraph()
        with self.torch.cuda.graph(graph, stream=self.stream):
            run()
        self.graphs[n] = graph

    def replay(self, n: int) -> None:
        with self.torch.cuda.stream(self.stream):
            self.graphs[n].replay()

    def sync(self) -> None:
        self.stream.synchronize()

    def free(self) -> None:
        self.graphs.clear()
        self.tensors.clear()


class _CudartBuffers:
    """cudaMalloc'd device buffers + pinned host staging via cuda-python (no torch)."""

    def __init__(self, cudart, device: int) -> None:
        self.rt = cudart
        libs.cuda_check(cudart.cudaSetDevice(device))
        self.stream = libs.cuda_check(cudart.cudaStreamCreate())
        self.dev: dict[str, int] = {}
        self.host: dict[str, np.ndarray] = {}
        self.pinned: list[int] = []
        self.graphs: dict[int, tuple] = {}

    @property
    def handle(self) -> int:
        return int(self.stream)

    def alloc(self, name: str, shape, dtype: np.dtype) -> int:
        import ctypes

        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = libs.cuda_check(self.rt.cudaMallocHost(nbytes))
        self.pinned.append(ptr)
        buf = (ctypes.c_byte * nbytes).from_address(int(ptr))
        self.host[name] = np.frombuffer(buf, dtype=dtype).reshape(shape)
        self.dev[name] = int(libs.cuda_check(self.rt.cudaMalloc(nbytes)))
        return self.dev[name]

    def put(self, name: str, array: np.ndarray) -> None:
        host = self.host[name][: len(array)]
        host[...] = array
        libs.cuda_check(self.rt.cudaMemcpyAsync(self.dev[name], host.ctypes.data, host.nbytes,
                                       self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))

    def get_all(self, names: list[str], n: int) -> dict[str, np.ndarray]:
        for name in names:
            host = self.host[name][:n]
            libs.cuda_check(self.rt.cudaMemcpyAsync(host.ctypes.data, self.dev[name], host.nbytes,
                                           self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
        self.sync()
        return {name: self.host[name][:n].copy() for name in names}

    def capture(self, n: int, run: Callable[[], None]) -> None:
        libs.cuda_check(self.rt.cudaStreamBeginCapture(self.stream, self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal))
        try:
            run()
        finally:
            graph = libs.cuda_check(self.rt.cudaStreamEndCapture(self.stream))
        self.graphs[n] = (graph, libs.cuda_check(self.rt.cudaGraphInstantiate(graph, 0)))

    def replay(self, n: int) -> None:
        libs.cuda_check(self.rt.cudaGraphLaunch(self.graphs[n][1], self.stream))

    def sync(self) -> None:
        libs.cuda_check(self.rt.cudaStreamSynchronize(self.stream))

    def free(self) -> None:
        for graph, exec_ in self.graphs.values():
            self.rt.cudaGraphExecDestroy(exec_)
            self.rt.cudaGraphDestroy(graph)
        self.graphs.clear()
        for ptr in self.dev.values():
            self.rt.cudaFree(ptr)
        for ptr in self.pinned:
            self.rt.cudaFreeHost(ptr)
        self.dev, self.host, self.pinned = {}, {}, []
        self.rt.cudaStreamDestroy(self.stream)


def _buffers(device: int):
    torch = libs.torch_cuda()
    if torch is not None:
        return _TorchBuffers(torch, device)
    cudart = libs.cudart_module()
    if cudart is None:
        raise DependencyError("The TensorRT backend needs torch with CUDA or cuda-python for GPU memory.",
                              fix="pip install 'usedge[trt]' (installs cuda-python).")
    return _CudartBuffers(cudart, device)


class EngineRunner:
    """One deserialised engine + execution context + device buffers sized for the profile's max batch."""

    def __init__(self, engine_bytes: bytes, device: int = 0, cuda_graphs: bool = False) -> None:
        trt = libs.trt_module()
        self.trt = trt
        self.mem = _buffers(device)  # sets the device before deserialising
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise DataError("TensorRT could not deserialise the engine (built by another TensorRT version or GPU?).",
                            fix="rebuild it on this machine with `usedge build BUNDLE --target TARGET`.")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise DataError(f"engine has inputs {inputs}; usedge engines take one image tensor.",
                            fix="rebuild with `usedge build`.")
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n != self.input_name]
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.input_shape = tuple(self.engine.get_tensor_shape(self.input_name))
        lo, _, hi = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.batch_min, self.batch_max = int(lo[0]), int(hi[0])
        self.cuda_graphs = bool(cuda_graphs)
        self._allocate(tuple(hi))
        self._shape_n: int | None = None

    def _allocate(self, max_input_shape: tuple) -> None:
        self.context.set_input_shape(self.input_name, max_input_shape)
        for name in [self.input_name, *self.output_names]:
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise DataError(f"engine output {name} has a data-dependent shape {shape}.",
                                fix="usedge engines have static output shapes; rebuild from a usedge bundle.")
            self.context.set_tensor_address(name, self.mem.alloc(name, shape, self.dtypes[name]))

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.mem.handle):
            raise SourceError("TensorRT execute_async_v3 failed (see the TensorRT log above).",
                              fix="check the input batch against the engine's profile and the GPU's state.")

    def _set_batch(self, n: int) -> None:
        if n != self._shape_n:
            self.context.set_input_shape(self.input_name, (n, *self.input_shape[1:]))
            self._shape_n = n

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """``images``: N×C×H×W in the engine's input dtype -> ``{output name: N×... array}``."""
        n = int(images.shape[0])
        self._set_batch(n)
        self.mem.put(self.input_name, np.ascontiguousarray(images, dtype=self.dtypes[self.input_name]))
        if self.cuda_graphs and n in self.mem.graphs:
            self.mem.replay(n)
        else:
            self._execute()
            if self.cuda_graphs:
                self._try_capture(n)
        return self.mem.get_all(self.output_names, n)  # synchronises the stream

    def _try_capture(self, n: int) -> None:
        """Capture execute_async_v3 for batch ``n`` (after one plain run, as TensorRT requires)."""
        try:
            self.mem.capture(n, self._execute)
        except Exception as exc:  # capture is an optimisation: fall back to plain execution
            log.warning("CUDA graph capture failed (%s); running without graphs", exc)
            self.cuda_graphs = False

    def close(self) -> None:
        self.context = None
        self.engine = None
        self.mem.free()
