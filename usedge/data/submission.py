"""Prediction files in the FMC-UIA challenge's submission format.

Written under one output folder::

    <out>/Segmentation/<Two..Five>/<dataset>/MASKS/<name>.png   class-id PNG at the original size, at the
                                                                 CSV's mask_path with the leading ../ removed
    <out>/classification_predictions.json   [{image_path, task_id, predicted_class, predicted_probs}]
    <out>/detection_predictions.json        [{image_path, task_id, bbox_normalized, bbox_pixels}]  (xyxy)
    <out>/regression_predictions.json       [{image_path, task_id, predicted_points_normalized,
                                              predicted_points_pixels}]  (flat [x1, y1, x2, y2, ...])

``image_path`` is the path exactly as the CSV wrote it. JSON files are written atomically by
:meth:`SubmissionWriter.close`; masks as they are added.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from usedge._io import atomic_write_json, read_image, write_png
from usedge.data.fmcuia import Sample
from usedge.errors import DataError
from usedge.tasks import TaskKind

JSON_FILES = {
    TaskKind.CLASSIFICATION: "classification_predictions.json",
    TaskKind.DETECTION: "detection_predictions.json",
    TaskKind.REGRESSION: "regression_predictions.json",
}


def mask_output_path(out: str | os.PathLike, mask_rel: str) -> Path:
    """Where a predicted mask goes: the CSV's mask path with leading ``../`` removed, under ``out``.

    Raises:
        DataError: the path would leave ``out`` (e.g. ``../../etc/x.png`` or an absolute path).
    """
    rel = mask_rel.replace("\\", "/")
    if rel.startswith("../"):
        rel = rel[3:]
    out = Path(out).resolve()
    target = (out / rel).resolve()
    if Path(rel).is_absolute() or not target.is_relative_to(out):
        raise DataError(f"mask path {mask_rel!r} points outside the output folder {out}.",
                        fix="mask paths must be relative, e.g. ../Segmentation/Two/<dataset>/MASKS/x.png")
    return target


class SubmissionWriter:
    """Collects predictions for samples of the challenge layout and writes the submission files."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.records: dict[TaskKind, list[dict]] = {k: [] for k in JSON_FILES}
        self.masks_written = 0

    def __enter__(self) -> "SubmissionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    def add_segmentation(self, sample: Sample, class_map: np.ndarray) -> Path:
        """Write the predicted class map (must already be at the original image size)."""
        if sample.mask_rel is None:
            raise DataError(f"{sample.task_id} sample {sample.image_rel} has no mask_path to write to.")
        class_map = np.asarray(class_map)
        if class_map.ndim != 2:
            raise DataError(f"class map for {sample.image_rel} must be H×W, got shape {class_map.shape}.")
        self.masks_written += 1
        return write_png(mask_output_path(self.out, sample.mask_rel), class_map.astype(np.uint8))

    def add_classification(self, sample: Sample, probs: Sequence[float]) -> None:
        probs = [float(p) for p in probs]
        self.records[TaskKind.CLASSIFICATION].append({
            "image_path": sample.image_rel, "task_id": sample.task_id,
            "predicted_class": int(np.argmax(probs)), "predicted_probs": probs,
        })

    def add_detection(self, sample: Sample, box_pixels: Sequence[float], image_size: tuple[int, int]) -> None:
        """Args: box_pixels: xyxy in original pixels; image_size: (width, height)."""
        w, h = image_size
        box = [float(v) for v in box_pixels]
        self.records[TaskKind.DETECTION].append({
            "image_path": sample.image_rel, "task_id": sample.task_id,
            "bbox_normalized": [box[0] / w, box[1] / h, box[2] / w, box[3] / h], "bbox_pixels": box,
        })

    def add_regression(self, sample: Sample, points_pixels: Sequence[Sequence[float]],
                       image_size: tuple[int, int]) -> None:
        """Args: points_pixels: K (x, y) in original pixels; image_size: (width, height)."""
        w, h = image_size
        flat = [float(v) for xy in points_pixels for v in xy]
        norm = [v / (w if i % 2 == 0 else h) for i, v in enumerate(flat)]
        self.records[TaskKind.REGRESSION].append({
            "image_path": sample.image_rel, "task_id": sample.task_id,
            "predicted_points_normalized": norm, "predicted_points_pixels": flat,
        })

    def close(self) -> dict[str, int]:
        """Write the three JSON files atomically; return how many records each holds (plus masks)."""
        counts = {"segmentation_masks": self.masks_written}
        for kind, name in JSON_FILES.items():
            atomic_write_json(self.out / name, self.records[kind])
            counts[name] = len(self.records[kind])
        return counts


def read_submission(out: str | os.PathLike) -> dict[str, list[dict]]:
    """Read the three JSON files back (missing files read as empty lists)."""
    result = {}
    for name in JSON_FILES.values():
        path = Path(out) / name
        try:
            result[name] = json.loads(path.read_text()) if path.is_file() else []
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON: {exc}") from None
    return result


def read_predicted_mask(out: str | os.PathLike, sample: Sample) -> np.ndarray:
    """The predicted class map written for ``sample``."""
    if sample.mask_rel is None:
        raise DataError(f"{sample.task_id} sample {sample.image_rel} has no mask_path.")
    return read_image(mask_output_path(out, sample.mask_rel), grayscale=True)
