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
    #: which frame of a cine is its best: "largest" (the widest section: head and abdomen sizes) or "median"
    best: str = "median"
    #: the view the measured structure is seen in, checked when the result holds its classifier (:class:`View`)
    view: View | None = None


@dataclass(frozen=True)
class View:
    """What a measurement's frame must show: ``label`` must win ``task``'s classification among ``rivals`` (all its
    classes when empty), with a probability of at least ``min_p``. A task head answers on every frame, whatever it
    shows: the abdomen head outlines a fetal skull as an abdomen and the femur head places two points on a head
    section, so without this check a head frame reports an AC (usedge.measure.views; benchmarks/measure_views.py
    counts them)."""

    task: str
    label: str
    rivals: tuple[str, ...] = ()
    #: and ``label``'s probability must reach this: for a classifier taught to be unsure on frames that show none
    #: of its classes (``organ_cls`` on a lung, usedge.train.views), where the winner of a near-uniform answer means
    #: nothing
    min_p: float = 0.0


@dataclass(frozen=True)
class Measurement:
    """One measurement of one frame: ``value`` in ``unit``, or ``value=None`` and ``withheld`` saying why."""

    name: str
    value: float | None
    unit: str
    withheld: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    #: the scale it was measured with (:meth:`Scale.describe`): mm per pixel and where they came from
    calibration: dict[str, Any] | None = None

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
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out


@dataclass(frozen=True)
class Scale:
    """mm per pixel along x and y (pixels need not be square), or uncalibrated (``None``: lengths stay px).

    ``unit="px"`` with factors: an uncalibrated frame measured on a resized copy (a server analysing a downscaled
    frame): the factors map the copy's pixels to the frame's, and lengths are in the frame's px."""

    mm_per_px_x: float | None = None
    mm_per_px_y: float | None = None
    #: where the scale came from: "dicom" (the Sequence of Ultrasound Regions), "user", "phantom", or "none"
    source: str = "none"
    unit: str = "mm"

    def __post_init__(self) -> None:
        pair = (self.mm_per_px_x, self.mm_per_px_y)
        if (pair[0] is None) != (pair[1] is None):
            raise ConfigError(f"a scale needs both mm per pixel values or neither, got {pair}.",
                              fix="pass Scale(mm_x, mm_y), or Scale() for an uncalibrated frame.")
        if pair[0] is not None and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                           and math.isfinite(v) and v > 0 for v in pair):
            raise ConfigError(f"mm per pixel must be positive finite numbers, got {pair}.",
                              fix="read them from the DICOM region (PhysicalDeltaX/Y in cm, times 10).")
        if self.unit not in ("mm", "px"):
            raise ConfigError(f"a scale's unit is mm or px, got {self.unit!r}.")
        if pair[0] is not None and self.unit == "mm" and self.source == "none":
            object.__setattr__(self, "source", "user")

    @property
    def calibrated(self) -> bool:
        """Whether lengths come out in mm (a physical calibration)."""
        return self.mm_per_px_x is not None and self.unit == "mm"

    @property
    def sx(self) -> float:
        return self.mm_per_px_x if self.mm_per_px_x is not None else 1.0

    @property
    def sy(self) -> float:
        return self.mm_per_px_y if self.mm_per_px_y is not None else 1.0

    @property
    def length_unit(self) -> str:
        return "mm" if self.calibrated else "px"

    def resized(self, kx: float, ky: float) -> Scale:
        """The scale of a copy of the frame resized by ``kx`` x ``ky`` (copy pixels per frame pixel)."""
        if self.mm_per_px_x is None:
            return Scale(1.0 / kx, 1.0 / ky, "none", "px")
        return Scale(self.mm_per_px_x / kx, self.mm_per_px_y / ky, self.source, self.unit)

    def describe(self) -> dict[str, Any]:
        """What every reported measurement carries about its calibration (made once per Scale: every measurement
        of a frame carries the same dict; treat it as read-only)."""
        described = self.__dict__.get("_described")
        if described is None:
            described = ({"source": "none", "mm_per_px": None} if not self.calibrated else
                         {"source": self.source, "mm_per_px": [round(self.mm_per_px_x, 6), round(self.mm_per_px_y, 6)]})
            object.__setattr__(self, "_described", described)     # a cache, not a field: equality and hash ignore it
        return described

    @classmethod
    def of(cls, calibration: ScanRegion | Scale | tuple[float, float] | float | None) -> Scale:
        """From a ScanRegion (its mm per pixel, when calibrated in cm), a Scale, an (mm_x, mm_y) pair or one mm
        per pixel for square pixels (the user's), or None (uncalibrated)."""
        if calibration is None:
            return cls()
        if isinstance(calibration, Scale):
            return calibration
        if isinstance(calibration, ScanRegion):
            if calibration.mm_per_pixel_x is None or calibration.mm_per_pixel_y is None:
                return cls()
            return cls(calibration.mm_per_pixel_x, calibration.mm_per_pixel_y, "dicom")
        if isinstance(calibration, (int, float)) and not isinstance(calibration, bool):
            return cls(float(calibration), float(calibration), "user")
        if isinstance(calibration, tuple) and len(calibration) == 2:
            return cls(*calibration, source="user")
        raise ConfigError(f"calibration must be a ScanRegion, a Scale, mm per pixel, (mm_x, mm_y) or None, got "
                          f"{type(calibration).__name__}.", fix="e.g. frame.region of a DICOM frame.")
