"""Plane geometry the measurements share, in millimetres (points scaled before anything is measured, so
non-square pixels give the right answer): angles at a vertex, a mask's outline and connected parts, the
longest (Feret) axis of an outline and its extent across that axis."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from usedge.measure.base import Scale


def to_mm(points: np.ndarray, scale: Scale) -> np.ndarray:
    """N×2 (x, y) pixels as N×2 millimetres (px when uncalibrated)."""
    return np.asarray(points, np.float64).reshape(-1, 2) * np.array([scale.sx, scale.sy])


def inside(points: np.ndarray, width: int, height: int) -> bool:
    """Whether every point is finite and within the image (pixel centres 0 .. size - 1)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return bool(np.isfinite(p).all() and (p[:, 0] >= 0).all() and (p[:, 0] <= width - 1).all()
                and (p[:, 1] >= 0).all() and (p[:, 1] <= height - 1).all())


def angle_at(vertex: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The angle a-vertex-b in degrees (0..180)."""
    u, v = np.asarray(a, np.float64) - vertex, np.asarray(b, np.float64) - vertex
    return math.degrees(math.atan2(abs(u[0] * v[1] - u[1] * v[0]), float(u @ v)))


def components(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    """Each 8-connected part of ``mask > 0`` of at least ``min_area`` pixels, as a boolean mask, largest first."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [labels == i for i in order if stats[i, cv2.CC_STAT_AREA] >= min_area]


def outer_outline(mask: np.ndarray) -> np.ndarray:
    """The outer boundary of ``mask > 0`` as N×2 (x, y) pixel *edges* (corners of the boundary pixels), so a
    filled shape's extent is measured edge to edge, as a caliper on the image would be."""
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2), np.float64)
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    return (c[:, None, :] + corners[None]).reshape(-1, 2)


@dataclass(frozen=True)
class Axes:
    """The longest axis of a shape (its two end points and length) and its widest extent perpendicular to it."""

    ends: tuple[tuple[float, float], tuple[float, float]]
    long: float
    short: float
    angle_deg: float          # of the long axis, from +x towards +y (image down), 0..180


def feret_axes(points_mm: np.ndarray) -> Axes | None:
    """The maximum Feret diameter of the points (on their convex hull) and the extent across it."""
    if len(points_mm) < 3:
        return None
    hull = cv2.convexHull(points_mm.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 2:
        return None
    d = np.linalg.norm(hull[:, None, :] - hull[None, :, :], axis=-1)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    long = float(d[i, j])
    if long <= 0:
        return None
    u = (hull[j] - hull[i]) / long
    across = (hull - hull[i]) @ np.array([-u[1], u[0]])
    angle = math.degrees(math.atan2(u[1], u[0])) % 180.0
    return Axes((tuple(hull[i]), tuple(hull[j])), long, float(across.max() - across.min()), angle)
