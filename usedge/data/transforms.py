"""Preprocessing and label-true augmentation (numpy + OpenCV, no torch).

One affine matrix moves the image, the mask (nearest), the box corners and the points together. What a
geometric transform does to each task's label is declared in ONE place, :data:`AUGMENT_POLICY` (read through
:func:`task_policy`), and applied by :func:`augment`:

- orientation classes (occiput / sacrum direction in 8 clock sectors): a horizontal flip remaps the class
  (left_anterior <-> right_anterior, ...); rotation is off (a rotated sector boundary would change the class);
- fetal_femur's two ends are ordered left to right: they are re-sorted after the transform;
- detection boxes: no rotation (the box of a rotated box is not the object's tight box);
- every other label is anatomical (named points, masks, classes): it moves with the image unchanged.

A transform that would push a landmark or box out of the frame is dropped for that sample (the label would
be clipped, i.e. wrong); the image is then used unmoved.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from usedge.errors import ConfigError, DataError
from usedge.tasks import TaskKind, TaskSpec

#: Tasks whose class is a direction in the image (8 clock sectors, 0 = anterior = up, clockwise).
ORIENTATION_TASKS = frozenset({"fetal_head_pos_cls", "fetal_sacral_pos_cls"})

#: Clock sector k seen in a horizontal mirror: the direction's angle from 'up' changes sign.
CLOCK_FLIP = tuple((8 - k) % 8 for k in range(8))


@dataclass(frozen=True)
class TaskAugment:
    """How geometric augmentation keeps one task's label true.

    Attributes:
        flip: horizontal flips allowed.
        rotate: rotations allowed.
        flip_classes: class ``c`` becomes ``flip_classes[c]`` under a flip (None: the class is unchanged).
        point_order: ``anatomical`` (points keep their names through any transform) or ``left_to_right``
            (the task defines its points by image x: re-sorted after the transform).
    """

    flip: bool = True
    rotate: bool = True
    flip_classes: tuple[int, ...] | None = None
    point_order: str = "anatomical"


#: The per-task exceptions; every task not named here uses :func:`task_policy`'s default for its kind.
AUGMENT_POLICY: dict[str, TaskAugment] = {
    "fetal_head_pos_cls": TaskAugment(rotate=False, flip_classes=CLOCK_FLIP),
    "fetal_sacral_pos_cls": TaskAugment(rotate=False, flip_classes=CLOCK_FLIP),
    "fetal_femur": TaskAugment(point_order="left_to_right"),
}


def task_policy(spec: TaskSpec) -> TaskAugment:
    """The augmentation policy of one task (detection: no rotation; the rest as declared or free)."""
    if spec.id in AUGMENT_POLICY:
        return AUGMENT_POLICY[spec.id]
    if spec.kind is TaskKind.DETECTION:
        return TaskAugment(rotate=False)
    return TaskAugment()


def to_gray_or_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """Bring any stored image (uint8/uint16, 1/3/4 channels) to uint8 H×W or H×W×3 BGR.

    uint16 maps to ``floor(x / 257)`` (65535 -> 255), divided straight into the uint8 result: no temporary
    array, where ``x / 257.0`` made a float64 copy (512 MB for an 8192² frame)."""
    if image.dtype == np.uint16:
        image = np.floor_divide(image, 257, out=np.empty(image.shape, np.uint8), casting="unsafe")
    elif image.dtype != np.uint8:
        raise DataError(f"unsupported image dtype {image.dtype}; expected uint8 or uint16.")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return image


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 H×W or H×W×3 BGR -> H×W×3 RGB."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@functools.lru_cache(maxsize=8)
def _normalize_lut(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    levels = np.arange(256, dtype=np.float32)[None, :] * np.float32(1.0 / 255.0)
    return (levels - np.asarray(mean, np.float32)[:, None]) / np.asarray(std, np.float32)[:, None]


def normalize(rgb: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """uint8 H×W×3 RGB -> float32 3×H×W, (x/255 - mean) / std.

    A 256-entry lookup per channel (same float32 arithmetic, precomputed): about 4× faster than the
    element-wise formula at 256² on the workplace CPU; that matters for the live Predictor.
    """
    if rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3:
        lut = _normalize_lut(tuple(float(m) for m in mean), tuple(float(s) for s in std))
        out = np.empty((3,) + rgb.shape[:2], np.float32)
        for c in range(3):
            np.take(lut[c], rgb[..., c], out=out[c])
        return out
    x = rgb.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges (all applied with probability ``p`` each)."""

    p: float = 0.5
    hflip: bool = True
    max_rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    max_shift: float = 0.05
    brightness: float = 0.15
    contrast: float = 0.2
    gamma: tuple[float, float] = (0.8, 1.25)
    ultrasound: float = 0.0     # probability of the ultrasound artefact stage (:func:`ultrasound_artifacts`)


def random_affine(rng: np.random.Generator, size: int, cfg: AugmentConfig, geometric: bool,
                  policy: TaskAugment = TaskAugment()) -> np.ndarray:
    """A 2×3 affine on a size×size image: optional flip, rotation, scale, shift about the centre.

    A flip shows as a negative determinant of the 2×2 part (:func:`is_flip`)."""
    m = np.eye(3)
    if not geometric:
        return m[:2]
    c = size / 2.0
    if cfg.hflip and policy.flip and rng.random() < cfg.p:
        m = np.array([[-1, 0, size], [0, 1, 0], [0, 0, 1]], float) @ m
    if rng.random() < cfg.p:
        angle = rng.uniform(-cfg.max_rotate_deg, cfg.max_rotate_deg) if policy.rotate else 0.0
        scale = rng.uniform(*cfg.scale)
        r = np.vstack([cv2.getRotationMatrix2D((c, c), angle, scale), [0, 0, 1]])
        m = r @ m
    if rng.random() < cfg.p:
        t = rng.uniform(-cfg.max_shift, cfg.max_shift, 2) * size
        m = np.array([[1, 0, t[0]], [0, 1, t[1]], [0, 0, 1]]) @ m
    return m[:2]


def is_flip(m: np.ndarray) -> bool:
    """Whether a 2×3 affine mirrors the image (negative determinant)."""
    return float(np.linalg.det(np.asarray(m, float)[:, :2])) < 0


def apply_affine(m: np.ndarray, image: np.ndarray, label: object, spec: TaskSpec, size: int) -> tuple[np.ndarray, object]:
    """Warp image and label together, keeping the label true (:func:`task_policy`): flipped orientation
    classes are remapped, left-to-right points re-sorted; boxes become the box of their moved corners."""
    if np.allclose(m, np.eye(3)[:2]):
        return image, label
    image = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    policy = task_policy(spec)
    if spec.kind is TaskKind.SEGMENTATION:
        return image, cv2.warpAffine(label, m, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    if spec.kind is TaskKind.DETECTION:
        x0, y0, x1, y1 = label
        pts = _move(m, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], float))
        lo, hi = np.clip(pts.min(0), 0, size), np.clip(pts.max(0), 0, size)
        return image, (lo[0], lo[1], hi[0], hi[1])
    if spec.kind is TaskKind.REGRESSION:
        pts = _move(m, np.asarray(label, float))
        if policy.point_order == "left_to_right":
            pts = pts[np.argsort(pts[:, 0], kind="stable")]
        return image, tuple(map(tuple, np.clip(pts, 0, size)))
    if policy.flip_classes is not None and is_flip(m):
        return image, policy.flip_classes[int(label)]  # type: ignore[call-overload]
    return image, label


def stays_inside(m: np.ndarray, label: object, spec: TaskSpec, size: int) -> bool:
    """Whether the transform keeps every landmark / box corner inside the frame (so no clipping)."""
    if spec.kind is TaskKind.DETECTION:
        x0, y0, x1, y1 = label  # type: ignore[misc]
        pts = np.array([[x0, y0], [x1, y1], [x0, y1], [x1, y0]], float)
    elif spec.kind is TaskKind.REGRESSION:
        pts = np.asarray(label, float)
    else:
        return True
    moved = _move(m, pts)
    return bool(np.all((moved >= 0) & (moved <= size)))


def augment(rng: np.random.Generator, image: np.ndarray, label: object, spec: TaskSpec, size: int,
            cfg: AugmentConfig) -> tuple[np.ndarray, object]:
    """The training augmentation of one size×size sample: a random affine allowed by the task's policy
    (dropped if it would push a landmark or box out of the frame), then photometric jitter."""
    m = random_affine(rng, size, cfg, geometric=True, policy=task_policy(spec))
    if stays_inside(m, label, spec, size):
        image, label = apply_affine(m, image, label, spec, size)
    image = photometric(rng, image, cfg)
    if cfg.ultrasound > 0 and rng.random() < cfg.ultrasound:
        image = ultrasound_artifacts(rng, image)
    return image, label


def _move(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def photometric(rng: np.random.Generator, image: np.ndarray, cfg: AugmentConfig) -> np.ndarray:
    """Gain, contrast and gamma jitter (ultrasound gain / dynamic-range changes)."""
    if rng.random() >= cfg.p:
        return image
    x = image.astype(np.float32) / 255.0
    x = (x - 0.5) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + 0.5 + rng.uniform(-cfg.brightness, cfg.brightness)
    x = np.clip(x, 0, 1) ** rng.uniform(*cfg.gamma)
    return (x * 255.0 + 0.5).astype(np.uint8)


def ultrasound_artifacts(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """What real scanners add that a clean B-mode image lacks, each with probability 1/2 (at least one), inside
    the scan area only (label-true: intensities change, geometry does not):

    - depth attenuation (weak TGC): brightness × exp(-a · depth), a ∈ [0, 1.2];
    - electronic noise rising with depth: Gaussian, σ up to 22 grey levels at the bottom;
    - acoustic shadows: one or two darkened bands (× 0.15-0.6) below a random depth, soft-edged;
    - haze (near-field reverberation / clutter): a veil of up to 55 grey levels fading with depth;
    - coarser speckle (a lower frequency, a broader PSF): Gaussian blur, σ 0.3-1.0 px.
    """
    x = image.astype(np.float32)
    h, w = x.shape[:2]
    lit = (image if image.ndim == 2 else image.max(axis=2)) > 0
    inside = lit | (cv2.blur(lit.astype(np.float32), (3, 3)) > 0.99)  # a black speckle grain inside counts
    depth = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    gain = np.ones((h, w), np.float32)
    add = np.zeros((h, w), np.float32)
    on = rng.random(5) < 0.5
    if not on.any():
        on[rng.integers(5)] = True
    if on[0]:
        gain *= np.exp(-rng.uniform(0.0, 1.2) * depth)
    if on[1]:
        gain *= _shadows(rng, h, w)
    if on[2]:
        add += rng.uniform(10.0, 55.0) * np.exp(-depth / rng.uniform(0.08, 0.35))
    if on[3]:
        add += rng.normal(0.0, 1.0, (h, w)).astype(np.float32) * rng.uniform(4.0, 22.0) * depth
    x = x * (gain if x.ndim == 2 else gain[..., None]) + (add if x.ndim == 2 else add[..., None])
    if on[4]:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.3, 1.0)))
    x = np.where(inside if x.ndim == 2 else inside[..., None], x, image.astype(np.float32))
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def _shadows(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One or two soft acoustic shadows: a multiplicative map, 1 outside them."""
    out = np.ones((h, w), np.float32)
    for _ in range(int(rng.integers(1, 3))):
        band = np.zeros((h, w), np.float32)
        cx, half = rng.uniform(0.1, 0.9) * w, rng.uniform(0.03, 0.1) * w
        top = int(rng.uniform(0.15, 0.7) * h)
        band[top:, max(0, int(cx - half)):min(w, int(cx + half) + 1)] = 1.0
        band = cv2.GaussianBlur(band, (0, 0), max(1.0, 0.02 * w))
        out *= 1.0 - band * rng.uniform(0.4, 0.85)
    return out


#: How an image is resized to the square network input (a model's declared ``resize``):
#: ``area``: INTER_AREA when shrinking, INTER_LINEAR when enlarging (usedge's students);
#: ``bilinear``: INTER_LINEAR always (the official FMC-UIA baseline's ``A.Resize``).
RESIZE_MODES = ("area", "bilinear")


def resize_interpolation(mode: str, height: int, width: int, size: int) -> int:
    """The OpenCV interpolation flag of resize ``mode`` for an height × width image going to size²."""
    if mode not in RESIZE_MODES:
        raise ConfigError(f"unknown resize mode {mode!r}.", fix=f"use one of: {', '.join(RESIZE_MODES)}")
    if mode == "area" and (width > size or height > size):
        return cv2.INTER_AREA
    return cv2.INTER_LINEAR


def resize_sample(image: np.ndarray, label: object, spec: TaskSpec, size: int,
                  resize: str = "area") -> tuple[np.ndarray, object]:
    """Resize image (``resize`` mode, see :data:`RESIZE_MODES`) and label (nearest mask; scaled box / points)
    to size×size."""
    h, w = image.shape[:2]
    sx, sy = size / w, size / h
    out = cv2.resize(image, (size, size), interpolation=resize_interpolation(resize, h, w, size))
    if spec.kind is TaskKind.SEGMENTATION:
        return out, cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST)
    if spec.kind is TaskKind.DETECTION:
        x0, y0, x1, y1 = label
        return out, (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
    if spec.kind is TaskKind.REGRESSION:
        return out, tuple((x * sx, y * sy) for x, y in label)
    return out, label
