"""Re-exports :mod:`usedge.data.preprocess` (its home since the processing spec moved upstream of every stage
that uses it: training, calibration, export and the runtime)."""
from usedge.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, SEG_DECODES, PreprocessSpec, preprocess, preprocess_batch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "SEG_DECODES", "PreprocessSpec", "preprocess", "preprocess_batch"]
