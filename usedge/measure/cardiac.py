"""Left-ventricular size on an apical view (``cardiac_multi``: 1 LV cavity, 2 LV myocardium, 3 left atrium), per
frame: the cavity's area, its length from the apex to the middle of the mitral plane, and the single-plane
area-length volume 8 A^2 / (3 pi L). Over a cine, :func:`ejection_fraction` takes the largest and the smallest of
those volumes as end-diastole and end-systole. Single-plane: it assumes the ventricle is a prolate ellipsoid seen
along its long axis; a biplane (apical 4- and 2-chamber) volume is the guideline's method, and this is not it.

The mitral plane is where the cavity meets the left atrium: the cavity's outline points nearest the atrium (within
2 px of the nearest); its middle is their mean, and the apex is the outline point farthest from it."""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from usedge.measure.base import Measurement, Scale, View
from usedge.measure.geometry import components, extent_mm, memo, to_mm
from usedge.measure.registry import MEASUREMENTS, measurement, value, withheld
from usedge.measure.views import ORGAN_MIN_P
from usedge.runtime.results import FrameResult, SegmentationResult

LV_SOURCE = ("Lang et al., Recommendations for cardiac chamber quantification by echocardiography (ASE/EACVI, JASE "
             "2015): area-length method, V = 8 A^2 / (3 pi L)")
MIN_PIXELS = 50
#: how far (px) from the atrium the cavity's outline may be and still count as the mitral plane
PLANE_BAND = 2.0
#: the frame must show a heart (``organ_cls``, when the result holds it): the cardiac_multi head outlines a
#: "ventricle" in any frame, a thyroid's or a lung's included
HEART_VIEW = View("organ_cls", "heart", min_p=ORGAN_MIN_P)


def _lv(result: FrameResult, scale: Scale, options: dict) -> tuple[dict | None, str | None]:
    """The LV cavity's area and length (mm), or (None, why it is withheld); once per frame."""
    return memo(options, ("lv", scale), lambda: _measure_lv(result, scale))


def _measure_lv(result: FrameResult, scale: Scale) -> tuple[dict | None, str | None]:
    r = result.tasks.get("cardiac_multi")
    if not isinstance(r, SegmentationResult):
        return None, "no cardiac_multi segmentation in this result"
    mask = r.mask
    parts = components(mask, MIN_PIXELS, value=1)
    atrium = components(mask, MIN_PIXELS, value=3)
    if not parts:
        return None, "no LV cavity segmented"
    if not atrium:
        return None, "no left atrium segmented: the mitral plane is not known"
    cavity, la = parts[0], atrium[0]
    if cavity.touches_edge:
        return None, "the LV cavity touches the image edge (cut off)"
    edge = cavity.outline()
    d = _distance_to(la, edge)
    if d.min() > 0.15 * max(mask.shape):
        return None, "the left atrium does not border the LV cavity: the mitral plane is not known"
    plane = edge[d <= d.min() + PLANE_BAND * cavity.step]
    mm = to_mm(edge, scale)
    base = to_mm(plane, scale).mean(0)
    far = mm - base
    apex = int(np.argmax(np.linalg.norm(far, axis=1)))
    length = float(np.linalg.norm(far[apex]))
    towards = far[apex] / np.array([scale.sx, scale.sy])           # the apex's direction in frame px
    length += extent_mm(towards / max(float(np.linalg.norm(towards)), 1e-9), cavity.inset, scale)   # to its edge
    return {"area": cavity.area * scale.sx * scale.sy, "length": length, "plane_points": len(plane)}, None


def _distance_to(part, points: np.ndarray) -> np.ndarray:
    """Each point's (frame px) distance in frame px to the nearest cell of ``part``, from a distance transform
    of the grid box that holds both (not of the whole frame)."""
    g = points / part.step
    lo = np.floor(np.minimum(g.min(0), [part.x0, part.y0])).astype(int) - 2
    hi = np.ceil(np.maximum(g.max(0), [part.x0 + part.mask.shape[1], part.y0 + part.mask.shape[0]])).astype(int) + 2
    w, h = hi - lo
    inside = np.zeros((h, w), np.uint8)
    oy, ox = part.y0 - lo[1], part.x0 - lo[0]
    inside[oy:oy + part.mask.shape[0], ox:ox + part.mask.shape[1]] = part.mask
    away = cv2.distanceTransform((inside == 0).astype(np.uint8), cv2.DIST_L2, 5)
    xi = np.clip(np.round(g[:, 0] - lo[0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(g[:, 1] - lo[1]).astype(int), 0, h - 1)
    return away[yi, xi] * part.step


@measurement("LV_area", ("cardiac_multi",), "mm2", "LV cavity area (pixel count)", LV_SOURCE, length=False,
             view=HEART_VIEW)
def lv_area(result: FrameResult, scale: Scale, **options) -> Measurement:
    spec = MEASUREMENTS.get("LV_area").spec
    lv, why = _lv(result, scale, options)
    if lv is None:
        return withheld(spec, scale, why)
    return value(spec, scale, lv["area"])


@measurement("LV_length", ("cardiac_multi",), "mm", "apex to the middle of the mitral plane", LV_SOURCE,
             view=HEART_VIEW)
def lv_length(result: FrameResult, scale: Scale, **options) -> Measurement:
    spec = MEASUREMENTS.get("LV_length").spec
    lv, why = _lv(result, scale, options)
    return withheld(spec, scale, why) if lv is None else value(spec, scale, lv["length"])


@measurement("LV_volume", ("cardiac_multi",), "ml", "single-plane area-length volume 8 A^2 / (3 pi L)", LV_SOURCE,
             length=False, view=HEART_VIEW)
def lv_volume(result: FrameResult, scale: Scale, **options) -> Measurement:
    spec = MEASUREMENTS.get("LV_volume").spec
    if not scale.calibrated:
        return withheld(spec, scale, "a volume needs a calibrated frame (mm per pixel)")
    lv, why = _lv(result, scale, options)
    if lv is None:
        return withheld(spec, scale, why)
    return value(spec, scale, area_length_volume(lv["area"], lv["length"]), single_plane=True)


def area_length_volume(area_mm2: float, length_mm: float) -> float:
    """Single-plane area-length volume in ml from an area in mm^2 and a length in mm."""
    return 8.0 * area_mm2 ** 2 / (3.0 * math.pi * length_mm) / 1000.0


def ejection_fraction(volumes_ml: Sequence[float | None], min_frames: int = 10) -> Measurement:
    """Single-plane EF over a cine's per-frame LV volumes (None: withheld frames): (EDV - ESV) / EDV, end-diastole
    the largest and end-systole the smallest volume. The frames must cover at least one whole beat."""
    idx = [i for i, v in enumerate(volumes_ml) if v is not None and math.isfinite(v) and v > 0]
    if len(idx) < min_frames:
        return Measurement("LV_EF", None, "%", f"{len(idx)} frames with an LV volume; at least {min_frames} (one "
                                               "whole beat) are needed")
    vols = np.array([volumes_ml[i] for i in idx], np.float64)
    ed, es = idx[int(np.argmax(vols))], idx[int(np.argmin(vols))]
    edv, esv = float(vols.max()), float(vols.min())
    return Measurement("LV_EF", 100.0 * (edv - esv) / edv, "%", None,
                       {"EDV_ml": round(edv, 2), "ESV_ml": round(esv, 2), "ED_frame": ed, "ES_frame": es,
                        "frames": len(idx), "single_plane": True})
