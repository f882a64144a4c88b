"""``measure(result, calibration)``: every registered measurement a frame's result allows, each stamped with the
calibration it used. Importing this module registers every measurement family."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from usedge.measure import cardiac, cervix, fetal, hadlock, intrapartum, lesions  # noqa: F401 - registers them
from usedge.measure.base import Measurement, Scale
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
    calibration = scale.describe()
    shared = {**options, "_cache": {}}        # what several measurements read (an ellipse fit) is computed once
    for entry in chosen:
        got = entry.fn(result, scale, **shared)
        out.extend(replace(m, calibration=calibration) for m in (got if isinstance(got, list) else [got]))
    return out

