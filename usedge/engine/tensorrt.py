"""The TensorRT and CUDA libraries, imported on first use, and this machine's engine-key fields
(:func:`machine_info`). :mod:`usedge.engine.build` builds engines and :mod:`usedge.engine.runner` runs them
(as Polygraphy keeps ``backend/trt/loader.py`` apart from ``runner.py``); both reach TensorRT, CUDA and torch
only through here, so importing any of them costs nothing where those are missing.

Written against the TensorRT 10 and 11 Python APIs (docs/tensorrt.md lists the NVIDIA documentation and samples
it follows); it has not been executed in the development environment, which has neither TensorRT nor a GPU.
"""
from __future__ import annotations

import importlib
import importlib.util

from usedge.bundle.engines import MachineInfo
from usedge.errors import DependencyError, SourceError, require


# -- imports ---------------------------------------------------------------------------------------------
def trt_module():
    return require("tensorrt", "trt", "Building and running TensorRT engines")


def cudart_module():
    """cuda-python's runtime module (``cuda.bindings.runtime`` from 12.6 on, ``cuda.cudart`` before), or None."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def torch_cuda():
    """torch where it is installed with a usable CUDA device, else None."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch if torch.cuda.is_available() else None


def cuda_check(result):
    """Unpack a cuda-python ``(err, *values)`` tuple, raising on an error code."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise SourceError(f"CUDA call failed: {err}", fix="check the GPU (nvidia-smi / tegrastats) and the driver.")
    return rest[0] if len(rest) == 1 else tuple(rest)


# -- machine ---------------------------------------------------------------------------------------------
def machine_info(device: int = 0) -> MachineInfo:
    """GPU name, compute capability and TensorRT version of this machine (GPU via torch.cuda, else cuda-python)."""
    trt = trt_module()
    torch = torch_cuda()
    if torch is not None:
        major, minor = torch.cuda.get_device_capability(device)
        return MachineInfo(torch.cuda.get_device_name(device), f"{major}.{minor}", trt.__version__)
    cudart = cudart_module()
    if cudart is None:
        raise DependencyError("Querying the GPU needs torch with CUDA or cuda-python; neither is usable here.",
                              fix="pip install 'usedge[trt]' (installs cuda-python).")
    prop = cuda_check(cudart.cudaGetDeviceProperties(device))
    name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
    return MachineInfo(name.split("\x00")[0].strip(), f"{prop.major}.{prop.minor}", trt.__version__)
