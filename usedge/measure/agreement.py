"""How far a model's measurements agree with the truth: for every measurement, the pairs (truth, prediction) of
the images where both gave a value, their mean absolute error, bias and 95 % limits of agreement (Bland and
Altman, Lancet 1986: bias +- 1.96 SD of the differences), how many images the prediction withheld (and the
truth, which is not scored), and a Bland-Altman plot per measurement. ``usedge eval --measure`` writes them."""
from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from usedge.measure.base import Measurement, Scale
from usedge.measure.compute import measure, with_views
from usedge.runtime.results import DetectionResult, FrameResult, LandmarkResult, SegmentationResult
from usedge.tasks import TaskKind


def truth_result(sample: Any) -> FrameResult:
    """A labelled sample's ground truth as a FrameResult, so the truth is measured exactly like a prediction."""
    image_shape = sample.load_image().shape
    h, w = image_shape[:2]
    spec, target = sample.task, sample.target()
    if spec.kind is TaskKind.SEGMENTATION:
        task = SegmentationResult(spec.id, np.asarray(target, np.uint8), spec.class_names)
    elif spec.kind is TaskKind.REGRESSION:
        task = LandmarkResult(spec.id, np.asarray(target, np.float64), spec.point_names, w, h)
    elif spec.kind is TaskKind.DETECTION:
        task = DetectionResult(spec.id, np.asarray(target, np.float64), 1.0, w, h)
    else:
        return FrameResult(w, h, {})
    return FrameResult(w, h, {spec.id: task})


def _key(m: Measurement) -> str | None:
    """The name a measurement is paired under (a lesion's sizes: the largest lesion only)."""
    lesion = m.detail.get("lesion") if m.detail else None
    return m.name if lesion in (None, 0) else None


@dataclass
class _Pairs:
    unit: str
    truth: list[float] = field(default_factory=list)
    pred: list[float] = field(default_factory=list)
    images: int = 0
    withheld: int = 0
    truth_withheld: int = 0
    geometry: int = 0                  # images whose truth came from the generator's geometry
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Agreement:
    """One measurement's agreement over a data set. ``loa``: the 95 % limits of agreement (bias -+ 1.96 SD)."""

    name: str
    unit: str
    images: int
    scored: int
    withheld: int
    truth_withheld: int
    mae: float | None
    bias: float | None
    sd: float | None
    loa: tuple[float, float] | None
    truth: tuple[float, ...] = ()
    pred: tuple[float, ...] = ()
    reasons: dict[str, int] = field(default_factory=dict)
    #: "geometry" (the generator's exact values), "mask" (the same measurement of the true masks) or "mixed"
    truth_source: str = "mask"

    @property
    def withheld_fraction(self) -> float:
        attempted = self.images - self.truth_withheld
        return self.withheld / attempted if attempted else 0.0

    def to_json(self) -> dict[str, Any]:
        r = _rounded
        return {"name": self.name, "unit": self.unit, "images": self.images, "scored": self.scored,
                "withheld": self.withheld, "withheld_fraction": round(self.withheld_fraction, 4),
                "truth_withheld": self.truth_withheld, "mae": r(self.mae), "bias": r(self.bias), "sd": r(self.sd),
                "loa": None if self.loa is None else [r(self.loa[0]), r(self.loa[1])],
                "withheld_reasons": self.reasons, "truth": self.truth_source}


def _rounded(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


class AgreementCollector:
    """Feed (truth, prediction) results image by image; :meth:`results` gives one :class:`Agreement` each."""

    def __init__(self, calibration: Any = None, names: Iterable[str] | None = None) -> None:
        self.scale = Scale.of(calibration)
        self.names = list(names) if names is not None else None
        self._pairs: dict[str, _Pairs] = {}

    def add(self, truth: FrameResult, pred: FrameResult, scale: Scale | None = None,
            exact: dict[str, float] | None = None) -> None:
        """One image: both measured with the same scale (``scale`` for this image, else the collector's).
        ``exact``: the true values from the generator's geometry (name -> mm or degrees); where given they are
        the truth instead of the same measurement of the truth's masks."""
        s = scale or self.scale
        want = {k: m for m in measure(truth, s, self.names) if (k := _key(m)) is not None}
        got = {k: m for m in measure(pred, s, self.names) if (k := _key(m)) is not None}
        for name, v in (exact or {}).items():
            unit = (want.get(name) or got.get(name) or Measurement(name, None, "")).unit
            if unit and (self.names is None or name in self.names):
                want[name] = Measurement(name, float(v), unit)
        for name, t in want.items():
            p = got.get(name)
            row = self._pairs.setdefault(name, _Pairs(t.unit))
            if exact and name in exact:
                row.geometry += 1
            row.images += 1
            if not t.ok:
                row.truth_withheld += 1
            elif p is None or not p.ok:
                row.withheld += 1
                why = (p.withheld if p is not None else "not measured").split(" (")[0]
                row.reasons[why] = row.reasons.get(why, 0) + 1
            else:
                row.truth.append(float(t.value))
                row.pred.append(float(p.value))

    def results(self) -> list[Agreement]:
        out = []
        for name in sorted(self._pairs):
            row = self._pairs[name]
            t, p = np.array(row.truth), np.array(row.pred)
            if len(t):
                d = p - t
                sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
                bias = float(d.mean())
                stats = (float(np.abs(d).mean()), bias, sd, (bias - 1.96 * sd, bias + 1.96 * sd))
            else:
                stats = (None, None, None, None)
            source = "geometry" if row.geometry == row.images else "mask" if row.geometry == 0 else "mixed"
            out.append(Agreement(name, row.unit, row.images, len(t), row.withheld, row.truth_withheld, *stats,
                                 tuple(row.truth), tuple(row.pred), dict(row.reasons), source))
        return out


def to_markdown(results: Iterable[Agreement]) -> str:
    lines = ["| measurement | unit | truth | images | scored | withheld | MAE | bias | 95 % limits of agreement |",
             "|---|---|---|---|---|---|---|---|---|"]
    for a in results:
        if a.mae is None:
            lines.append(f"| {a.name} | {a.unit} | {a.truth_source} | {a.images} | 0 | {a.withheld} | – | – | – |")
            continue
        if a.unit == "bool":           # a yes/no answer: how often it agrees, not an error in units
            lines.append(f"| {a.name} | yes/no | {a.truth_source} | {a.images} | {a.scored} | "
                         f"{a.withheld} ({a.withheld_fraction:.0%}) | "
                         f"agrees on {1 - a.mae:.0%} | – | – |")
            continue
        lines.append(f"| {a.name} | {a.unit} | {a.truth_source} | {a.images} | {a.scored} | "
                     f"{a.withheld} ({a.withheld_fraction:.0%}) | "
                     f"{a.mae:.2f} | {a.bias:+.2f} | {a.loa[0]:+.2f} to {a.loa[1]:+.2f} |")
    return "\n".join(lines) + "\n"


def bland_altman_png(a: Agreement, path: str | Path) -> Path:
    """The Bland-Altman plot of one measurement: difference (prediction - truth) against the mean of the two,
    with the bias and the 95 % limits of agreement (matplotlib, from the ``train`` or ``dev`` extra)."""
    from usedge.errors import require

    matplotlib = require("matplotlib", "train", "Bland-Altman plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from usedge._io import atomic_write_bytes

    t, p = np.array(a.truth), np.array(a.pred)
    fig, ax = plt.subplots(figsize=(5.0, 3.6), dpi=110)
    if len(t):
        ax.scatter((t + p) / 2, p - t, s=10, alpha=0.7)
        for y, style in ((a.bias, "-"), (a.loa[0], "--"), (a.loa[1], "--")):
            ax.axhline(y, color="tab:red", linestyle=style, linewidth=1)
    ax.set_xlabel(f"mean of truth and prediction ({a.unit})")
    ax.set_ylabel(f"prediction - truth ({a.unit})")
    title = f"{a.name}: {a.scored} scored, {a.withheld} withheld"
    if a.bias is not None:
        title += f"\nbias {a.bias:+.2f}, 95 % limits {a.loa[0]:+.2f} to {a.loa[1]:+.2f} {a.unit}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


def measured_tasks() -> set[str]:
    """Every task some measurement reads."""
    from usedge.measure.registry import MEASUREMENTS

    return {t for n in MEASUREMENTS.names() for t in MEASUREMENTS.get(n).spec.tasks}


def agreement_on(predictor: Any, samples: Iterable[Any], calibration: Any = None,
                 scales: dict[str, dict[str, float]] | None = None, split: str = "val",
                 exact: dict[str, dict[str, dict[str, float]]] | None = None,
                 answer: Any = None) -> list[Agreement]:
    """Measure every sample of a measured task twice, its truth and ``predictor``'s answer, with one scale per
    image: ``calibration`` (the user's) if given, else the phantom set's recorded scale of that image
    (``scales``, from :func:`usedge.data.phantom.generator.phantom_scales`), else none (px). ``exact``: a phantom
    set's exact measurements (:func:`~usedge.data.phantom.generator.phantom_truth`), the truth where recorded
    (with the recorded scale only: a user's ``calibration`` would not be the one they are in). ``answer``: what
    is scored instead of the predictor's result (sample -> FrameResult; e.g. ``truth_result`` measures the method
    on the exact masks)."""
    collector = AgreementCollector(calibration)
    wanted = measured_tasks()
    model_tasks = getattr(predictor, "tasks", None) or ()     # each image also runs the view classifiers its checks need
    for s in samples:
        if s.task_id not in wanted:
            continue
        scale = None
        if calibration is None and scales is not None:
            mm = scales.get(split, {}).get(Path(s.image_path).stem)
            scale = Scale(mm, mm, "phantom") if mm else None
        values = (exact or {}).get(split, {}).get(Path(s.image_path).stem) if calibration is None else None
        got = answer(s) if answer is not None else predictor(s.load_image(), tasks=with_views([s.task_id], model_tasks))
        collector.add(truth_result(s), got, scale, values)
    return collector.results()


def write_agreement(results: list[Agreement], folder: str | Path) -> list[Path]:
    """measure.md, measure.json and bland-altman/<name>.png (one per scored measurement) into ``folder``."""
    import json

    from usedge._io import atomic_write_text

    folder = Path(folder)
    written = [atomic_write_text(folder / "measure.md", to_markdown(results)),
               atomic_write_text(folder / "measure.json",
                                 json.dumps([a.to_json() for a in results], indent=2) + "\n")]
    for a in results:
        if a.scored and a.unit != "bool":
            written.append(bland_altman_png(a, folder / "bland-altman" / f"{a.name}.png"))
    return written
