"""The one preprocessing every path shares (training eval, calibration, runtime, stream): any stored frame
-> RGB -> square resize -> (x/255 - mean) / std -> float32 N×3×S×S. numpy + OpenCV only."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessSpec:
    """What the network expects; recorded in checkpoints, bundles and ONNX metadata."""

    size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channels: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"
    resize: str = "square stretch; INTER_AREA when shrinking, else INTER_LINEAR"

    @classmethod
    def from_config(cls, config) -> PreprocessSpec:
        return cls(size=int(config.input_size), mean=tuple(config.mean), std=tuple(config.std))

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std"):
            if key in d:
                d[key] = tuple(float(x) for x in d[key])
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def preprocess(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """One stored frame (grey / BGR / BGRA, uint8 or uint16) -> float32 3×S×S."""
    from usedge.data.transforms import normalize, to_gray_or_bgr_uint8, to_rgb

    rgb = to_rgb(to_gray_or_bgr_uint8(image))
    size = spec.size
    interp = cv2.INTER_AREA if max(rgb.shape[:2]) > size else cv2.INTER_LINEAR
    return normalize(cv2.resize(rgb, (size, size), interpolation=interp), spec.mean, spec.std)


def preprocess_batch(images: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    return np.stack([preprocess(im, spec) for im in images])
