"""The exact answer to each clinical measurement of a phantom image, from the generator's own geometry (its
polygons, ellipses and points, not the rasterised mask): what ``usedge eval --measure`` and
benchmarks/measure_phantom.py score predictions against. Values are in output pixels (lengths) or degrees
(angles); ``generate_dataset`` converts lengths to mm with the image's scale. Names are those of
``usedge.measure``'s registry."""
from __future__ import annotations

import math

import numpy as np

#: the kind of each truth value: a length (px, converted to mm with the image's scale) or an angle (degrees)
LENGTH, ANGLE = "length", "angle"


def perimeter(poly: np.ndarray) -> float:
    """The length of a closed polygon."""
    p = np.asarray(poly, np.float64)
    return float(np.linalg.norm(np.roll(p, -1, 0) - p, axis=1).sum())


def feret(poly: np.ndarray) -> tuple[float, float]:
    """A polygon's maximum Feret diameter and its widest extent across that diameter."""
    p = np.asarray(poly, np.float64)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    u = (p[j] - p[i]) / d[i, j]
    across = (p - p[i]) @ np.array([-u[1], u[0]])
    return float(d[i, j]), float(across.max() - across.min())


def angle_deg(vertex: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    u, v = np.asarray(a, np.float64) - vertex, np.asarray(b, np.float64) - vertex
    return math.degrees(math.atan2(abs(u[0] * v[1] - u[1] * v[0]), float(u @ v)))


def head(outline: np.ndarray, a: float, b: float) -> dict[str, tuple[float, str]]:
    """HC (the drawn outer skull polygon's perimeter), BPD and OFD (its axes), outer to outer."""
    return {"HC": (perimeter(outline), LENGTH), "BPD": (2.0 * b, LENGTH), "OFD": (2.0 * a, LENGTH)}


def lesion(task: str, poly: np.ndarray) -> dict[str, tuple[float, str]]:
    long, short = feret(poly)
    return {f"{task}.long_axis": (long, LENGTH), f"{task}.short_axis": (short, LENGTH)}
