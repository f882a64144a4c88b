"""Lesion sizes: for every connected lesion of ``thyroid_nodule``, ``breast_lesion`` and ``ovary_tumor``, its
longest axis (maximum Feret diameter), the widest extent perpendicular to it, its area, and whether it is taller
than wide (its extent along the beam, image y, exceeds its extent across it, image x: the TI-RADS / BI-RADS
orientation feature; meaningful on a transverse or sagittal view with the probe at the top of the image). For
the detection tasks (``thyroid_nodule_det``, ``uterine_fibroid_det``) the box's width and height.

Each lesion gives four measurements named ``TASK.long_axis``, ``.short_axis``, ``.area`` and
``.taller_than_wide`` (1 or 0), with ``detail["lesion"]`` its index (largest first)."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from usedge.measure.base import Measurement, Scale, View
from usedge.measure.geometry import components, extent_mm, feret_axes, to_mm
from usedge.measure.registry import MEASUREMENTS, measurement, withheld
from usedge.measure.views import ORGAN_MIN_P
from usedge.runtime.results import DetectionResult, FrameResult, SegmentationResult

LESION_SOURCE = ("ACR TI-RADS (Tessler et al., JACR 2017): maximum diameter, taller-than-wide; ACR BI-RADS "
                 "ultrasound lexicon (2013): orientation not parallel")
SEGMENTED = ("thyroid_nodule", "breast_lesion", "ovary_tumor")
DETECTED = ("thyroid_nodule_det", "uterine_fibroid_det")
#: the smallest lesion measured, as a fraction of the frame's pixels (0.1 %: 20 x 15 px of a 640 x 480 frame) and
#: in pixels: smaller parts are speckle in the segmentation, not lesions anyone sizes
MIN_FRACTION = 0.001
MIN_PIXELS = 25
#: the lowest detection score whose box is measured
MIN_SCORE = 0.5
#: the organ a lesion task's frame must show, checked by ``organ_cls`` when the result holds it (ovary and uterus
#: are not among its classes), at a probability of at least ORGAN_MIN_P (usedge.measure.views)
ORGAN_VIEWS = {"thyroid_nodule": View("organ_cls", "thyroid", min_p=ORGAN_MIN_P),
               "thyroid_nodule_det": View("organ_cls", "thyroid", min_p=ORGAN_MIN_P),
               "breast_lesion": View("organ_cls", "breast", min_p=ORGAN_MIN_P)}


def _parts(name: str, scale: Scale, lesion: int, long: float, short: float, area: float, ttw: bool,
           **detail) -> list[Measurement]:
    unit_area = "mm2" if scale.calibrated else "px2"
    d = {"lesion": lesion, **detail}
    return [Measurement(f"{name}.long_axis", long, scale.length_unit, None, d, scale.describe()),
            Measurement(f"{name}.short_axis", short, scale.length_unit, None, d, scale.describe()),
            Measurement(f"{name}.area", area, unit_area, None, d, scale.describe()),
            Measurement(f"{name}.taller_than_wide", float(ttw), "bool", None, d, scale.describe())]


def _segmented(task: str) -> Callable[..., list[Measurement]]:
    def run(result: FrameResult, scale: Scale, **_) -> list[Measurement]:
        spec = MEASUREMENTS.get(f"{task}.size").spec
        r = result.tasks.get(task)
        if not isinstance(r, SegmentationResult):
            return [withheld(spec, scale, f"no {task} segmentation in this result")]
        parts = components(r.mask, max(MIN_PIXELS, MIN_FRACTION * r.mask.size))
        if not parts:
            return [withheld(spec, scale, f"{task}: no lesion segmented")]
        out: list[Measurement] = []
        for i, part in enumerate(parts):
            if part.touches_edge:
                out.append(withheld(spec, scale, f"{task}: lesion {i} touches the image edge (cut off)", lesion=i))
                continue
            mm = to_mm(part.hull(), scale)
            axes = feret_axes(mm)
            if axes is None:
                out.append(withheld(spec, scale, f"{task}: lesion {i} is too small to measure", lesion=i))
                continue
            t = math.radians(axes.angle_deg)        # the cell centres lie inside the edge at both ends of an axis
            along, across = np.array([math.cos(t), math.sin(t)]), np.array([-math.sin(t), math.cos(t)])
            long = axes.long + extent_mm(along, 2 * part.inset, scale)
            short = axes.short + extent_mm(across, 2 * part.inset, scale)
            tall = float(np.ptp(mm[:, 1])) > float(np.ptp(mm[:, 0]))
            out += _parts(task, scale, i, long, short, part.area * scale.sx * scale.sy, tall,
                          axis_deg=round(axes.angle_deg, 1))
        return out
    return run


def _detected(task: str) -> Callable[..., list[Measurement]]:
    def run(result: FrameResult, scale: Scale, **_) -> list[Measurement]:
        spec = MEASUREMENTS.get(f"{task}.size").spec
        r = result.tasks.get(task)
        if not isinstance(r, DetectionResult):
            return [withheld(spec, scale, f"no {task} detection in this result")]
        boxes = r.boxes if r.boxes is not None else np.asarray(r.box, np.float64)[None]
        scores = r.scores if r.scores is not None else np.array([r.score])
        keep = [i for i in range(len(boxes)) if scores[i] >= MIN_SCORE]
        if not keep:
            return [withheld(spec, scale, f"{task}: no box scores {MIN_SCORE} or more (best {float(scores.max()):.2f})")]
        out: list[Measurement] = []
        for n, i in enumerate(keep):
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            w, h = (x1 - x0) * scale.sx, (y1 - y0) * scale.sy
            out += _parts(task, scale, n, max(w, h), min(w, h), w * h, h > w, score=round(float(scores[i]), 3),
                          method="box")
        return out
    return run


def _register() -> None:
    for task in SEGMENTED:
        measurement(f"{task}.size", (task,), "mm", "per connected lesion: maximum Feret diameter, widest extent "
                    "across it, area (pixel count), taller than wide (extent in y > extent in x)",
                    LESION_SOURCE, view=ORGAN_VIEWS.get(task))(_segmented(task))
    for task in DETECTED:
        measurement(f"{task}.size", (task,), "mm", "per box of score >= 0.5: its larger and smaller side, its area, "
                    "taller than wide (height > width)", LESION_SOURCE, view=ORGAN_VIEWS.get(task))(_detected(task))


_register()
