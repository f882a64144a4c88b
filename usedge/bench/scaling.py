"""Scaling curves behind ``usedge bench --scaling``: latency as a function of input size, batch and the number
of tasks decoded per frame, on each CPU backend (fp32).

The model is re-exported to ONNX in a temporary folder at every size (dynamic batch, the same exporter as
``usedge export``): from the bundle's ``torch/`` weights when it has them, else a fresh preset with random
weights (latency does not depend on the weights; the result says which). Each point times the bare backend
(one call on a batch) and the full Predictor on model-sized grey frames with the harness's ``timed``; the
runs are spread over interleaved rounds (every point once per round), so a slow spell of a shared machine
lands on every point alike and the ratios along a curve stay meaningful.

The task axis keeps the one-pass design: the Predictor on the full network with ``tasks=`` a subset (the
network still computes every head; only decoding shrinks). ``subset_net_p50_ms`` is, for comparison, the bare
latency of a network exported with only those heads (what the heads themselves cost). Subsets are taken
round-robin over the task families (segmentation, classification, detection, regression), so every subset
mixes them. Needs the ``train`` extra (torch) to export.
"""
from __future__ import annotations

import math
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from usedge._timing import timed
from usedge.bench.harness import (
    _check_counts,
    _error_status,
    bench_inputs,
    cpu_backends,
    machine_info,
    parse_batches,
)
from usedge.bench.report import new_figure, save_png
from usedge.bench.rows import OK, Result, Row
from usedge.errors import ConfigError, require

SIZES = (128, 256, 384, 512)
BATCHES = (1, 2, 4, 8, 16)
TASK_COUNTS = (1, 3, 9, 27)
AXES = ("size", "batch", "tasks")
FAMILY_ORDER = ("segmentation", "classification", "detection", "regression")


@dataclass(frozen=True)
class ScalingRow(Row):
    """One point of one curve: ``axis`` is what varies, ``value`` its value; ``size``, ``batch`` and ``tasks``
    describe the point in full."""

    axis: str
    value: int
    backend: str
    size: int
    batch: int
    tasks: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    per_frame_ms: float | None = None
    predictor_p50_ms: float | None = None
    subset_net_p50_ms: float | None = None
    status: str = OK


SCALING_COLUMNS: tuple[str, ...] = ScalingRow.columns()


@dataclass(frozen=True)
class ScalingResult(Result):
    model: str
    rows: tuple[ScalingRow, ...]
    machine: dict[str, object]
    command: str
    settings: dict[str, object] = field(default_factory=dict)
    row_type = ScalingRow

    def axis(self, name: str) -> list[ScalingRow]:
        return [r for r in self.rows if r.axis == name]


# -- the model -----------------------------------------------------------------------------------------------
def scaling_model(bundle=None, model: str | None = None):
    """(torch model, ModelConfig, description): the bundle's torch/ weights, or ``model`` (a preset) with
    random weights restricted to the bundle's tasks; with neither bundle weights nor ``model``, the bundle's
    own preset with random weights."""
    torch = require("torch", "train", "re-exporting models for the scaling curves")
    from usedge.models import build_model
    from usedge.models.presets import resolve_config

    weights = Path(bundle.path) / "torch" if bundle is not None else None
    if model is None and weights is not None and (weights / "config.json").is_file():
        from usedge.models.checkpoint import load_checkpoint

        net, config, _ = load_checkpoint(weights)
        return net, config, f"{config.name}, trained weights from {weights}"
    if model is None and bundle is None:
        raise ConfigError("no model for the scaling curves.", fix="pass a bundle or a preset name (e.g. student-s).")
    name = model or bundle.meta.model.get("name", "student-s")
    config = resolve_config(name, list(bundle.tasks) if bundle is not None else None)
    torch.manual_seed(0)
    return build_model(config).eval(), config, f"{config.name}, random weights (latency does not depend on them)"


def task_order(tasks: Sequence[str]) -> list[str]:
    """``tasks`` interleaved by family (segmentation, classification, detection, regression, segmentation, ...)
    so that the first n of them mix the families."""
    from usedge.tasks import get_task

    groups = [[t for t in tasks if get_task(t).kind.value == kind] for kind in FAMILY_ORDER]
    groups.append([t for t in tasks if get_task(t).kind.value not in FAMILY_ORDER])
    out: list[str] = []
    while any(groups):
        for g in groups:
            if g:
                out.append(g.pop(0))
    return out


def _export(net, config, folder: Path, size: int, tag: str) -> Path:
    from usedge.models.onnx import export_onnx

    return Path(export_onnx(net, config, folder / f"{tag}-{size}.onnx", input_size=size).path)


def _subset_net(net, config, subset: Sequence[str]):
    """A network with only ``subset``'s heads, sharing ``net``'s backbone / neck / head weights."""
    from usedge.models import build_model

    sub_config = replace(config, tasks=tuple(subset))
    sub = build_model(sub_config).eval()
    sub.load_state_dict(net.state_dict(), strict=False)
    return sub, sub_config


# -- measuring -----------------------------------------------------------------------------------------------
def _predictor(backend: str, onnx: Path, config, size: int, threads: int | None):
    from usedge.backends import open_backend
    from usedge.data.preprocess import PreprocessSpec
    from usedge.runtime.predictor import Choice, Predictor

    be = open_backend(backend, onnx, **({"threads": threads} if threads else {}))
    spec = PreprocessSpec.from_config(replace(config, input_size=size))
    return Predictor(be, spec, config.tasks, Choice(backend, "fp32", "scaling curve"))


class _Point:
    """One point being measured: its open Predictor (and, on the task curve, the subset network's backend),
    and the timings gathered over the rounds."""

    def __init__(self, axis: str, value: int, backend: str, size: int, batch: int, tasks: tuple[str, ...]) -> None:
        self.axis, self.value, self.backend = axis, value, backend
        self.size, self.batch, self.tasks = size, batch, tasks
        self.status = OK
        self.predictor = self.subset = None
        self.times: dict[str, list[np.ndarray]] = {"bare": [], "full": [], "subset": []}

    def open(self, curves: _Curves) -> None:
        try:
            self.predictor = _predictor(self.backend, curves.onnx(self.size), curves.config, self.size, curves.threads)
            self.x, self.frames = bench_inputs(self.predictor, self.batch)
            if self.axis == "tasks":
                from usedge.backends import open_backend

                options = {"threads": curves.threads} if curves.threads else {}
                self.subset = open_backend(self.backend, curves.onnx(self.size, len(self.tasks)), **options)
        except Exception as exc:  # noqa: BLE001 - any failure becomes the row's status
            self.fail(exc)

    def measure(self, runs: int, warmup: int) -> None:
        if self.status != OK:
            return
        p, x, frames, tasks = self.predictor, self.x, self.frames, self.tasks
        try:
            self.times["bare"].append(timed(lambda: p.backend.infer(x), runs, warmup))
            self.times["full"].append(timed(lambda: p.predict_batch(frames, tasks=tasks), runs, warmup))
            if self.subset is not None:
                self.times["subset"].append(timed(lambda: self.subset.infer(x), runs, warmup))
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        self.status = _error_status(exc)
        self.close()

    def close(self) -> None:
        for handle in (self.predictor, self.subset):
            if handle is not None:
                handle.close()
        self.predictor = self.subset = None

    def row(self) -> ScalingRow:
        base = (self.axis, self.value, self.backend, self.size, self.batch, len(self.tasks))
        if self.status != OK:
            return ScalingRow(*base, status=self.status)
        bare, full = np.concatenate(self.times["bare"]), np.concatenate(self.times["full"])
        subset = float(np.median(np.concatenate(self.times["subset"]))) if self.times["subset"] else None
        p50 = float(np.median(bare))
        return ScalingRow(*base, p50, float(np.percentile(bare, 95)), p50 / self.batch, float(np.median(full)), subset)


class _Curves:
    """The networks of one scaling run, exported once per (size, task subset) into ``folder``."""

    def __init__(self, net, config, folder: Path, threads: int | None) -> None:
        self.net, self.config, self.folder, self.threads = net, config, folder, threads
        self.order = task_order(config.tasks)
        self._onnx: dict[tuple[int, int], Path] = {}

    def onnx(self, size: int, n_tasks: int | None = None) -> Path:
        """The network at ``size``: all heads, or only the first ``n_tasks`` of the task order."""
        n_tasks = None if n_tasks == len(self.order) else n_tasks
        key = (size, n_tasks or 0)
        if key not in self._onnx:
            if n_tasks is None:
                self._onnx[key] = _export(self.net, self.config, self.folder, size, "all")
            else:
                sub, sub_config = _subset_net(self.net, self.config, self.order[:n_tasks])
                self._onnx[key] = _export(sub, sub_config, self.folder, size, f"tasks{n_tasks}")
        return self._onnx[key]

    def points(self, backend: str, sizes: Sequence[int], fixed: int, batches: Sequence[int],
               counts: Sequence[int]) -> list[_Point]:
        everything = tuple(self.config.tasks)
        pts = [_Point("size", s, backend, s, 1, everything) for s in sizes]
        pts += [_Point("batch", b, backend, fixed, b, everything) for b in batches]
        for n in counts:
            pts.append(_Point("tasks", n, backend, fixed, 1, tuple(self.order[:n])))
            if n > len(self.order):
                pts[-1].status = f"the model has {len(self.order)} tasks"
        return pts


def _measure_interleaved(points: list[_Point], runs: int, warmup: int, rounds: int) -> None:
    """``runs`` timed calls per point, spread over ``rounds`` rounds that visit every point in turn, so that a
    slow spell of a shared machine lands on all points alike (full ``warmup`` before the first round, a short
    one before each later round)."""
    per_round = max(1, math.ceil(runs / rounds))
    for i in range(rounds):
        for pt in points:
            pt.measure(per_round, warmup if i == 0 else min(warmup, 2))


def _parse_sizes(sizes: str | int | Sequence[int], what: str) -> list[int]:
    try:
        out = parse_batches(sizes)
    except ConfigError:
        raise ConfigError(f"Invalid {what}: {sizes!r}.", fix="give positive integers, e.g. 1,3,9.") from None
    return out


def _check_input_sizes(sizes: Sequence[int]) -> None:
    bad = [s for s in sizes if s < 32]
    if bad:
        raise ConfigError(f"input sizes {bad}: below the backbones' stride of 32.", fix="use e.g. 128,256,384,512.")


def scaling_backends(backends: str | Sequence[str] | None) -> list[str]:
    """The installed ONNX CPU backends among ``backends`` (None / "all": every installed one)."""
    from usedge.backends import available_backends
    from usedge.bench.harness import parse_backends

    cpu = cpu_backends()
    wanted = cpu if backends in (None, "all") else parse_backends(backends)
    names = [b for b in wanted if b in cpu and b in available_backends()]
    if not names:
        raise ConfigError(f"no CPU backend to run the scaling curves on (asked: {', '.join(wanted)}).",
                          fix="install usedge[cpu] (OpenVINO / ONNX Runtime) and include openvino or onnxruntime.")
    return names


def run_scaling(bundle=None, model: str | None = None, backends: str | Sequence[str] | None = None,
                sizes: str | Sequence[int] = SIZES, batches: str | Sequence[int] = BATCHES,
                task_counts: str | Sequence[int] = TASK_COUNTS, size: int | None = None, threads: int | None = None,
                runs: int = 50, warmup: int = 5, rounds: int = 5, command: str | None = None,
                progress: Callable[[ScalingRow], None] | None = None) -> ScalingResult:
    """Latency vs input size (batch 1, all tasks), vs batch (at ``size``) and vs tasks decoded (at ``size``,
    batch 1), per CPU backend, fp32.

    Args:
        bundle: a bundle (path or Bundle); its torch/ weights are used unless ``model`` names a preset.
        model: a preset name (random weights), e.g. "student-s"; None: the bundle's weights.
        backends: CPU backends (default: OpenVINO and ONNX Runtime, those installed).
        sizes / batches / task_counts: the x values of the three curves.
        size: the fixed input size of the batch and task curves (default: the model's own).
        threads: pin the backends' threads; None leaves their defaults.
        runs / warmup: timed calls per point, and untimed calls before them.
        rounds: the runs are spread over this many interleaved rounds (every point once per round).
        progress: called with each row once all are measured.
    """
    from usedge.bundle import Bundle, load_bundle

    _check_counts(runs, warmup, 1)
    if rounds < 1:
        raise ConfigError(f"rounds={rounds}.", fix="pass rounds >= 1.")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads}.", fix="pass a positive thread count, or none for the default.")
    sizes, batches = _parse_sizes(sizes, "input sizes"), _parse_sizes(batches, "batch sizes")
    counts = _parse_sizes(task_counts, "task counts")
    names = scaling_backends(backends)
    _check_input_sizes(sizes)
    b = load_bundle(bundle, verify=False) if bundle is not None and not isinstance(bundle, Bundle) else bundle
    net, config, description = scaling_model(b, model)
    fixed = int(size or config.input_size)
    _check_input_sizes([fixed])
    with tempfile.TemporaryDirectory(prefix="usedge-scaling-") as tmp:
        curves = _Curves(net, config, Path(tmp), threads)
        points = [pt for backend in names for pt in curves.points(backend, sizes, fixed, batches, counts)]
        try:
            for pt in points:
                if pt.status == OK:
                    pt.open(curves)
            _measure_interleaved(points, runs, warmup, rounds)
        finally:
            for pt in points:
                pt.close()
    rows = tuple(pt.row() for pt in points)
    if progress:
        for row in rows:
            progress(row)
    settings = {"backends": names, "precision": "fp32", "sizes": sizes, "batches": batches, "task_counts": counts,
                "fixed_size": fixed, "threads": threads, "runs": runs, "warmup": warmup, "rounds": rounds,
                "task_order": curves.order, "bundle": str(b.path) if b is not None else None}
    return ScalingResult(description, rows, machine_info(), command or shlex.join(sys.argv), settings)


# -- writers -------------------------------------------------------------------------------------------------
_TITLES = {"size": "Input size (batch 1, all tasks)", "batch": "Batch (fixed size, all tasks)",
           "tasks": "Tasks decoded per frame (fixed size, batch 1, one pass of the full network)"}
_X = {"size": "size", "batch": "batch", "tasks": "tasks"}


def _f(value: float | None, digits: int = 2) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ratio(row: ScalingRow, first: ScalingRow | None) -> str:
    if not row.ok or first is None or not first.ok or not first.p50_ms:
        return ""
    return f"{row.p50_ms / first.p50_ms:.2f}×"


def _axis_table(result: ScalingResult, axis: str) -> list[str]:
    rows = result.axis(axis)
    if not rows:
        return []
    extra = {"batch": ["per-frame ms"], "tasks": ["net with only these heads p50 ms"]}.get(axis, [])
    head = [_X[axis], "backend", "bare p50 ms", "bare p95 ms", "ratio to first", *extra, "Predictor p50 ms",
            "Predictor / bare", "status"]
    lines = [f"## {_TITLES[axis]}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        first = next((x for x in rows if x.backend == r.backend), None)
        cells = {"batch": [_f(r.per_frame_ms)], "tasks": [_f(r.subset_net_p50_ms)]}.get(axis, [])
        over = f"{r.predictor_p50_ms / r.p50_ms:.2f}×" if r.ok and r.p50_ms else ""
        status = r.status.replace("|", "\\|")
        lines.append("| " + " | ".join([str(r.value), r.backend, _f(r.p50_ms), _f(r.p95_ms), _ratio(r, first),
                                        *cells, _f(r.predictor_p50_ms), over, status]) + " |")
    return lines + [""]


def scaling_markdown(result: ScalingResult) -> str:
    s = result.settings
    lines = [f"# usedge bench --scaling: {result.model}", "", f"`{result.command}`", "",
             *[f"- {k}: {v}" for k, v in result.machine.items()],
             f"- settings: {', '.join(f'{k}={v}' for k, v in s.items() if k != 'task_order')}",
             f"- task subsets: the first n of {', '.join(s.get('task_order', []))}", ""]
    for axis in AXES:
        lines += _axis_table(result, axis)
    lines += ["Bare: one backend call on a batch of preprocessed frames (fp32 ONNX re-exported at each size). "
              "Predictor: the full Predictor on model-sized grey frames (preprocess, infer, decode the tasks "
              "asked for). Ratio to first: bare p50 / the curve's first point on the same backend, same run. "
              "Warm-up excluded."]
    return "\n".join(lines) + "\n"


def write_scaling_chart(result: ScalingResult, path: str | Path) -> Path | None:
    """ms vs size, ms vs batch (and per-frame ms), ms vs tasks; one colour per backend, solid = bare inference,
    dashed = Predictor. None when matplotlib is missing or no point ran."""
    if not any(r.ok for r in result.rows):
        return None
    fig = new_figure(13.0, 3.8)
    if fig is None:
        return None
    colours = dict(zip(result.settings.get("backends", []), ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    for i, axis in enumerate(AXES):
        ax = fig.add_subplot(1, 3, i + 1)
        for backend, colour in colours.items():
            pts = [r for r in result.axis(axis) if r.ok and r.backend == backend]
            if not pts:
                continue
            x = [r.value for r in pts]
            ax.plot(x, [r.p50_ms for r in pts], "o-", color=colour, label=f"{backend} bare")
            ax.plot(x, [r.predictor_p50_ms for r in pts], "s--", color=colour, label=f"{backend} Predictor")
            if axis == "batch":
                ax.plot(x, [r.per_frame_ms for r in pts], "^:", color=colour, label=f"{backend} bare per frame")
            if axis == "tasks" and any(r.subset_net_p50_ms for r in pts):
                ax.plot(x, [r.subset_net_p50_ms for r in pts], "d-.", color=colour, label=f"{backend} net of n heads")
        if axis != "size":
            ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r.value for r in result.axis(axis)}), [str(v) for v in sorted({r.value for r in
                                                                                           result.axis(axis)})])
        ax.set_xlabel({"size": "input size (px²)", "batch": "batch", "tasks": "tasks decoded"}[axis], fontsize=8)
        ax.set_ylabel("p50 ms", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.set_title(_TITLES[axis].split(" (")[0], fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.suptitle(f"usedge bench --scaling: {result.model.split(',')[0]}", fontsize=9)
    return save_png(fig, path)


def write_scaling_reports(result: ScalingResult, out: str | Path) -> dict[str, Path]:
    """scaling.md, scaling.csv, scaling.json (and scaling.png with matplotlib) in ``out``, atomically."""
    from usedge.bench.report import write_outputs

    folder = Path(out)
    paths = write_outputs(folder, {"scaling_md": ("scaling.md", scaling_markdown(result)),
                                   "scaling_csv": ("scaling.csv", result.to_csv()),
                                   "scaling_json": ("scaling.json", result.to_dict())})
    png = write_scaling_chart(result, folder / "scaling.png")
    if png is not None:
        paths["scaling_png"] = png
    return paths


__all__ = ["AXES", "SCALING_COLUMNS", "ScalingResult", "ScalingRow", "run_scaling", "scaling_backends",
           "scaling_markdown", "scaling_model", "task_order", "write_scaling_chart",
           "write_scaling_reports"]
