"""Phantom samples and data sets: ``generate_sample`` (one labelled image) and ``generate_dataset`` (the
FMC-UIA layout, train + val, deterministic per (seed, split, task, index))."""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from usedge._io import swap_in_dir
from usedge.data.fmcuia import SplitWriter
from usedge.data.phantom.anatomy import DRAWERS
from usedge.data.phantom.anatomy_base import Drawn
from usedge.data.phantom.physics import AcquisitionRanges, Geometry, render, sample_acquisition
from usedge.errors import ConfigError
from usedge.tasks import ALL_TASKS, TaskKind, TaskSpec, get_task

SPLIT_NUMBERS = {"train": 0, "val": 1}
MARKER = "phantom.json"
MIN_SIZE, MAX_SIZE = 64, 2048


@dataclass(frozen=True)
class PhantomConfig:
    """Phantom settings.

    Attributes:
        size: output image side (square, uint8 grayscale), 64 .. 2048.
        acquisition: ranges of the per-image scanner settings (gain, dynamic range, TGC, noise, PSF, ...).
    """

    size: int = 256
    acquisition: AcquisitionRanges = field(default_factory=AcquisitionRanges)

    def __post_init__(self) -> None:
        check_size(self.size)
        for name, value in asdict(self.acquisition).items():
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ConfigError(f"PhantomConfig.acquisition.{name} range {value} is reversed.",
                                  fix="give (low, high) with low <= high.")
        if self.acquisition.speckle_scale <= 0:
            raise ConfigError("PhantomConfig.acquisition.speckle_scale must be > 0.")


@dataclass(frozen=True)
class PhantomSample:
    """One labelled phantom image.

    Attributes:
        image: H × W uint8 B-mode image (0 outside the scan sector).
        label: segmentation: H × W uint8 class map; classification: int; detection: (x0, y0, x1, y1) float
            pixel box (edges: the object covers columns x0 .. x1-1); regression: tuple of K (x, y) float
            pixel points (pixel centres at integers).
        meta: probe, preset, sector geometry, scanner settings, class name (JSON-serialisable).
    """

    task_id: str
    image: np.ndarray
    label: object
    meta: dict


def check_size(size: int) -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ConfigError(f"Phantom image size {size!r} is not supported.",
                          fix=f"use an integer between {MIN_SIZE} and {MAX_SIZE} (default 256).")
    return int(size)


def finish_label(spec: TaskSpec, source: object, geom: Geometry) -> object:
    """Turn a drawer's label source into the task's label, cropped to the scan sector."""
    if spec.kind is TaskKind.SEGMENTATION:
        return np.asarray(source, np.uint8) * geom.mask
    if spec.kind is TaskKind.CLASSIFICATION:
        return int(source)  # type: ignore[call-overload]
    if spec.kind is TaskKind.DETECTION:
        return mask_box(np.asarray(source) * geom.mask)
    pts = np.clip(np.asarray(source, np.float64), 0.0, geom.size - 1.0)
    return tuple((float(x), float(y)) for x, y in pts)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight box (x0, y0, x1, y1) of a non-empty mask, in pixel edges."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        raise RuntimeError("detection object left the image")  # drawers keep objects inside the sector
    return float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)


def sample_meta(spec: TaskSpec, drawn: Drawn, acq_meta: dict, label: object) -> dict:
    geom = drawn.scene.geom
    meta = {"task_id": spec.id, "probe": geom.probe, "preset": geom.preset, "variant": drawn.scene.variant,
            "size": geom.size, "sector": geom.meta(), **acq_meta}
    if spec.kind is TaskKind.CLASSIFICATION:
        meta["class_name"] = spec.class_names[int(label)]  # type: ignore[call-overload]
    return meta


#: the file of a phantom set that records each image's physical scale (mm per pixel) and exact measurements
TRUTH = "phantom-truth.json"


def mm_per_pixel(meta: dict) -> float:
    """The physical size of one pixel of a phantom image (mm; pixels are square): the imaged depth (the
    acquisition's ``depth_cm``) over the sector's depth in pixels (skin line to bottom). A cine frame's probe
    motion (``meta["motion"]``, output -> scene) may zoom: one output pixel then spans ``sqrt(|det|)`` scene
    pixels, and the scale follows it, as a scanner's calibration follows its zoom."""
    sector = meta["sector"]
    depth_px = sector["r1"] - sector["r0"] if sector["type"] == "fan" else sector["y1"] - sector["y0"]
    mm = float(meta["depth_cm"]) * 10.0 / float(depth_px)
    if "motion" in meta:
        (a, b, _), (c, d, _) = meta["motion"]
        mm *= math.sqrt(abs(a * d - b * c))
    return mm


def generate_sample(task_id: str, rng: np.random.Generator, config: PhantomConfig = PhantomConfig()) -> PhantomSample:
    """Draw one labelled phantom image of ``task_id`` (a ConfigError lists the valid ids)."""
    spec = get_task(task_id)
    drawn = DRAWERS[spec.id](rng, config.size)
    geom = drawn.scene.geom
    echo, spec_map, atten = drawn.scene.maps()
    acq = sample_acquisition(rng, geom, config.acquisition)
    image = render(echo, spec_map, atten, geom, acq, rng)
    label = finish_label(spec, drawn.label, geom)
    meta = sample_meta(spec, drawn, acq.meta(), label)
    if drawn.truth:
        meta["truth_px"] = {k: [round(float(v), 4), kind] for k, (v, kind) in drawn.truth.items()}
    return PhantomSample(spec.id, image, label, meta)


def sample_rng(seed: int, split: str, task_id: str, index: int) -> np.random.Generator:
    """The RNG of one data set image: depends only on (seed, split, task, index)."""
    task_no = [t.id for t in ALL_TASKS].index(task_id)
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, SPLIT_NUMBERS[split], task_no, int(index)])


def split_counts(per_task: int, val_fraction: float) -> dict[str, int]:
    """Images per task and split: ``per_task`` in train, ``max(1, round(per_task * val_fraction))`` in val
    (0 when ``val_fraction`` is 0)."""
    if not isinstance(per_task, (int, np.integer)) or per_task < 1:
        raise ConfigError(f"per_task must be a positive integer, got {per_task!r}.")
    if not 0.0 <= val_fraction <= 1.0:
        raise ConfigError(f"val_fraction must be within [0, 1], got {val_fraction!r}.")
    val = 0 if val_fraction == 0 else max(1, round(per_task * val_fraction))
    return {"train": int(per_task), "val": int(val)}


def generator_sha256() -> str:
    """The phantom generator's version: sha256 of its source files (the code that draws every image). A set
    written by other code is another data set, whatever folder it sits in."""
    import hashlib
    from importlib import resources

    h = hashlib.sha256()
    for f in sorted((p for p in resources.files(__package__).iterdir() if p.name.endswith(".py")), key=lambda p: p.name):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def generate_dataset(out: str | os.PathLike, per_task: int = 4, seed: int = 0, size: int = 256,
                     tasks: Sequence[TaskSpec] | None = None, val_fraction: float = 0.2,
                     progress: bool = True, val_per_task: int | None = None,
                     acquisition: AcquisitionRanges | None = None) -> dict:
    """Write a phantom data set in the FMC-UIA layout: ``out/train`` and ``out/val``.

    The set is built in a hidden sibling folder ``.<name>.partial-<pid>`` and renamed to ``out`` at the end,
    so an interrupted run never looks like a finished set. An existing ``out`` is replaced only if it is a
    previous phantom set (has ``phantom.json``) or empty; anything else raises a ConfigError.

    Returns:
        {"root", "splits": {"train": {task_id: n}, "val": {...}}, "seconds", "frames_per_s"}.
    """
    out = Path(out)
    config = PhantomConfig(size=check_size(size), acquisition=acquisition or AcquisitionRanges())
    specs = tuple(ALL_TASKS if tasks is None else tasks)
    if not specs:
        raise ConfigError("No tasks to generate.", fix="pass tasks=None for all 27 tasks.")
    specs = tuple(get_task(t.id if isinstance(t, TaskSpec) else str(t)) for t in specs)
    counts = split_counts(per_task, val_fraction)
    if val_per_task is not None:  # an explicit held-out size (e.g. a gate set larger than the training split)
        if val_per_task < 0:
            raise ConfigError(f"val_per_task must be >= 0, got {val_per_task!r}.")
        counts["val"] = int(val_per_task)
    _check_replaceable(out)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    try:
        written = _write_splits(tmp, specs, counts, seed, config, progress)
        seconds = time.perf_counter() - start
        total = sum(n for split in written.values() for n in split.values())
        info = {"root": str(out), "splits": written, "seconds": round(seconds, 3),
                "frames_per_s": round(total / max(seconds, 1e-9), 1)}
        (tmp / MARKER).write_text(json.dumps({"generator": "usedge.data.phantom",
                                              "generator_sha256": generator_sha256(), "seed": seed, "size": size,
                                              "per_task": per_task, "val_fraction": val_fraction,
                                              "val_per_task": counts["val"],
                                              "tasks": [s.id for s in specs], "splits": written,
                                              **({"acquisition": asdict(acquisition)} if acquisition else {})},
                                             indent=2) + "\n")
        swap_in_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _write_splits(root: Path, specs: Sequence[TaskSpec], counts: dict[str, int], seed: int,
                  config: PhantomConfig, progress: bool) -> dict[str, dict[str, int]]:
    jobs = [(split, spec.id, i) for split, n in counts.items() for spec in specs for i in range(n)]
    written: dict[str, dict[str, int]] = {split: {} for split in counts}
    writers = {split: SplitWriter(root, split) for split in counts if counts[split]}
    truths: dict[str, dict[str, dict]] = {split: {} for split in counts}
    with _progress(progress, len(jobs)) as advance:
        for split, task_id, i in jobs:
            sample = generate_sample(task_id, sample_rng(seed, split, task_id, i), config)
            writers[split].add(task_id, sample.image, sample.label, name=f"{task_id}_{i:05d}")
            truths[split][f"{task_id}_{i:05d}"] = image_truth(sample.meta)
            written[split][task_id] = written[split].get(task_id, 0) + 1
            advance()
    for writer in writers.values():
        writer.close()
    (root / TRUTH).write_text(json.dumps(truths, indent=1) + "\n")
    return written


def image_truth(meta: dict) -> dict:
    """One image's physical scale and the exact answer to its clinical measurements (lengths in mm, angles in
    degrees) from the generator's own geometry: ``{"mm_per_px": mm, "truth": {name: value}}``."""
    mm = mm_per_pixel(meta)
    values = {k: round(v * mm if kind == "length" else v, 4) for k, (v, kind) in meta.get("truth_px", {}).items()}
    return {"mm_per_px": round(mm, 6), "truth": values}


def _read_truth(root: str | os.PathLike) -> dict | None:
    path = Path(root) / TRUTH
    return json.loads(path.read_text()) if path.is_file() else None


def phantom_scales(root: str | os.PathLike) -> dict[str, dict[str, float]] | None:
    """A phantom set's mm per pixel of every image (``{split: {image stem: mm}}``), or None for a set written
    before the phantom recorded it (or any other set)."""
    data = _read_truth(root)
    return None if data is None else {s: {k: v["mm_per_px"] for k, v in d.items()} for s, d in data.items()}


def phantom_truth(root: str | os.PathLike) -> dict[str, dict[str, dict[str, float]]] | None:
    """A phantom set's exact measurements of every image (``{split: {image stem: {name: value}}}``; mm and
    degrees), from the generator's geometry, or None for a set written before the phantom recorded them."""
    data = _read_truth(root)
    return None if data is None else {s: {k: v["truth"] for k, v in d.items()} for s, d in data.items()}


class _progress:
    """rich progress bar (or nothing); the context value is an ``advance()`` callable."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.bar = enabled, total, None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("phantom"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("phantom", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _check_replaceable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder.", fix="choose another --out.")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(f"{out} exists, is not empty and is not a phantom data set (no {MARKER}).",
                          fix="choose an empty or new folder; a previous phantom set there is replaced.")
