"""What every measurement is: its declaration (:class:`MeasurementSpec`: the tasks it reads, its unit, its
method, its source), its answer (:class:`Measurement`: a value, or ``None`` with the reason it was withheld),
and the physical scale of the frame (:class:`Scale`, from the DICOM Sequence of Ultrasound Regions)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from usedge.data.frames import ScanRegion
from usedge.errors import ConfigError


@dataclass(frozen=True)
class MeasurementSpec:
    """A measurement's declaration. ``unit`` is the calibrated unit ("mm", "%", ...); uncalibrated frames give
    lengths in "px" instead. ``tasks``: the task outputs it reads (all must be in the result)."""

    name: str
    tasks: tuple[str, ...]
    unit: str
    method: str
    source: str
    length: bool = True          # a length: mm with a calibration, px without; False: unitless (a ratio)


@dataclass(frozen=True)
class Measurement:
    """One measurement of one frame: ``value`` in ``unit``, or ``value=None`` and ``withheld`` saying why."""

    name: str
    value: float | None
    unit: str
    withheld: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "value": None if self.value is None else round(float(self.value), 3),
               "unit": self.unit}
        if self.withheld:
            out["withheld"] = self.withheld
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class Scale:
    """mm per pixel along x and y (pixels need not be square), or uncalibrated (``None``: lengths stay px)."""

    mm_per_px_x: float | None = None
    mm_per_px_y: float | None = None

    def __post_init__(self) -> None:
        pair = (self.mm_per_px_x, self.mm_per_px_y)
        if (pair[0] is None) != (pair[1] is None):
            raise ConfigError(f"a scale needs both mm per pixel values or neither, got {pair}.",
                              fix="pass Scale(mm_x, mm_y), or Scale() for an uncalibrated frame.")
        if pair[0] is not None and not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in pair):
            raise ConfigError(f"mm per pixel must be positive finite numbers, got {pair}.",
                              fix="read them from the DICOM region (PhysicalDeltaX/Y in cm, times 10).")

    @property
    def calibrated(self) -> bool:
        return self.mm_per_px_x is not None

    @property
    def sx(self) -> float:
        return self.mm_per_px_x if self.calibrated else 1.0

    @property
    def sy(self) -> float:
        return self.mm_per_px_y if self.calibrated else 1.0

    @property
    def length_unit(self) -> str:
        return "mm" if self.calibrated else "px"

    @classmethod
    def of(cls, calibration: ScanRegion | Scale | tuple[float, float] | None) -> Scale:
        """From a ScanRegion (its mm per pixel, when calibrated), a Scale, an (mm_x, mm_y) pair, or None."""
        if calibration is None:
            return cls()
        if isinstance(calibration, Scale):
            return calibration
        if isinstance(calibration, ScanRegion):
            return cls(calibration.mm_per_pixel_x, calibration.mm_per_pixel_y)
        if isinstance(calibration, tuple) and len(calibration) == 2:
            return cls(*calibration)
        raise ConfigError(f"calibration must be a ScanRegion, a Scale, (mm_x, mm_y) or None, got "
                          f"{type(calibration).__name__}.", fix="e.g. frame.region of a DICOM frame.")
