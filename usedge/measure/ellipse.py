"""Least-squares ellipse fit of an outline (as the HC18 challenge measures the fetal head) and its perimeter.

The outline is the outer contour of a mask's foreground (:meth:`usedge.measure.geometry.Part.outline`); its points
are scaled to millimetres *before* the fit, so non-square pixels give the right ellipse. The fit is OpenCV's direct
least-squares fit (Fitzgibbon, Pilu and Fisher 1999: ``cv2.fitEllipseDirect``). Its quality is the mean relative
radial residual of the outline points (0 for a perfect ellipse); a fit is trusted only when the outline is whole
(the mask does not touch the frame edge) and the residual is small."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: the largest mean relative radial residual a trusted fit may have (a drawn ellipse: < 0.01; a lumpy blob: > 0.05)
MAX_RESIDUAL = 0.04
#: the fewest outline points a fit is made from
MIN_POINTS = 20


@dataclass(frozen=True)
class EllipseFit:
    """Centre (x, y), semi-axes ``a >= b`` and the angle of ``a`` (degrees, from +x towards +y), in the units of
    the points (mm when scaled); ``residual``: mean |r - 1| of the points in the ellipse's own frame."""

    cx: float
    cy: float
    a: float
    b: float
    angle_deg: float
    residual: float
    points: int

    @property
    def perimeter(self) -> float:
        return ramanujan_perimeter(self.a, self.b)


def ramanujan_perimeter(a: float, b: float) -> float:
    """Ramanujan's first approximation of an ellipse's perimeter from its semi-axes (relative error < 1e-4 for
    the eccentricities of heads and abdomens): pi [3(a + b) - sqrt((3a + b)(a + 3b))]."""
    return math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))


def fit_ellipse(points: np.ndarray) -> EllipseFit | None:
    """The least-squares ellipse of N×2 points (None for fewer than MIN_POINTS or a degenerate fit)."""
    if len(points) < MIN_POINTS:
        return None
    (cx, cy), (w, h), angle = cv2.fitEllipseDirect(points.astype(np.float32))
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        return None
    a, b = w / 2.0, h / 2.0
    if b > a:                                   # report the major axis as a, its angle with it
        a, b, angle = b, a, angle + 90.0
    t = math.radians(angle)
    dx, dy = points[:, 0] - cx, points[:, 1] - cy
    u, v = dx * math.cos(t) + dy * math.sin(t), -dx * math.sin(t) + dy * math.cos(t)
    residual = float(np.mean(np.abs(np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0)))
    return EllipseFit(float(cx), float(cy), float(a), float(b), float(angle % 180.0), residual, len(points))
