"""Typed results of one frame, in ORIGINAL image pixels, that serialise to the challenge's JSON shapes.

The same field names appear in torch, ONNX, TensorRT outputs (``<task>.<field>``) and in stream messages
(``FrameResult.to_json()``): segmentation -> mask/area/contours, classification -> predicted_class/probs,
detection -> bbox_pixels/bbox_normalized/score, regression -> predicted_points_pixels/_normalized.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from usedge.tasks import TaskKind, get_task


class SegmentationResult:
    """A task's class map: ``mask`` is uint8 H×W at the frame's size (0 = background).

    Give the mask, or ``decode=`` a function that makes it: the Predictor defers each mask's decoding
    (resizing logit planes to the frame, argmax) to the first read of :attr:`mask`, so a caller that reads
    some results pays only for those; the mask is then kept.
    """

    __slots__ = ("task", "class_names", "_mask", "_decode", "_confidence")

    def __init__(self, task: str, mask: np.ndarray | None = None, class_names: tuple[str, ...] = (), *,
                 decode: Callable[[], np.ndarray] | None = None) -> None:
        if (mask is None) == (decode is None):
            raise ValueError("SegmentationResult needs a mask or a decode function (exactly one).")
        self.task, self.class_names = task, tuple(class_names)
        self._mask, self._decode = mask, decode
        self._confidence: float | Callable[[], float] | None = None

    def set_confidence(self, confidence: float | Callable[[], float]) -> None:
        """The mask's confidence, or a function computing it on first read (the Predictor gives one)."""
        self._confidence = confidence

    @property
    def confidence(self) -> float | None:
        """Mean top-class probability over the pixels the mask calls foreground, at the model's output
        resolution (NaN: no foreground; None: not known)."""
        if callable(self._confidence):
            self._confidence = float(self._confidence())
        return self._confidence

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:
            self._mask, self._decode = self._decode(), None
        return self._mask

    @property
    def decoded(self) -> bool:
        """Whether the mask exists yet (False: it decodes on first read of :attr:`mask`)."""
        return self._mask is not None

    def __repr__(self) -> str:
        shape = tuple(self._mask.shape) if self._mask is not None else "not decoded yet"
        return f"SegmentationResult(task={self.task!r}, mask={shape}, classes={len(self.class_names)})"

    @property
    def areas(self) -> dict[str, int]:
        """Pixels per foreground class."""
        counts = np.bincount(self.mask.ravel(), minlength=len(self.class_names))
        return {name: int(counts[i]) for i, name in enumerate(self.class_names) if i > 0}

    def contours(self, min_area: float = 4.0) -> dict[str, list[np.ndarray]]:
        """Outer contours per foreground class, each M×2 int (x, y), tiny specks dropped."""
        out: dict[str, list[np.ndarray]] = {}
        mask = self.mask
        # only the foreground's bounding box, one pixel wider (its edge is then background or the frame's edge,
        # as before): the same contours, shifted back by findContours' offset, for a fraction of the pixels
        x, y, w, h = cv2.boundingRect(mask) if mask.dtype == np.uint8 and mask.ndim == 2 else (0, 0, 0, 0)
        if w and h:
            x0, y0 = max(x - 1, 0), max(y - 1, 0)
            mask = mask[y0:min(y + h + 1, mask.shape[0]), x0:min(x + w + 1, mask.shape[1])]
        else:
            x0 = y0 = 0
        for i, name in enumerate(self.class_names[1:], start=1):
            found, _ = cv2.findContours((mask == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                        offset=(x0, y0))
            out[name] = [c.reshape(-1, 2) for c in found if cv2.contourArea(c) >= min_area]
        return out

    def to_json(self, contours: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"task_id": self.task, "kind": "segmentation", "mask_shape": list(self.mask.shape),
                             "area_pixels": self.areas}
        conf = self.confidence
        if conf is not None:
            d["confidence"] = None if not np.isfinite(conf) else round(conf, 4)
        if contours:
            d["contours"] = {k: [c.tolist() for c in v] for k, v in self.contours().items()}
        return d


@dataclass(frozen=True, eq=False)
class ClassificationResult:
    task: str
    probs: np.ndarray                    # (C,) softmax probabilities
    class_names: tuple[str, ...]
    #: the temperature the logits were divided by (fitted at export on held-out images: calibrated probabilities)
    temperature: float = 1.0

    @property
    def predicted_class(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def label(self) -> str:
        return self.class_names[self.predicted_class]

    @property
    def score(self) -> float:
        return float(self.probs[self.predicted_class])

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task, "kind": "classification", "predicted_class": self.predicted_class,
                "label": self.label, "predicted_probs": [float(p) for p in self.probs],
                "temperature": round(float(self.temperature), 4)}


@dataclass(frozen=True, eq=False)
class DetectionResult:
    task: str
    box: np.ndarray                      # (4,) xyxy pixels of the best box
    score: float
    width: int
    height: int
    boxes: np.ndarray | None = None      # M×4 xyxy pixels after NMS (top-k), when asked for
    scores: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        w, h = self.width, self.height
        box = [float(v) for v in self.box]
        d = {"task_id": self.task, "kind": "detection", "bbox_pixels": box,
             "bbox_normalized": [box[0] / w, box[1] / h, box[2] / w, box[3] / h], "score": float(self.score)}
        if self.boxes is not None:
            d["boxes_pixels"] = self.boxes.tolist()
            d["scores"] = [float(s) for s in self.scores]
        return d


@dataclass(frozen=True, eq=False)
class LandmarkResult:
    task: str
    points: np.ndarray                   # K×2 (x, y) pixels
    point_names: tuple[str, ...]
    width: int
    height: int

    def to_json(self) -> dict[str, Any]:
        flat = [float(v) for xy in self.points for v in xy]
        norm = [v / (self.width if i % 2 == 0 else self.height) for i, v in enumerate(flat)]
        return {"task_id": self.task, "kind": "regression", "point_names": list(self.point_names),
                "predicted_points_pixels": flat, "predicted_points_normalized": norm}


TaskResult = SegmentationResult | ClassificationResult | DetectionResult | LandmarkResult


@dataclass(eq=False)
class FrameResult:
    """Everything the Predictor says about one frame."""

    width: int
    height: int
    tasks: dict[str, TaskResult]
    region: tuple[int, int, int, int] | None = None      # scan region used (x0, y0, x1, y1), original pixels
    timings_ms: dict[str, float] = field(default_factory=dict)
    index: int | None = None
    timestamp_s: float | None = None
    #: the frame's clinical measurements (``usedge.measure``: objects with ``to_json()``), when it was measured
    measurements: list[Any] | None = None
    #: the measurements tracked over the stream up to this frame (name -> object with ``to_json()``)
    tracked: dict[str, Any] | None = None
    #: the frame gate's verdict (usedge.runtime.gate.GateVerdict; None: the gate is off)
    gate: Any = None
    #: where ``region`` came from: "dicom" (the frame's own), "given", "found" (usedge.data.region_finder)
    region_source: str | None = None

    @property
    def accepted(self) -> bool:
        """Whether the frame gate accepted this frame (True when the gate is off)."""
        return self.gate is None or self.gate.accepted

    def __getitem__(self, task: str) -> TaskResult:
        return self.tasks[task]

    def decode_all(self) -> FrameResult:
        """Decode every deferred segmentation mask now (the Predictor decodes them on first read); returns self."""
        for r in self.tasks.values():
            if isinstance(r, SegmentationResult) and not r.decoded:
                r.mask  # noqa: B018 - the property decodes and keeps it
        return self

    def to_json(self, contours: bool = True) -> dict[str, Any]:
        out = {"width": self.width, "height": self.height, "region": list(self.region) if self.region else None,
               "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
               "tasks": {k: (v.to_json(contours) if isinstance(v, SegmentationResult) else v.to_json())
                         for k, v in self.tasks.items()}}
        if self.region_source is not None:
            out["region_source"] = self.region_source
        if self.gate is not None:
            out["gate"] = self.gate.to_json()
        if self.index is not None:
            out["frame_index"] = self.index
        if self.timestamp_s is not None:
            out["timestamp_s"] = self.timestamp_s
        if self.measurements is not None:
            out["measurements"] = [m.to_json() for m in self.measurements]
        if self.tracked is not None:
            out["tracked"] = {k: v.to_json() for k, v in self.tracked.items()}
        return out


def make_result(task: str, decoded: object, width: int, height: int, offset: tuple[int, int] = (0, 0),
                full: tuple[int, int] | None = None) -> TaskResult:
    """Wrap ``usedge.data.decode.decode`` output (in crop pixels) as a typed result in frame pixels; for a
    segmentation task ``decoded`` may be a function that decodes the crop's mask (deferred until read).

    ``offset`` is the crop's top-left in the frame; ``full`` the frame's (width, height) when cropped.
    """
    spec = get_task(task)
    fw, fh = full or (width, height)
    ox, oy = offset
    if spec.kind is TaskKind.SEGMENTATION:
        placed = full is not None and (fw, fh) != (width, height)

        def place(mask: np.ndarray) -> np.ndarray:
            if not placed:
                return mask
            canvas = np.zeros((fh, fw), np.uint8)
            canvas[oy:oy + height, ox:ox + width] = mask
            return canvas

        if callable(decoded):       # deferred: decode and place on first read of .mask
            return SegmentationResult(task, class_names=spec.class_names, decode=lambda: place(decoded()))
        return SegmentationResult(task, place(decoded), spec.class_names)
    if spec.kind is TaskKind.CLASSIFICATION:
        return ClassificationResult(task, np.asarray(decoded), spec.class_names)
    shift = np.array([ox, oy], np.float64)
    if spec.kind is TaskKind.DETECTION:
        box, score = decoded
        return DetectionResult(task, np.asarray(box, np.float64) + np.tile(shift, 2), float(score), fw, fh)
    return LandmarkResult(task, np.asarray(decoded, np.float64) + shift, spec.point_names, fw, fh)


__all__ = ["ClassificationResult", "DetectionResult", "FrameResult", "LandmarkResult", "SegmentationResult",
           "TaskResult", "make_result"]
