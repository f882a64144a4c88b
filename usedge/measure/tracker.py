"""Measurements over a cine or a live stream: :class:`MeasurementTracker` keeps the last ``window`` frames of
every measurement and reports, per measurement, the median of the accepted values, their spread, a confidence
(the fraction of recent frames that gave a value), the best frame so far, and holds the value when frozen.
:class:`Measurer` is what the stream, the server, the demo and ``usedge measure`` call on each frame's result: it
picks the calibration, measures, tracks, and attaches both to the result."""
from __future__ import annotations

import dataclasses
import math
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from usedge.errors import ConfigError
from usedge.measure.base import Measurement, Scale
from usedge.measure.cardiac import ejection_fraction
from usedge.measure.compute import measure
from usedge.measure.hadlock import HC_FOR_AGE_CM, age_from_size, centile_band, efw_hadlock, weeks_days
from usedge.measure.registry import MEASUREMENTS


@dataclass(frozen=True)
class Tracked:
    """One measurement over the recent frames. ``value``: median of the accepted values in the window (None and
    ``withheld`` while too few frames gave one); ``spread``: their standard deviation; ``range``: max - min;
    ``confidence``: accepted / seen."""

    name: str
    unit: str
    value: float | None
    spread: float | None
    range: float | None
    accepted: int
    seen: int
    best_frame: int | None
    best_value: float | None
    frozen: bool = False
    withheld: str | None = None
    calibration: dict[str, Any] | None = None

    @property
    def confidence(self) -> float:
        return self.accepted / self.seen if self.seen else 0.0

    def to_json(self) -> dict[str, Any]:
        r = _rounded
        out = {"name": self.name, "unit": self.unit, "value": r(self.value), "spread": r(self.spread),
               "range": r(self.range), "confidence": round(self.confidence, 3), "accepted": self.accepted, "seen": self.seen,
               "best_frame": self.best_frame, "best_value": r(self.best_value), "frozen": self.frozen}
        if self.withheld:
            out["withheld"] = self.withheld
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out


def _rounded(v: float | None) -> float | None:
    return None if v is None else round(float(v), 3)


@dataclass
class _History:
    unit: str
    policy: str
    window: deque = field(default_factory=deque)          # (frame, value or None, reason)
    best: tuple[int, float] | None = None
    frozen: Tracked | None = None
    calibration: dict[str, Any] | None = None


def _key(m: Measurement) -> str:
    lesion = m.detail.get("lesion") if m.detail else None
    return m.name if lesion is None else f"{m.name}#{lesion}"


class MeasurementTracker:
    """Per-measurement temporal filter over the last ``window`` frames; ``min_accepted`` values are needed before
    one is reported. Thread-safe (a stream updates it, a UI freezes it)."""

    def __init__(self, window: int = 30, min_accepted: int = 5) -> None:
        for n, v in (("window", window), ("min_accepted", min_accepted)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{n} must be a positive integer, got {v!r}.")
        if min_accepted > window:
            raise ConfigError(f"min_accepted ({min_accepted}) cannot exceed the window ({window}).")
        self.window, self.min_accepted = window, min_accepted
        self._h: dict[str, _History] = {}
        self._lock = threading.Lock()

    def update(self, measurements: Iterable[Measurement], frame: int) -> dict[str, Tracked]:
        """Add one frame's measurements; returns the tracked state of every measurement seen so far."""
        with self._lock:
            for m in measurements:
                h = self._h.get(_key(m))
                if h is None:
                    spec = MEASUREMENTS.get(m.name).spec if m.name in MEASUREMENTS.names() else None
                    h = self._h[_key(m)] = _History(m.unit, spec.best if spec else "median",
                                                    deque(maxlen=self.window))
                if h.frozen is not None:
                    continue
                h.window.append((frame, m.value if m.ok and math.isfinite(m.value) else None, m.withheld))
                h.calibration = m.calibration
                if m.ok and h.policy == "largest" and (h.best is None or m.value > h.best[1]):
                    h.best = (frame, float(m.value))
            return {k: self._state(k, h) for k, h in self._h.items()}

    def _state(self, key: str, h: _History) -> Tracked:
        if h.frozen is not None:
            return h.frozen
        values = [(f, v) for f, v, _ in h.window if v is not None]
        seen = len(h.window)
        if len(values) < self.min_accepted:
            last = next((why for _, v, why in reversed(h.window) if v is None and why), None)
            why = f"{len(values)} of the last {seen} frames gave a value (at least {self.min_accepted} are needed)"
            return Tracked(key, h.unit, None, None, None, len(values), seen, None, None, False,
                           f"{why}; latest: {last}" if last else why, h.calibration)
        arr = np.array([v for _, v in values])
        median = float(np.median(arr))
        if h.policy == "largest" and h.best is not None:
            best = h.best
        else:
            best = values[int(np.argmin(np.abs(arr - median)))]
        return Tracked(key, h.unit, median, float(arr.std()), float(arr.max() - arr.min()), len(values), seen,
                       best[0], best[1], calibration=h.calibration)

    def summary(self) -> dict[str, Tracked]:
        with self._lock:
            return {k: self._state(k, h) for k, h in self._h.items()}

    def freeze(self, names: Sequence[str] | None = None) -> None:
        """Hold the current value of ``names`` (all by default): later frames no longer change it."""
        with self._lock:
            for k, h in self._h.items():
                if (names is None or k in names) and h.frozen is None:
                    h.frozen = Tracked(**{**self._state(k, h).__dict__, "frozen": True})

    def unfreeze(self, names: Sequence[str] | None = None) -> None:
        with self._lock:
            for k, h in self._h.items():
                if names is None or k in names:
                    h.frozen = None

    def exam(self) -> list[Measurement]:
        """Exam-level answers from the tracked measurements: gestational age from HC and the Hadlock estimated fetal
        weight (with its Hadlock 1991 centile band at that age) from HC, AC, FL and BPD, each withheld with the
        reason when its inputs are not tracked in mm; the single-plane LV ejection fraction over the window's LV
        volumes when the cine has them (the window must span a whole beat)."""
        state = self.summary()
        mm = {n: t.value for n, t in state.items() if t.value is not None and t.unit == "mm"}
        out = []
        weeks = age_from_size(mm["HC"] / 10.0, HC_FOR_AGE_CM) if "HC" in mm else None
        if weeks is None:
            why = "no HC in mm is tracked" if "HC" not in mm else f"HC {mm['HC']:.1f} mm is outside the Hadlock table"
            out.append(Measurement("GA", None, "weeks", why))
        else:
            out.append(Measurement("GA", weeks, "weeks", None, {"text": weeks_days(weeks), "from": "HC"}))
        if "AC" not in mm or "FL" not in mm:
            missing = [n for n in ("AC", "FL") if n not in mm]
            out.append(Measurement("EFW", None, "g", f"Hadlock's EFW needs AC and FL in mm; not tracked: {missing}"))
        else:
            grams, formula = efw_hadlock(mm.get("HC"), mm["AC"], mm["FL"], mm.get("BPD"))
            detail = {"formula": formula}
            if weeks is not None:
                detail["centile"] = centile_band(weeks, grams)
            out.append(Measurement("EFW", grams, "g", None, detail))
        with self._lock:
            lv = self._h.get("LV_volume")
            volumes = [v for _, v, _ in lv.window] if lv is not None else []
        if lv is not None:
            out.append(ejection_fraction(volumes))
        return out


def rejected(measurements: list[Measurement], gate: Any) -> list[Measurement]:
    """``measurements`` of a frame the frame gate rejected: each withheld, saying why."""
    why = "frame rejected by the gate: " + "; ".join(getattr(gate, "reasons", ()) or ("not accepted",))
    return [dataclasses.replace(m, value=None, withheld=why) for m in measurements]


class Measurer:
    """Measures each frame's result and tracks the measurements over the stream.

    Calibration, first found wins: ``mm_per_pixel`` given here (the user's; one value or (x, y)), the frame's
    DICOM scan region when it is calibrated in cm, a phantom frame's own scale (``frame.meta["mm_per_pixel"]``),
    else none (lengths in px, and the unit says so)."""

    def __init__(self, names: Sequence[str] | None = None, mm_per_pixel: float | tuple[float, float] | None = None,
                 window: int = 30, min_accepted: int = 5, **options: Any) -> None:
        self.names = list(names) if names is not None else None
        for n in self.names or ():
            MEASUREMENTS.get(n)                      # an unknown name is a ConfigError listing the known ones
        self.user_scale = Scale.of(mm_per_pixel) if mm_per_pixel is not None else None
        self.tracker = MeasurementTracker(window, min_accepted)
        self.options = options
        self._frames = 0

    def scale_for(self, frame: Any = None) -> Scale:
        if self.user_scale is not None:
            return self.user_scale
        scale = Scale.of(getattr(frame, "region", None))
        phantom = (getattr(frame, "meta", None) or {}).get("mm_per_pixel")
        if not scale.calibrated and phantom is not None:
            return Scale(float(phantom), float(phantom), "phantom")
        return scale

    def __call__(self, result: Any, frame: Any = None, scale: Scale | None = None) -> list[Measurement]:
        """Measure ``result`` (of ``frame``; ``scale`` overrides the calibration choice), update the tracker and
        attach both to the result (``result.measurements``, ``result.tracked``). On a frame the frame gate
        rejected (``result.accepted`` False) every measurement is withheld with the gate's reason and the tracker
        is left as it was."""
        found = measure(result, scale or self.scale_for(frame), self.names, **self.options)
        if not getattr(result, "accepted", True):
            result.measurements, result.tracked = rejected(found, result.gate), self.tracker.summary()
            return result.measurements
        index = getattr(frame, "index", None)
        if index is None:
            index = getattr(result, "index", None)
        state = self.tracker.update(found, int(index) if index is not None else self._frames)
        self._frames += 1
        result.measurements = found
        result.tracked = state
        return found
