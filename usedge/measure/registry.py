"""The one registry of measurements: each is a :class:`~usedge.measure.base.MeasurementSpec` and the function
that computes it from a frame's result and scale (``fn(result, scale, **options)``, returning one
:class:`~usedge.measure.base.Measurement`, or a list of them for a measurement made once per structure, such as
each lesion's sizes)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from usedge.measure.base import Measurement, MeasurementSpec, Scale, View
from usedge.measure.geometry import memo
from usedge.measure.views import view_check
from usedge.registry import Registry


@dataclass(frozen=True)
class Registered:
    spec: MeasurementSpec
    fn: Callable[..., Measurement]


MEASUREMENTS: Registry[Registered] = Registry("measurement")


def measurement(name: str, tasks: tuple[str, ...], unit: str, method: str, source: str, length: bool = True,
                best: str = "median", view: View | None = None):
    """Register the decorated function as the measurement ``name``; with a ``view``, the registered function first
    checks that the frame shows it (:func:`usedge.measure.views.view_check`) and withholds the measurement when
    the frame's classifier says otherwise."""
    def wrap(fn: Callable[..., Measurement]) -> Callable[..., Measurement]:
        spec = MeasurementSpec(name, tasks, unit, method, source, length, best, view)
        MEASUREMENTS.register(name, Registered(spec, fn if view is None else _viewed(spec, fn)))
        return fn
    return wrap


def _viewed(spec: MeasurementSpec, fn: Callable[..., Measurement | list[Measurement]]):
    def run(result, scale: Scale, **options):
        why, seen = memo(options, ("view", spec.view), lambda: view_check(spec.view, result))
        if why is not None:
            return withheld(spec, scale, why, view=seen)
        got = fn(result, scale, **options)
        if seen["checked"]:
            return got
        return [replace(m, detail={**m.detail, "view": seen}) for m in got] if isinstance(got, list) else \
            replace(got, detail={**got.detail, "view": seen})
    run.__name__ = getattr(fn, "__name__", spec.name)
    return run


def withheld(spec: MeasurementSpec, scale: Scale, why: str, **detail) -> Measurement:
    """The answer of a measurement that cannot be trusted on this frame: no value, and the reason."""
    return Measurement(spec.name, None, _unit(spec, scale), why, detail, scale.describe())


def value(spec: MeasurementSpec, scale: Scale, v: float, **detail) -> Measurement:
    return Measurement(spec.name, float(v), _unit(spec, scale), None, detail, scale.describe())


def _unit(spec: MeasurementSpec, scale: Scale) -> str:
    if spec.length:
        return scale.length_unit
    if spec.unit == "mm2":
        return "mm2" if scale.calibrated else "px2"
    return spec.unit
