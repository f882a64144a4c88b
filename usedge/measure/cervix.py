"""Cervical length: from the ``FUGC`` landmarks (internal os to external os, a straight line, as transvaginal
cervical length is usually measured) and from the ``cervix_multi`` masks (the canal is where the anterior and
posterior lips meet: traced along it, and its straight end-to-end length)."""
from __future__ import annotations

import cv2
import numpy as np

from usedge.measure.base import Measurement, Scale, View
from usedge.measure.geometry import edge_inset, grid_step, inside, subsample, to_mm
from usedge.measure.registry import MEASUREMENTS, measurement, value, withheld
from usedge.runtime.results import FrameResult, LandmarkResult, SegmentationResult

CL_SOURCE = ("Kagan & Sonek, How to measure cervical length (UOG 2015): straight line from the internal to the "
             "external os; traced where the canal is curved")
#: the fewest canal pixels (lip-on-lip boundary) a traced length is computed from
MIN_CANAL = 10
#: the cervix is measured on a frame ``fetal_plane_cls`` calls the maternal cervix (among all its classes)
CERVIX_VIEW = View("fetal_plane_cls", "maternal_cervix")


@measurement("CL", ("FUGC",), "mm", "straight distance internal os - external os (FUGC landmarks)", CL_SOURCE,
             view=CERVIX_VIEW)
def cervical_length(result: FrameResult, scale: Scale, **_) -> Measurement:
    spec = MEASUREMENTS.get("CL").spec
    r = result.tasks.get("FUGC")
    if not isinstance(r, LandmarkResult) or len(r.points) != 2:
        return withheld(spec, scale, "no FUGC landmarks in this result")
    if not inside(r.points, result.width, result.height):
        return withheld(spec, scale, "an os landmark lies outside the image")
    p = to_mm(r.points, scale)
    return value(spec, scale, float(np.linalg.norm(p[0] - p[1])))


def canal(mask: np.ndarray) -> np.ndarray:
    """The pixels where the anterior lip (1) touches the posterior lip (2), as N×2 (x, y) frame pixels (found on
    the measurement grid), ordered along the canal's principal direction (empty when the lips do not meet)."""
    step = grid_step(mask.shape)
    grid = subsample(mask, step)
    x, y, w, h = cv2.boundingRect((grid > 0).astype(np.uint8))
    grid = grid[y:y + h, x:x + w]
    a, b = grid == 1, grid == 2
    near_b = np.zeros_like(b)
    near_b[1:] |= b[:-1]
    near_b[:-1] |= b[1:]
    near_b[:, 1:] |= b[:, :-1]
    near_b[:, :-1] |= b[:, 1:]
    ys, xs = np.nonzero(a & near_b)
    if len(xs) == 0:
        return np.zeros((0, 2), np.float64)
    p = (np.stack([xs, ys], 1).astype(np.float64) + [x, y]) * step
    centred = p - p.mean(0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    return p[np.argsort(centred @ direction)]


def _traced(points_mm: np.ndarray, step: int) -> float:
    """The length of the polyline through every ``step``-th point (the ends always included)."""
    idx = np.unique(np.r_[np.arange(0, len(points_mm), step), len(points_mm) - 1])
    return float(np.linalg.norm(np.diff(points_mm[idx], axis=0), axis=1).sum())


@measurement("CL_mask", ("cervix_multi",), "mm",
             "the canal where the anterior and posterior lips meet, end to end (cervix_multi masks); the traced "
             "length along it in detail", CL_SOURCE, view=CERVIX_VIEW)
def cervical_length_masks(result: FrameResult, scale: Scale, **_) -> Measurement:
    spec = MEASUREMENTS.get("CL_mask").spec
    r = result.tasks.get("cervix_multi")
    if not isinstance(r, SegmentationResult):
        return withheld(spec, scale, "no cervix_multi segmentation in this result")
    px = canal(r.mask)
    step = grid_step(r.mask.shape)
    if len(px) * step < MIN_CANAL:
        return withheld(spec, scale, "the anterior and posterior lips do not meet: no canal to measure")
    ends = px[-1] - px[0]
    reach = edge_inset(step) * ends / max(float(np.linalg.norm(ends)), 1e-9)
    px = np.concatenate([[px[0] - reach], px, [px[-1] + reach]])  # the end cells' centres -> the canal's ends
    p = to_mm(px, scale)
    straight = float(np.linalg.norm(p[-1] - p[0]))
    traced = _traced(p, max(1, len(p) // 8))
    return value(spec, scale, straight, traced=round(traced, 3), canal_px=len(px))
