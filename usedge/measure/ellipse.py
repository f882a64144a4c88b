"""Least-squares ellipse fit of an outline (as the HC18 challenge measures the fetal head) and its perimeter.

The outline is the outer contour of a mask's foreground (:meth:`usedge.measure.geometry.Part.outline`); its points
are scaled to millimetres *before* the fit, so non-square pixels give the right ellipse. The fit is OpenCV's direct
least-squares fit (Fitzgibbon, Pilu and Fisher 1999: ``cv2.fitEllipseDirect``). Its quality is the mean relative
radial residual of the outline points (0 for a perfect ellipse); a fit is trusted only when the outline is whole
(the mask does not touch the frame edge) and the residual is small.

A predicted mask is rarely an ellipse all round: an acoustic shadow or the spine bites into the abdomen, a
neighbouring structure leaks out of it. :func:`fit_ellipse_robust` fits the points that agree with an ellipse, as a
sonographer places the ellipse on the visible skin line and ignores the shadow, and says how much of the
circumference they cover (``coverage``): the measurement is withheld when too little of it is seen."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

#: the largest mean relative radial residual a trusted fit may have (a drawn ellipse: < 0.01; a lumpy blob: > 0.05)
MAX_RESIDUAL = 0.04
#: the fewest outline points a fit is made from
MIN_POINTS = 20
#: robust fit: points farther than this relative radial distance from the ellipse (or 2.5 robust standard
#: deviations of the inliers' distances, whichever is larger) are outliers; at most TRIM_ROUNDS refits
INLIER_TOLERANCE = 0.03
TRIM_ROUNDS = 6
#: robust fit: the ellipse's circumference is cut into this many equal sectors of its parametric angle;
#: ``coverage`` is the share of them holding an inlier
SECTORS = 36
#: the least ``coverage`` a trusted robust fit has: an ellipse through a smaller arc of the outline is a guess
MIN_COVERAGE = 0.7


@dataclass(frozen=True)
class EllipseFit:
    """Centre (x, y), semi-axes ``a >= b`` and the angle of ``a`` (degrees, from +x towards +y), in the units of
    the points (mm when scaled); ``residual``: mean |r - 1| of the points (a robust fit: of its inliers) in the
    ellipse's own frame; ``inliers``: the share of the points fitted; ``coverage``: the share of the circumference
    they cover (1 for a plain fit)."""

    cx: float
    cy: float
    a: float
    b: float
    angle_deg: float
    residual: float
    points: int
    inliers: float = 1.0
    coverage: float = 1.0

    @property
    def perimeter(self) -> float:
        return ramanujan_perimeter(self.a, self.b)


def ramanujan_perimeter(a: float, b: float) -> float:
    """Ramanujan's first approximation of an ellipse's perimeter from its semi-axes (relative error < 1e-4 for
    the eccentricities of heads and abdomens): pi [3(a + b) - sqrt((3a + b)(a + 3b))]."""
    return math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))


def fit_ellipse(points: np.ndarray) -> EllipseFit | None:
    """The least-squares ellipse of N×2 points (None for fewer than MIN_POINTS or a degenerate fit)."""
    fit = _direct(points.astype(np.float32))
    if fit is None:
        return None
    r, _ = _polar(fit, points)
    return replace(fit, residual=float(np.mean(np.abs(r - 1.0))))


def _direct(points: np.ndarray) -> EllipseFit | None:
    """:func:`fit_ellipse` of float32 points without its residual (0)."""
    raw = _raw(points)
    return None if raw is None else EllipseFit(*raw, 0.0, len(points))


def fit_ellipse_robust(points: np.ndarray) -> EllipseFit | None:
    """The least-squares ellipse of the N×2 points that agree with one: fit all, keep the points within
    max(INLIER_TOLERANCE, 2.5 robust standard deviations) of the ellipse (relative radial distance), refit on them,
    until the kept set or the ellipse stops changing (at most TRIM_ROUNDS times). None as :func:`fit_ellipse`.
    The result's ``residual`` is the inliers', ``inliers`` their share of the points, ``coverage`` the share of
    SECTORS equal sectors of the ellipse's parametric angle they reach.

    Written for a stream's per-frame budget (benchmarks/bench_measure.py): the rounds work on float32 coordinate
    columns and raw (centre, axes, angle) tuples; only the answer becomes an EllipseFit."""
    pts = np.ascontiguousarray(points, np.float32)
    fit = _raw(pts)
    if fit is None:
        return None
    x, y = pts[:, 0].copy(), pts[:, 1].copy()
    keep = None                                 # None: every point
    for _ in range(TRIM_ROUNDS):
        dist = np.abs(_radius(fit, x, y) - 1.0)
        kept = dist if keep is None else dist[keep]
        half = len(kept) // 2
        median = float(np.partition(kept, half)[half])   # the (upper) median, without np.median's overhead
        new = dist < max(INLIER_TOLERANCE, 2.5 * 1.4826 * median)
        count = int(np.count_nonzero(new))
        if count < MIN_POINTS or (count == len(pts) if keep is None else not np.any(new ^ keep)):
            break
        refit = _raw(pts[new])
        if refit is None:
            break
        moved = abs(refit[2] - fit[2]) + abs(refit[3] - fit[3]) + math.hypot(refit[0] - fit[0], refit[1] - fit[1])
        fit, keep = refit, new
        if moved < 1e-3 * fit[3]:         # settled: another round would move it by less than a thousandth
            break
    sel = np.asarray(points) if keep is None else np.asarray(points)[keep]
    result = EllipseFit(*fit, 0.0, len(sel))
    r, phase = _polar(result, sel)
    sectors = np.zeros(SECTORS, bool)
    sectors[((phase + math.pi) * (SECTORS / (2 * math.pi))).astype(np.int64) % SECTORS] = True
    return replace(result, residual=float(np.mean(np.abs(r - 1.0))), points=len(points),
                   inliers=len(sel) / len(pts), coverage=int(sectors.sum()) / SECTORS)


def _raw(points: np.ndarray) -> tuple[float, float, float, float, float] | None:
    """(cx, cy, a, b, angle_deg) of float32 points' direct least-squares ellipse, a >= b; None for fewer than
    MIN_POINTS points or a degenerate fit."""
    if len(points) < MIN_POINTS:
        return None
    (cx, cy), (w, h), angle = cv2.fitEllipseDirect(points)
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        return None
    a, b = w / 2.0, h / 2.0
    if b > a:                                   # report the major axis as a, its angle with it
        a, b, angle = b, a, angle + 90.0
    return float(cx), float(cy), float(a), float(b), float(angle % 180.0)


def _radius(fit: tuple[float, float, float, float, float], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each point's relative radius (1 on the ellipse ``fit``, a :func:`_raw` tuple)."""
    cx, cy, a, b, angle = fit
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    dx, dy = x - np.float32(cx), y - np.float32(cy)
    u = dx * np.float32(c / a) + dy * np.float32(s / a)
    v = dy * np.float32(c / b) - dx * np.float32(s / b)
    return np.hypot(u, v)


def _polar(fit: EllipseFit, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each point's relative radius (1 on the ellipse) and parametric angle, in the ellipse's frame."""
    t = math.radians(fit.angle_deg)
    c, s = math.cos(t), math.sin(t)
    dx, dy = points[:, 0] - fit.cx, points[:, 1] - fit.cy
    u = (dx * c + dy * s) * (1.0 / fit.a)
    v = (dy * c - dx * s) * (1.0 / fit.b)
    return np.sqrt(u * u + v * v), np.arctan2(v, u)
