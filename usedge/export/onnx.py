"""Re-exports :mod:`usedge.models.onnx` (torch -> ONNX lives with the models: quantization and the
distillation report need it upstream of the export stage)."""
from usedge.models.onnx import *  # noqa: F401,F403
from usedge.models.onnx import __all__  # noqa: F401
