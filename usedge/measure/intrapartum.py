"""Intrapartum (transperineal) measurements: the angle of progression and the head-symphysis distance, from the
``IUGC`` landmarks and from the ``head_symphysis_multi`` masks, and how far the two angles agree.

Angle of progression (AoP), as the FH-PS-AOP (MICCAI 2023) and IUGC challenges define it: the angle between the
long axis of the pubic symphysis (from its upper to its lower end) and the line from the symphysis' lower end
tangent to the fetal skull contour, measured at the lower end (obtuse in labour: larger as the head descends).
From landmarks: the angle upper - lower - head_tangent. From masks: the symphysis' long axis (the major axis
of the robust least-squares ellipse of its outline; the end nearer the top of the image is the upper one) and the
tangent from its lower end to the skull's leading edge (of the two tangents, the one farther round from the
symphysis) on the robust least-squares ellipse of the head's outline, as a sonographer places the skull's ellipse
and the tangent on it. The ellipse, not the outline itself: the tangent touches the outline at one point, where a
mask's one-cell bump turns the line by degrees; the ellipse is fixed by the whole outline (tuning seeds 5001/5002,
packaged default: mean error 6.20 -> 5.80 deg, 8.0 -> 7.5 % withheld, docs/measure.md). A skull whose outline is no
ellipse (its robust fit too far from it) is used as outlined, and the answer says which (``detail["skull"]``).

Head-symphysis distance (HSD, Youssef et al. 2013): along the infrapubic line (through the symphysis' lower end,
perpendicular to its long axis) from that end to the fetal head outline. Masks only: the IUGC landmarks carry one
point of the skull (the tangent point), not its outline."""
from __future__ import annotations

import math

import cv2
import numpy as np

from usedge.measure.base import Measurement, Scale
from usedge.measure.ellipse import MIN_COVERAGE, EllipseFit, fit_ellipse_robust
from usedge.measure.geometry import angle_at, inside, memo, part_of, to_mm
from usedge.measure.registry import MEASUREMENTS, measurement, value, withheld
from usedge.runtime.results import FrameResult, LandmarkResult, SegmentationResult

AOP_SOURCE = ("Ghi et al., ISUOG Practice Guidelines: intrapartum ultrasound (UOG 2018); FH-PS-AOP challenge "
              "(Bai et al., MICCAI 2023); IUGC challenge landmarks")
HSD_SOURCE = ("Youssef et al., Fetal head-symphysis distance: a simple and reliable ultrasound index of fetal head "
              "station in labor (UOG 2013;41:419-424)")
#: the shortest symphysis (mm, or px uncalibrated) whose axis is trusted: below it the end points are noise
MIN_SYMPHYSIS = 5.0
#: the largest mean radial residual of the symphysis' ellipse fit whose long axis is trusted (drawn ovals: < 0.02)
MAX_SYMPHYSIS_RESIDUAL = 0.1
#: how many degrees more the leading-edge tangent must make with the symphysis axis than the other tangent: below it
#: a one-pixel change of the masks can swap them, and the angle by tens of degrees
MIN_TANGENT_GAP = 5.0
#: the fewest pixels of each structure a mask-based answer is computed from
MIN_PIXELS = 30
#: how many points the skull's ellipse is sampled at for the tangents (0.5 deg apart)
ELLIPSE_POINTS = 720
#: the largest mean radial residual of the skull's robust ellipse that the tangents are taken on (else the outline).
#: Looser than the HC's 0.04: transperineal heads are segmented lumpier, and a lumpy outline's ellipse still fixes
#: the tangent better than the outline's one touching cell (tuning seeds: 0.04 -> 5.95 deg, 0.08 -> 5.80)
SKULL_MAX_RESIDUAL = 0.08


def _landmarks(result: FrameResult, scale: Scale) -> tuple[np.ndarray | None, str | None]:
    r = result.tasks.get("IUGC")
    if not isinstance(r, LandmarkResult) or len(r.points) != 3:
        return None, "no IUGC landmarks in this result"
    if not inside(r.points, result.width, result.height):
        return None, "an IUGC landmark lies outside the image"
    p = to_mm(r.points, scale)
    if np.linalg.norm(p[0] - p[1]) < MIN_SYMPHYSIS:
        return None, f"the symphysis end points are closer than {MIN_SYMPHYSIS:g} {scale.length_unit}"
    if np.linalg.norm(p[2] - p[1]) < MIN_SYMPHYSIS:
        return None, "the head tangent point lies on the symphysis' lower end: no tangent line"
    return p, None


def _masks(result: FrameResult, scale: Scale, options: dict):
    """(upper, lower, head outline) in mm from the head_symphysis_multi masks, or (None, why); once per frame."""
    return memo(options, ("intrapartum", scale), lambda: _from_masks(result, scale))


def _from_masks(result: FrameResult, scale: Scale) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                     str] | None, str | None]:
    """(upper end, lower end, head outline, the skull the tangents touch, "ellipse" / "outline": what that skull
    is), all in mm, or (None, why)."""
    r = result.tasks.get("head_symphysis_multi")
    if not isinstance(r, SegmentationResult):
        return None, "no head_symphysis_multi segmentation in this result"
    sym, head = part_of(r.mask, 1), part_of(r.mask, 2)
    if sym is None or head is None or sym.area < MIN_PIXELS or head.area < MIN_PIXELS:
        return None, "the symphysis or the fetal head is not segmented"
    if sym.touches_edge:
        return None, "the symphysis touches the image edge (its lower end may be cut off)"
    fit = fit_ellipse_robust(to_mm(sym.outline(), scale))
    if fit is None or 2 * fit.a < MIN_SYMPHYSIS:
        return None, f"the symphysis is shorter than {MIN_SYMPHYSIS:g} {scale.length_unit}"
    if fit.residual > MAX_SYMPHYSIS_RESIDUAL or fit.coverage < MIN_COVERAGE:
        return None, (f"the symphysis outline is not an oval (mean radial residual {fit.residual:.3f}, limit "
                      f"{MAX_SYMPHYSIS_RESIDUAL}; {fit.coverage:.0%} of it on the ellipse, limit {MIN_COVERAGE:.0%}): "
                      "its long axis is not trustworthy")
    t = math.radians(fit.angle_deg)
    half = fit.a + sym.inset * 0.5 * (scale.sx + scale.sy)      # to the edge, not the boundary cells' centres
    ends = np.array([[fit.cx, fit.cy]]) + np.array([[-1.0], [1.0]]) * half * np.array([math.cos(t), math.sin(t)])
    upper, lower = (ends if ends[0, 1] <= ends[1, 1] else ends[::-1])
    outline = to_mm(head.outline(), scale)
    skull, source = _skull(outline, head.inset * 0.5 * (scale.sx + scale.sy))
    return (upper, lower, outline, skull, source), None


def _skull(outline: np.ndarray, inset: float) -> tuple[np.ndarray, str]:
    """The skull the tangents touch: its outline's robust ellipse (grown by ``inset`` to the mask's edge) sampled
    at ELLIPSE_POINTS points, and "ellipse"; the outline itself and "outline" when it is no ellipse. A head cut by
    the image edge is fitted on its visible arc (the robust fit leaves the straight cut out): the tangent point
    lies on the arc facing the symphysis, which is the part that is seen."""
    fit = fit_ellipse_robust(outline)
    if fit is None or fit.residual > SKULL_MAX_RESIDUAL:
        return outline, "outline"
    return ellipse_points(EllipseFit(fit.cx, fit.cy, fit.a + inset, fit.b + inset, fit.angle_deg, fit.residual,
                                     fit.points), ELLIPSE_POINTS), "ellipse"


def ellipse_points(fit: EllipseFit, n: int) -> np.ndarray:
    """``n`` points of the ellipse ``fit``, equally spaced in its parametric angle (a closed N×2 polygon)."""
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    c, s = math.cos(math.radians(fit.angle_deg)), math.sin(math.radians(fit.angle_deg))
    x, y = fit.a * np.cos(t), fit.b * np.sin(t)
    return np.stack([fit.cx + c * x - s * y, fit.cy + s * x + c * y], axis=-1)


def _tangents(lower: np.ndarray, head: np.ndarray) -> np.ndarray | None:
    """The two points where a line from ``lower`` touches the head outline (a closed N×2 polygon): its extreme
    directions seen from ``lower``; None when ``lower`` lies on or inside the outline."""
    if cv2.pointPolygonTest(head.astype(np.float32).reshape(-1, 1, 2), (float(lower[0]), float(lower[1])),
                            False) >= 0:
        return None
    dc = head.mean(0) - lower
    v = head - lower
    delta = np.arctan2(dc[0] * v[:, 1] - dc[1] * v[:, 0], v @ dc)        # signed, relative to the head's centre
    return head[[int(np.argmin(delta)), int(np.argmax(delta))]]


def leading_tangent(upper: np.ndarray, lower: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The tangent point on the skull's leading edge (of the two tangents, the one at the larger angle from the
    symphysis axis, i.e. farther round from the symphysis) and how clearly it leads: the two angles' difference in
    degrees (0: the head lies straight along the symphysis axis and either could be). The angles depend only on
    the tangents' directions, which the outline's pixels fix well. None when there is no tangent."""
    ends = _tangents(lower, head)
    if ends is None:
        return None
    angles = [angle_at(lower, upper, p) for p in ends]
    return ends[int(np.argmax(angles))], abs(angles[0] - angles[1])


@measurement("AoP", ("IUGC",), "deg", "angle symphysis upper end - lower end - head tangent point (IUGC landmarks)",
             AOP_SOURCE, length=False)
def aop_landmarks(result: FrameResult, scale: Scale, **_) -> Measurement:
    spec = MEASUREMENTS.get("AoP").spec
    p, why = _landmarks(result, scale)
    return withheld(spec, scale, why) if p is None else value(spec, scale, angle_at(p[1], p[0], p[2]))


@measurement("AoP_mask", ("head_symphysis_multi",), "deg",
             "symphysis long axis (its ellipse's major axis) vs the tangent from its lower end to the skull's "
             "leading edge (masks)",
             AOP_SOURCE, length=False)
def aop_masks(result: FrameResult, scale: Scale, **options) -> Measurement:
    spec = MEASUREMENTS.get("AoP_mask").spec
    got, why = _masks(result, scale, options)
    if got is None:
        return withheld(spec, scale, why)
    upper, lower, _, head, skull = got
    found = leading_tangent(upper, lower, head)
    if found is None:
        return withheld(spec, scale, "the symphysis' lower end lies on or inside the head outline: no tangent line")
    tangent, gap = found
    if gap < MIN_TANGENT_GAP:
        return withheld(spec, scale, f"the head lies along the symphysis axis: the two tangents make almost equal "
                                     f"angles with it ({gap:.1f} deg apart), so which skull edge leads is unclear")
    return value(spec, scale, angle_at(lower, upper, tangent), tangent=[round(float(t), 2) for t in tangent],
                 skull=skull)


@measurement("AoP_agreement", ("IUGC", "head_symphysis_multi"), "deg",
             "|AoP from landmarks - AoP from masks|: where they disagree, neither is trustworthy", AOP_SOURCE,
             length=False)
def aop_agreement(result: FrameResult, scale: Scale, **options) -> Measurement:
    spec = MEASUREMENTS.get("AoP_agreement").spec
    a, b = aop_landmarks(result, scale), aop_masks(result, scale, **options)
    if not (a.ok and b.ok):
        return withheld(spec, scale, "; ".join(m.withheld for m in (a, b) if m.withheld))
    return value(spec, scale, abs(a.value - b.value), landmarks=round(a.value, 2), masks=round(b.value, 2))


def infrapubic_hsd(upper: np.ndarray, lower: np.ndarray, head: np.ndarray) -> float | None:
    """How far along the infrapubic line (through ``lower``, perpendicular to the symphysis axis, towards the head)
    the head outline (a closed N×2 polygon) is first met; None when the line misses the head."""
    u = (upper - lower) / np.linalg.norm(upper - lower)
    n = np.array([-u[1], u[0]])
    if n @ (head.mean(0) - lower) < 0:
        n = -n
    rel = head - lower
    side = rel @ u                                  # signed distance of each outline point from the line
    along = rel @ n
    nxt = np.roll(np.arange(len(head)), -1)
    cross = np.flatnonzero((side > 0) != (side[nxt] > 0))
    if len(cross) == 0:
        return None
    f = side[cross] / (side[cross] - side[nxt][cross])
    t = along[cross] + f * (along[nxt][cross] - along[cross])
    t = t[t >= 0]
    return float(t.min()) if len(t) else None


@measurement("HSD", ("head_symphysis_multi",), "mm",
             "head-symphysis distance along the infrapubic line: from the symphysis' lower end, perpendicular to "
             "its long axis, to the fetal head outline (masks)", HSD_SOURCE)
def head_symphysis_distance(result: FrameResult, scale: Scale, **options) -> Measurement:
    spec = MEASUREMENTS.get("HSD").spec
    got, why = _masks(result, scale, options)
    if got is None:
        return withheld(spec, scale, why)
    upper, lower, head, _, _ = got
    d = infrapubic_hsd(upper, lower, head)
    if d is None:
        return withheld(spec, scale, "the infrapubic line (perpendicular to the symphysis at its lower end) does not "
                                     "meet the fetal head")
    return value(spec, scale, d)
