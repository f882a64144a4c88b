"""A labelled contact sheet of phantom samples (OpenCV only): one tile per sample, titled with its task id,
with its label drawn over the image (mask contours, box, numbered points or class name)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from usedge.data.phantom.generator import PhantomConfig, PhantomSample, generate_sample, sample_rng
from usedge.tasks import ALL_TASKS, TaskKind, TaskSpec, get_task

#: BGR colours of classes 1.. (segmentation) and of points 1..
COLOURS = ((60, 220, 60), (60, 200, 255), (255, 120, 60), (200, 80, 255), (80, 255, 255))


def draw_label(image: np.ndarray, spec: TaskSpec, label: object) -> np.ndarray:
    """BGR copy of a grayscale phantom image with its label drawn on it."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if spec.kind is TaskKind.SEGMENTATION:
        mask = np.asarray(label)
        for c in range(1, spec.num_classes):
            contours, _ = cv2.findContours((mask == c).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, COLOURS[(c - 1) % len(COLOURS)], 1, cv2.LINE_AA)
    elif spec.kind is TaskKind.DETECTION:
        x0, y0, x1, y1 = (int(round(v)) for v in label)  # type: ignore[union-attr]
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), COLOURS[1], 1, cv2.LINE_AA)
    elif spec.kind is TaskKind.REGRESSION:
        for k, (x, y) in enumerate(label):  # type: ignore[union-attr]
            p = (int(round(x)), int(round(y)))
            cv2.circle(out, p, 4, COLOURS[k % len(COLOURS)], 1, cv2.LINE_AA)
            cv2.putText(out, str(k + 1), (p[0] + 5, p[1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        COLOURS[k % len(COLOURS)], 1, cv2.LINE_AA)
    else:
        text = spec.class_names[int(label)]  # type: ignore[call-overload]
        cv2.putText(out, text, (4, out.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, COLOURS[1], 1, cv2.LINE_AA)
    return out


def montage(samples: Sequence[PhantomSample] | None = None, cols: int = 6, seed: int = 0, size: int = 256,
            title_px: int = 18) -> np.ndarray:
    """A BGR grid of labelled tiles; by default one sample of each of the 27 tasks (train split RNG)."""
    if samples is None:
        config = PhantomConfig(size=size)
        samples = [generate_sample(t.id, sample_rng(seed, "train", t.id, 0), config) for t in ALL_TASKS]
    tiles = []
    for s in samples:
        tile = draw_label(s.image, get_task(s.task_id), s.label)
        head = np.zeros((title_px, tile.shape[1], 3), np.uint8)
        cv2.putText(head, s.task_id, (3, title_px - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(cv2.copyMakeBorder(np.vstack([head, tile]), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(40, 40, 40)))
    rows = -(-len(tiles) // cols)
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (rows * cols - len(tiles))
    return np.vstack([np.hstack(tiles[r * cols:(r + 1) * cols]) for r in range(rows)])


def write_montage(path: str | os.PathLike, **kwargs) -> Path:
    """Write :func:`montage` as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), montage(**kwargs), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path}")
    return path
