"""``measure(result, calibration)``: every registered measurement a frame's result allows, each stamped with the
calibration it used. Importing this module registers every measurement family."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from usedge.measure import cardiac, cervix, fetal, hadlock, intrapartum, lesions  # noqa: F401 - registers them
from usedge.measure.base import Measurement, Scale
from usedge.measure.registry import MEASUREMENTS, Registered


def measure(result: Any, calibration: Any = None, names: Sequence[str] | None = None,
            **options: Any) -> list[Measurement]:
    """Every registered measurement whose tasks ``result`` holds (or those ``names``), in registry order.

    ``calibration``: the frame's ScanRegion, a :class:`Scale`, (mm_x, mm_y) or None (lengths in px).
    ``options``: per-measurement settings, e.g. ``bpd="outer-outer"``."""
    scale = Scale.of(calibration)
    chosen = _chosen(tuple(result.tasks), None if names is None else tuple(names))
    out: list[Measurement] = []
    calibration = scale.describe()
    shared = {**options, "_cache": {}}        # what several measurements read (an ellipse fit) is computed once
    for entry in chosen:
        got = entry.fn(result, scale, **shared)
        for m in got if isinstance(got, list) else (got,):      # value() / withheld() stamp it already
            out.append(m if m.calibration is calibration else replace(m, calibration=calibration))
    return out


@lru_cache(maxsize=64)
def _chosen(tasks: tuple[str, ...], names: tuple[str, ...] | None) -> tuple[Registered, ...]:
    """The measurements to run for a result with ``tasks`` (a stream asks the same question every frame)."""
    if names is not None:
        return tuple(MEASUREMENTS.get(n) for n in names)
    have = set(tasks)
    return tuple(MEASUREMENTS.get(n) for n in MEASUREMENTS.names() if set(MEASUREMENTS.get(n).spec.tasks) <= have)


def with_views(tasks: Sequence[str], available: Sequence[str]) -> list[str]:
    """``tasks`` plus the view classifiers (of ``available``) that their measurements check the frame with
    (usedge.measure.views): a stream or an evaluation that measures runs them too, or the check cannot run."""
    out = list(tasks)
    have, can = set(tasks), set(available)
    for entry in _chosen(tuple(tasks), None):
        v = entry.spec.view
        if v is not None and v.task in can and v.task not in have:
            out.append(v.task)
            have.add(v.task)
    return out
