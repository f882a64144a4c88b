"""The one preprocessing every path shares (training eval, calibration, runtime, stream): any stored frame
-> RGB -> square resize -> (x/255 - mean) / std -> float32 N×3×S×S. numpy + OpenCV only.

A model declares how it was trained to see images, and the same declaration travels in its checkpoint,
ONNX metadata and bundle (``input.preprocess``): :class:`PreprocessSpec`. Two fields make the official
baseline's processing exact for baseline teachers (``usedge eval --model best_model.pth``):

==============  =============================================  ==============================================
field           usedge students (default)                      official baseline (``docker/model.py``)
==============  =============================================  ==============================================
``resize``      ``area``: INTER_AREA when shrinking,           ``bilinear``: ``A.Resize(256, 256)``, always
                INTER_LINEAR when enlarging                    INTER_LINEAR
``seg_decode``  ``logits``: bilinear logit upsampling to the    ``argmax-nearest``: argmax at the input size,
                original size, then argmax                     class map resized with INTER_NEAREST
==============  =============================================  ==============================================
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from usedge.data.transforms import RESIZE_MODES, resize_interpolation
from usedge.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SEG_DECODES = ("logits", "argmax-nearest")
#: What bundles written before the resize modes existed recorded (a description of ``area``).
_LEGACY_RESIZE = "square stretch; INTER_AREA when shrinking, else INTER_LINEAR"


@dataclass(frozen=True)
class PreprocessSpec:
    """What the network expects and how its dense outputs are decoded; recorded in checkpoints, bundles and
    ONNX metadata. ``resize`` / ``seg_decode``: see the module docstring."""

    size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channels: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"
    resize: str = "area"
    seg_decode: str = "logits"

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"preprocess resize {self.resize!r} is not known.",
                              fix=f"use one of: {', '.join(RESIZE_MODES)}")
        if self.seg_decode not in SEG_DECODES:
            raise ConfigError(f"segmentation decode {self.seg_decode!r} is not known.",
                              fix=f"use one of: {', '.join(SEG_DECODES)}")
        import math

        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ConfigError(f"preprocess {name} {list(values)} is not three finite numbers.",
                                  fix="re-export the model; the recorded normalisation is damaged.")
        if not all(v > 0 for v in self.std):
            # a zero std divided every frame into infinities, reported per frame as "check the frame source"
            raise ConfigError(f"preprocess std {list(self.std)} has a value <= 0: every frame would divide by it.",
                              fix="re-export the model; its recorded normalisation (std) is damaged.")

    @classmethod
    def from_config(cls, config) -> PreprocessSpec:
        return cls(size=int(config.input_size), mean=tuple(config.mean), std=tuple(config.std),
                   resize=getattr(config, "resize", "area"), seg_decode=getattr(config, "seg_decode", "logits"))

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std"):
            if key in d:
                d[key] = tuple(float(x) for x in d[key])
        if d.get("resize") == _LEGACY_RESIZE:
            d["resize"] = "area"
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Framing:
    """How the model's training images framed the scan: their width / height (``aspect``). A crop to a scan
    region (DICOM, given or found) is padded with black to that shape before the square resize, so that the model
    sees the anatomy at the proportions it learned: stretching a linear probe's tall rectangle to a square widens
    every structure by a third. Narrower crops are padded on both sides (centred), wider ones below (the probe
    face stays at the top, as in every B-mode image). ``aspect`` None: the crop is stretched (training images
    of varied shapes, where stretching is what the model saw; bundles written before framing existed).
    Fitted at export from the training images' shapes (:meth:`fit`); bundle ``metadata.json`` ``framing``."""

    aspect: float | None = None

    #: share of the training images whose aspect must lie within ``TOLERANCE`` of the median for one to be fitted
    AGREE = 0.9
    TOLERANCE = 0.02

    def __post_init__(self) -> None:
        import math

        if self.aspect is not None and not (math.isfinite(self.aspect) and 0.05 <= self.aspect <= 20):
            raise ConfigError(f"framing aspect {self.aspect!r} is not a width / height between 0.05 and 20.",
                              fix="re-export the model (or `usedge gate-fit BUNDLE`); its recorded framing is damaged.")

    @classmethod
    def fit(cls, shapes: list[tuple[int, int]]) -> Framing:
        """From the training images' (height, width): their common aspect, or None when they do not share one."""
        if not shapes:
            return cls()
        aspects = np.array([w / h for h, w in shapes], np.float64)
        median = float(np.median(aspects))
        agree = np.mean(np.abs(aspects / median - 1) <= cls.TOLERANCE)
        return cls(round(median, 4) if agree >= cls.AGREE else None)

    @classmethod
    def from_dict(cls, d: dict | None) -> Framing:
        aspect = (d or {}).get("aspect")
        return cls(None if aspect is None else float(aspect))

    def to_dict(self) -> dict:
        return {"aspect": self.aspect}

    def pad(self, crop: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """(the crop inside a black canvas of the training aspect, the crop's top-left in it); unchanged (and
        (0, 0)) without an aspect or when the crop already has it (within a pixel)."""
        h, w = crop.shape[:2]
        if self.aspect is None or h == 0 or w == 0:
            return crop, (0, 0)
        width, height = max(w, round(h * self.aspect)), max(h, round(w / self.aspect))
        if width - w <= 1 and height - h <= 1:
            return crop, (0, 0)
        canvas = np.zeros((height, width) + crop.shape[2:], crop.dtype)
        px = (width - w) // 2
        canvas[:h, px:px + w] = crop
        return canvas, (px, 0)


def preprocess(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """One stored frame (grey / BGR / BGRA, uint8 or uint16) -> float32 3×S×S."""
    return normalize_input(model_input(image, spec), spec)


def model_input(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """One stored frame -> the uint8 S×S grey or BGR image the model sees, before normalisation (what the frame
    gate's image-quality checks read: usedge.runtime.gate)."""
    from usedge.data.transforms import to_gray_or_bgr_uint8

    img = to_gray_or_bgr_uint8(image)
    # resize first, then the channel order: per-channel resizing commutes with the BGR->RGB swap and the grey
    # replication exactly, and the conversion then touches size² pixels instead of the whole frame
    return resize_square(img, spec.size, resize_interpolation(spec.resize, img.shape[0], img.shape[1], spec.size))


def normalize_input(small: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """:func:`model_input`'s image -> float32 3×S×S."""
    from usedge.data.transforms import normalize, to_rgb

    return normalize(to_rgb(small), spec.mean, spec.std)


def resize_square(img: np.ndarray, size: int, interp: int) -> np.ndarray:
    """``cv2.resize(img, (size, size), interpolation=interp)``, the same uint8 pixels, faster where it can be.

    A pure downscale by a non-integer ratio (a 512×400 scan region to 128²) takes OpenCV's generic area path,
    which for uint8 converts every source row to float, accumulates in float and rounds half to even at the end.
    Giving it float32 input does the same arithmetic without the per-row conversion, and ``np.rint`` rounds the
    same way: identical output (tests/runtime/test_preprocess.py), 0.44 instead of 0.58 ms for 512×400 → 128².
    Integer ratios keep OpenCV's integer fast path; upscaling (bilinear, fixed point in uint8) is left alone."""
    h, w = img.shape[:2]
    if interp != cv2.INTER_AREA or h < size or w < size or (h % size == 0 and w % size == 0):
        return cv2.resize(img, (size, size), interpolation=interp)
    out = cv2.resize(img.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.rint(out, out=out).astype(np.uint8)


def preprocess_batch(images: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    return np.stack([preprocess(im, spec) for im in images])
