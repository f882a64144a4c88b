"""Clinical measurements from a frame's results (the stage after ``runtime``, before ``stream``): fetal
biometry (HC, BPD, OFD, CI, AC, FL), the intrapartum angle of progression and head-symphysis distance, cervical
length, lesion sizes and left-ventricular size, in millimetres from the frame's physical scale, each declared in
one registry with the tasks it reads, its unit, its method and its source. A measurement whose inputs are missing
or implausible is withheld with the reason, never guessed; a frame without calibration gets lengths in px.

    from usedge.measure import measure
    for m in measure(result, frame.region):      # a DICOM frame's scan region carries mm per pixel
        print(m.name, m.value, m.unit, m.withheld or "")
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from usedge.measure import cardiac, cervix, fetal, hadlock, intrapartum, lesions  # noqa: F401 - register them
from usedge.measure.base import Measurement, MeasurementSpec, Scale
from usedge.measure.registry import MEASUREMENTS


def measure(result: Any, calibration: Any = None, names: Sequence[str] | None = None,
            **options: Any) -> list[Measurement]:
    """Every registered measurement whose tasks ``result`` holds (or those ``names``), in registry order.

    ``calibration``: the frame's ScanRegion, a :class:`Scale`, (mm_x, mm_y) or None (lengths in px).
    ``options``: per-measurement settings, e.g. ``bpd="outer-outer"``."""
    scale = Scale.of(calibration)
    chosen = [MEASUREMENTS.get(n) for n in names] if names is not None else [
        MEASUREMENTS.get(n) for n in MEASUREMENTS.names()
        if all(t in result.tasks for t in MEASUREMENTS.get(n).spec.tasks)]
    out: list[Measurement] = []
    for entry in chosen:
        got = entry.fn(result, scale, **options)
        out.extend(got if isinstance(got, list) else [got])
    return out


__all__ = ["MEASUREMENTS", "Measurement", "MeasurementSpec", "Scale", "measure"]
