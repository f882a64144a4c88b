"""The FMC-UIA challenge data layout: read, validate and write it exactly.

Layout (one split)::

    <root>/<split>/csv_files/<any>.csv          one or more CSVs; paths inside are relative to csv_files/
    <root>/<split>/Classification/<dataset>/...
    <root>/<split>/Segmentation/{Two,Three,Four,Five}/<dataset>/{IMAGES,MASKS}/...
    <root>/<split>/Detection/<dataset>/...
    <root>/<split>/Regression/<dataset>/...

Columns: ``image_path, task_id, task_name, num_classes`` and, by kind, ``mask_path`` (segmentation: a
grayscale PNG whose pixel value is the class index), ``mask`` (classification: the integer label),
``x_min, y_min, x_max, y_max`` (detection, original pixels) or ``point_1_xy ... point_K_xy``
(regression: JSON ``"[x, y]"`` in original pixels). ``task_name`` is ``segmentation``,
``classification``, ``detection`` or ``Regression`` (capital R, as the challenge writes it).

Bad rows are never skipped silently: :func:`read_split` returns every :class:`Problem` with its file
and line, :func:`load_split` raises on any, and :func:`validate_split` also opens every image and mask.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usedge._io import atomic_write_text, read_image, write_png
from usedge.errors import ConfigError, DataError
from usedge.tasks import ALL_TASKS, TASKS, TaskKind, TaskSpec, get_task

SPLITS = ("train", "val")
CSV_DIR = "csv_files"
BASE_COLUMNS = ("image_path", "task_id", "task_name", "num_classes")
BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")


@dataclass(frozen=True)
class Problem:
    """One bad row or file: where it is and what is wrong."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Sample:
    """One labelled image of the challenge layout.

    Exactly one label field is set, by kind: ``mask_path`` (segmentation), ``label`` (classification),
    ``box`` (detection, xyxy original pixels) or ``points`` (regression, xy original pixels).
    ``image_rel`` / ``mask_rel`` are the paths exactly as written in the CSV.
    """

    task_id: str
    image_path: Path
    image_rel: str
    mask_path: Path | None = None
    mask_rel: str | None = None
    label: int | None = None
    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] | None = None
    csv_file: str = ""
    line: int = 0

    @property
    def task(self) -> TaskSpec:
        return get_task(self.task_id)

    def load_image(self) -> np.ndarray:
        """The image as stored (uint8/uint16; H×W or H×W×3 BGR)."""
        return read_image(self.image_path)

    def load_mask(self) -> np.ndarray:
        """The segmentation class map (H×W uint8)."""
        if self.mask_path is None:
            raise DataError(f"{self.csv_file}:{self.line}: task {self.task_id} has no mask.")
        return read_image(self.mask_path, grayscale=True)

    def target(self) -> object:
        """The ground truth as the metrics and the training transforms take it, in original pixels: the class map
        (H×W uint8), the class index, the box (4, float64 xyxy) or the points (K×2 float64)."""
        kind = self.task.kind
        if kind is TaskKind.SEGMENTATION:
            return self.load_mask()
        if kind is TaskKind.CLASSIFICATION:
            return self.label
        if kind is TaskKind.DETECTION:
            return np.asarray(self.box, np.float64)
        return np.asarray(self.points, np.float64)


@dataclass
class SplitReport:
    """What :func:`read_split` found: the good samples and every problem."""

    samples: list[Sample] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> Counter:
        return Counter(s.task_id for s in self.samples)


# ----------------------------------------------------------------------------------------------------
# Reading


def split_dir(root: str | os.PathLike, split: str) -> Path:
    """``<root>/<split>``; also accepts ``root`` that already is a split folder (has csv_files/)."""
    root = Path(root)
    if (root / CSV_DIR).is_dir() and not (root / split / CSV_DIR).is_dir():
        return root
    return root / split


def find_splits(root: str | os.PathLike) -> list[str]:
    """Splits present under ``root`` (those with a csv_files/ folder)."""
    return [s for s in SPLITS if (Path(root) / s / CSV_DIR).is_dir()]


def read_split(root: str | os.PathLike, split: str = "train", check_files: bool = True) -> SplitReport:
    """Parse every CSV of one split; collect samples and problems (nothing is skipped silently).

    Args:
        root: data set root (holding train/ and val/) or a split folder itself.
        split: ``train`` or ``val``.
        check_files: also report image / mask paths that do not exist.
    """
    folder = split_dir(root, split)
    csv_dir = folder / CSV_DIR
    report = SplitReport()
    if not csv_dir.is_dir():
        report.problems.append(Problem(str(csv_dir), 0, "csv_files/ folder not found (not an FMC-UIA split)."))
        return report
    csv_files = sorted(csv_dir.glob("*.csv"))
    if not csv_files:
        report.problems.append(Problem(str(csv_dir), 0, "no *.csv files in csv_files/."))
    for path in csv_files:
        _read_csv(path, report, check_files)
    _check_unique(report)
    return report


def _check_unique(report: SplitReport) -> None:
    """Each image once per task, each mask file one image's: a repeated row counted twice in every score (and an
    image listed with two labels once per label), and two rows sharing a mask had one prediction written over
    the other's."""
    from collections import defaultdict

    images, masks = defaultdict(list), defaultdict(set)
    for s in report.samples:
        images[s.task_id, s.image_path.resolve()].append(s)
        if s.mask_path is not None:
            masks[s.task_id, s.mask_path.resolve()].add(s.image_path.resolve())
    for (task, image), rows in images.items():
        if len(rows) > 1:
            labels = {(r.label, r.box, r.points, r.mask_rel) for r in rows}
            what = "with different labels" if len(labels) > 1 else "identically"
            report.problems.append(Problem(str(image), 0, f"{task}: listed {len(rows)} times {what}; each image "
                                                          "once per task (a repeated row counts twice in scores)"))
    for (task, mask), owners in masks.items():
        if len(owners) > 1:
            report.problems.append(Problem(str(mask), 0, f"{task}: mask shared by {len(owners)} images "
                                                         f"({', '.join(sorted(p.name for p in owners)[:3])}); "
                                                         "each segmentation row needs its own mask file"))


def load_split(root: str | os.PathLike, split: str = "train", tasks: Iterable[str] | None = None) -> list[Sample]:
    """Read one split and raise a DataError listing every problem if there is any.

    Args:
        tasks: keep only these task ids (None keeps all).
    """
    report = read_split(root, split)
    if report.problems:
        shown = "\n  ".join(str(p) for p in report.problems[:50])
        more = f"\n  ... and {len(report.problems) - 50} more" if len(report.problems) > 50 else ""
        raise DataError(
            f"{len(report.problems)} problem(s) in {split_dir(root, split)}:\n  {shown}{more}",
            fix="fix or remove these rows (`usedge data validate DIR` lists them all).",
        )
    keep = set(tasks) if tasks is not None else None
    return [s for s in report.samples if keep is None or s.task_id in keep]


def require_samples(samples: list[Sample], root, split: str, tasks: Iterable[str]) -> list[Sample]:
    """``samples`` if there are any, else a DataError: an evaluation of no rows is not a result."""
    if not samples:
        raise DataError(f"{split_dir(root, split)} has no rows for the tasks asked ({', '.join(tasks) or 'none'}).",
                        fix="check --split and --tasks against `usedge data validate DIR`.")
    return samples


def _read_csv(path: Path, report: SplitReport, check_files: bool) -> None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(Problem(str(path), 0, f"cannot read CSV: {exc}"))
        return
    if "\x00" in text:   # the csv module stops at the first NUL ("line contains NUL"), losing the rest
        line = text[:text.index("\x00")].count("\n") + 1
        report.problems.append(Problem(str(path), line, "holds a NUL byte: not a text CSV (damaged or binary)"))
        return
    reader = csv.DictReader(io.StringIO(text))
    try:
        missing = [c for c in BASE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            report.problems.append(Problem(str(path), 1, f"missing column(s) {missing}; header is {reader.fieldnames}"))
            return
        for row in reader:
            line = reader.line_num
            try:
                report.samples.append(_parse_row(row, path, line, check_files))
            except DataError as exc:
                report.problems.append(Problem(str(path), line, exc.message))
    except csv.Error as exc:   # a field above the csv module's limit (131 072 characters), a broken quote
        report.problems.append(Problem(str(path), reader.line_num, f"cannot be parsed as CSV: {exc}"))


def _parse_row(row: dict[str, str], csv_path: Path, line: int, check_files: bool) -> Sample:
    task_id = (row.get("task_id") or "").strip()
    if task_id not in TASKS:
        raise DataError(TASKS.unknown_message(task_id) + " (not one of the 27 FMC-UIA task ids)")
    spec = get_task(task_id)
    try:
        kind = TaskKind.from_csv(row.get("task_name") or "")
    except ConfigError as exc:
        raise DataError(exc.message) from None
    if kind is not spec.kind:
        raise DataError(f"task_name '{row['task_name']}' does not match task {task_id} ({spec.kind.csv_name}).")
    num = _parse_int(row.get("num_classes"), "num_classes")
    if num != spec.csv_num_classes:
        raise DataError(f"num_classes {num} does not match task {task_id} (expects {spec.csv_num_classes}).")
    base = csv_path.parent
    image_rel = (row.get("image_path") or "").strip()
    if not image_rel:
        raise DataError("empty image_path.")
    image_path = _resolve(base, image_rel, check_files, "image")
    common = dict(task_id=task_id, image_path=image_path, image_rel=image_rel, csv_file=str(csv_path), line=line)
    if kind is TaskKind.SEGMENTATION:
        mask_rel = (row.get("mask_path") or "").strip()
        if not mask_rel:
            raise DataError("segmentation row without mask_path.")
        return Sample(**common, mask_path=_resolve(base, mask_rel, check_files, "mask"), mask_rel=mask_rel)
    if kind is TaskKind.CLASSIFICATION:
        label = _parse_int(row.get("mask"), "mask (classification label)")
        if not 0 <= label < spec.num_classes:
            raise DataError(f"class label {label} outside 0..{spec.num_classes - 1} for {task_id}.")
        return Sample(**common, label=label)
    if kind is TaskKind.DETECTION:
        box = tuple(_parse_float(row.get(c), c) for c in BOX_COLUMNS)
        if not (box[0] < box[2] and box[1] < box[3]):
            raise DataError(f"degenerate box {box}: need x_min < x_max and y_min < y_max.")
        return Sample(**common, box=box)  # type: ignore[arg-type]
    points = tuple(_parse_point(row.get(f"point_{k + 1}_xy"), k + 1) for k in range(spec.num_points))
    return Sample(**common, points=points)


def _resolve(base: Path, rel: str, check: bool, what: str) -> Path:
    path = (base / rel).resolve()
    if check and not path.is_file():
        raise DataError(f"{what} file not found: {rel} (resolved to {path}).")
    return path


def _parse_int(value: str | None, column: str) -> int:
    try:
        number = float((value or "").strip())
    except ValueError:
        raise DataError(f"column {column} is {value!r}, not an integer.") from None
    if not number.is_integer():
        raise DataError(f"column {column} is {value!r}, not an integer.")
    return int(number)


def _parse_float(value: str | None, column: str) -> float:
    try:
        number = float((value or "").strip())
    except ValueError:
        raise DataError(f"column {column} is {value!r}, not a number.") from None
    if not math.isfinite(number):
        raise DataError(f"column {column} is {value!r}, not a finite number.")
    return number


def _parse_point(value: str | None, k: int) -> tuple[float, float]:
    column = f"point_{k}_xy"
    if value is None or not value.strip():
        raise DataError(f"missing {column}.")
    try:
        xy = json.loads(value)
    except json.JSONDecodeError:
        raise DataError(f"{column} is {value!r}, not JSON like \"[x, y]\".") from None
    # bool is an int subclass in Python: [true, false] would read as (1.0, 0.0) without the explicit check
    if not (isinstance(xy, list) and len(xy) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xy)):
        raise DataError(f"{column} is {value!r}; expected a JSON list of two numbers \"[x, y]\".")
    if not all(math.isfinite(v) for v in xy):
        raise DataError(f"{column} is {value!r}; coordinates must be finite.")
    return float(xy[0]), float(xy[1])


# ----------------------------------------------------------------------------------------------------
# Validation (opens every file)


def validate_split(root: str | os.PathLike, split: str = "train") -> SplitReport:
    """Read a split and check every file's content: masks within num_classes, boxes and points inside
    their image, images decodable, mask size equal to image size."""
    report = read_split(root, split)
    good: list[Sample] = []
    for sample in report.samples:
        problem = _check_content(sample)
        if problem:
            report.problems.append(Problem(sample.csv_file, sample.line, problem))
        else:
            good.append(sample)
    report.samples = good
    return report


def _check_content(sample: Sample) -> str | None:
    try:
        image = sample.load_image()
    except DataError as exc:
        return exc.message
    h, w = image.shape[:2]
    spec = sample.task
    if sample.mask_path is not None:
        try:
            mask = sample.load_mask()
        except DataError as exc:
            return exc.message
        if mask.shape[:2] != (h, w):
            return f"mask {sample.mask_rel} is {mask.shape[1]}x{mask.shape[0]}, image is {w}x{h}."
        top = int(mask.max())
        if top >= spec.num_classes:
            return f"mask {sample.mask_rel} has value {top} >= num_classes {spec.num_classes}."
    if sample.box is not None:
        x0, y0, x1, y1 = sample.box
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            return f"box {sample.box} lies outside the {w}x{h} image."
    for k, (x, y) in enumerate(sample.points or (), start=1):
        if not (0 <= x <= w and 0 <= y <= h):
            return f"point_{k}_xy ({x}, {y}) lies outside the {w}x{h} image."
    return None


# ----------------------------------------------------------------------------------------------------
# Writing


def csv_columns(spec: TaskSpec) -> tuple[str, ...]:
    """The CSV columns of one task, in the challenge's order."""
    if spec.kind is TaskKind.SEGMENTATION:
        return (*BASE_COLUMNS, "mask_path")
    if spec.kind is TaskKind.CLASSIFICATION:
        return (*BASE_COLUMNS, "mask")
    if spec.kind is TaskKind.DETECTION:
        return (*BASE_COLUMNS, *BOX_COLUMNS)
    return (*BASE_COLUMNS, *(f"point_{k + 1}_xy" for k in range(spec.num_points)))


class SplitWriter:
    """Writes labelled images of any task into one split of the challenge layout.

    Images and masks are written as PNG as they are added; the CSVs (one per task,
    ``csv_files/<task_id>.csv``) are written atomically by :meth:`close`.

    Example:
        >>> with SplitWriter("/tmp/ds", "train") as w:               # doctest: +SKIP
        ...     w.add("fetal_head", image, mask)
        ...     w.add("breast_2cls", image, 1)
    """

    def __init__(self, root: str | os.PathLike, split: str = "train") -> None:
        if split not in SPLITS:
            raise ConfigError(f"Unknown split '{split}'.", fix=f"use one of: {', '.join(SPLITS)}")
        self.folder = Path(root) / split
        self.rows: dict[str, list[dict[str, str]]] = {}

    def __enter__(self) -> "SplitWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    def add(self, task_id: str, image: np.ndarray, label: object, name: str | None = None) -> dict[str, str]:
        """Write one image and its label; return the CSV row.

        Args:
            label: segmentation: H×W class map; classification: int; detection: (x0, y0, x1, y1) pixels;
                regression: K (x, y) pixel points.
            name: file stem (default: ``<task_id>_<index:05d>``).
        """
        spec = get_task(task_id)
        rows = self.rows.setdefault(task_id, [])
        stem = name or f"{task_id}_{len(rows):05d}"
        image_rel = f"{spec.data_folder}/IMAGES/{stem}.png"
        write_png(self.folder / image_rel, image)
        row = {"image_path": f"../{image_rel}", "task_id": task_id, "task_name": spec.kind.csv_name,
               "num_classes": str(spec.csv_num_classes)}
        row.update(self._label_columns(spec, stem, image, label))
        rows.append(row)
        return row

    def _label_columns(self, spec: TaskSpec, stem: str, image: np.ndarray, label: object) -> dict[str, str]:
        if spec.kind is TaskKind.SEGMENTATION:
            mask = np.asarray(label)
            if mask.shape != image.shape[:2]:
                raise DataError(f"mask shape {mask.shape} differs from image shape {image.shape[:2]}.")
            mask_rel = f"{spec.data_folder}/MASKS/mask_{stem}.png"
            write_png(self.folder / mask_rel, mask.astype(np.uint8))
            return {"mask_path": f"../{mask_rel}"}
        if spec.kind is TaskKind.CLASSIFICATION:
            return {"mask": str(int(label))}  # type: ignore[call-overload]
        if spec.kind is TaskKind.DETECTION:
            return {c: _num(v) for c, v in zip(BOX_COLUMNS, label)}  # type: ignore[call-overload]
        points = list(label)  # type: ignore[call-overload]
        if len(points) != spec.num_points:
            raise DataError(f"{spec.id} needs {spec.num_points} points, got {len(points)}.")
        return {f"point_{k + 1}_xy": json.dumps([_round(x), _round(y)]) for k, (x, y) in enumerate(points)}

    def close(self) -> list[Path]:
        """Write the CSVs atomically; return their paths."""
        written = []
        for task_id, rows in self.rows.items():
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=csv_columns(get_task(task_id)), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            written.append(atomic_write_text(self.folder / CSV_DIR / f"{task_id}.csv", buf.getvalue()))
        return written


def _round(v: float) -> float:
    return round(float(v), 3)


def _num(v: float) -> str:
    return repr(_round(v))


# ----------------------------------------------------------------------------------------------------
# Summary


def summarize(samples: Sequence[Sample]) -> list[dict[str, object]]:
    """One row per task present: id, kind, organ, count, and label balance."""
    by_task: dict[str, list[Sample]] = {}
    for s in samples:
        by_task.setdefault(s.task_id, []).append(s)
    rows = []
    for spec in (t for t in ALL_TASKS if t.id in by_task):
        items = by_task[spec.id]
        rows.append({"task_id": spec.id, "kind": spec.kind.value, "organ": spec.organ, "images": len(items),
                     "labels": _label_balance(spec, items)})
    return rows


def _label_balance(spec: TaskSpec, items: list[Sample]) -> str:
    if spec.kind is TaskKind.CLASSIFICATION:
        counts = Counter(s.label for s in items)
        return " ".join(f"{spec.class_names[c]}:{counts.get(c, 0)}" for c in range(spec.num_classes))
    if spec.kind is TaskKind.SEGMENTATION:
        return f"{spec.num_classes - 1} fg class(es)"
    if spec.kind is TaskKind.DETECTION:
        return "1 box/image"
    return f"{spec.num_points} points/image"
