"""The one registry of measurements: each is a :class:`~usedge.measure.base.MeasurementSpec` and the function
that computes it from a frame's result and scale (``fn(result, scale, **options)``, returning one
:class:`~usedge.measure.base.Measurement`, or a list of them for a measurement made once per structure, such as
each lesion's sizes)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from usedge.measure.base import Measurement, MeasurementSpec, Scale
from usedge.registry import Registry


@dataclass(frozen=True)
class Registered:
    spec: MeasurementSpec
    fn: Callable[..., Measurement]


MEASUREMENTS: Registry[Registered] = Registry("measurement")


def measurement(name: str, tasks: tuple[str, ...], unit: str, method: str, source: str, length: bool = True,
                best: str = "median"):
    """Register the decorated function as the measurement ``name``."""
    def wrap(fn: Callable[..., Measurement]) -> Callable[..., Measurement]:
        MEASUREMENTS.register(name, Registered(MeasurementSpec(name, tasks, unit, method, source, length, best), fn))
        return fn
    return wrap


def withheld(spec: MeasurementSpec, scale: Scale, why: str, **detail) -> Measurement:
    """The answer of a measurement that cannot be trusted on this frame: no value, and the reason."""
    return Measurement(spec.name, None, _unit(spec, scale), why, detail)


def value(spec: MeasurementSpec, scale: Scale, v: float, **detail) -> Measurement:
    return Measurement(spec.name, float(v), _unit(spec, scale), None, detail)


def _unit(spec: MeasurementSpec, scale: Scale) -> str:
    if spec.length:
        return scale.length_unit
    if spec.unit == "mm2":
        return "mm2" if scale.calibrated else "px2"
    return spec.unit
