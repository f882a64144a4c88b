"""Task-level agreement between two sets of named outputs (a backend vs the fp32 reference).

Tensor max-abs differences say little about whether a mask or a class changed; these do: segmentation Dice
between the two argmax maps, classification top-1 agreement, detection IoU of the two best boxes,
landmark distance in input pixels. No torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from usedge.data.decode import best_box, box_iou
from usedge.tasks import TaskKind, TaskSpec


def dice_maps(a: np.ndarray, b: np.ndarray, classes: int) -> float:
    """Mean Dice over the foreground classes of two label maps (1.0 for a class absent from both)."""
    scores = []
    for c in range(1, classes):
        x, y = a == c, b == c
        denom = x.sum() + y.sum()
        scores.append(1.0 if denom == 0 else 2.0 * np.logical_and(x, y).sum() / denom)
    return float(np.mean(scores)) if scores else 1.0


def best_box_ious(ref_boxes: np.ndarray, ref_obj: np.ndarray, boxes: np.ndarray, obj: np.ndarray) -> list[float]:
    """Per image, the IoU of the two most confident boxes (reference vs output)."""
    ious = []
    for i in range(len(ref_boxes)):
        a, _ = best_box(ref_boxes[i], ref_obj[i])
        b, _ = best_box(boxes[i], obj[i])
        ious.append(float(box_iou(a, b[None])[0]))
    return ious


def agreement(spec: TaskSpec, ref: dict[str, np.ndarray], out: dict[str, np.ndarray], size: int) -> dict[str, float]:
    """Per-task agreement over the batch, plus the max-abs tensor difference of each output."""
    names = spec.output_names
    n = ref[names[0]].shape[0]
    row: dict[str, float] = {f"maxabs.{k.split('.', 1)[1]}": float(np.abs(ref[k] - out[k]).max()) for k in names}
    if spec.kind is TaskKind.SEGMENTATION:
        row["dice"] = float(np.mean([dice_maps(ref[names[0]][i].argmax(0), out[names[0]][i].argmax(0),
                                                spec.num_classes) for i in range(n)]))
    elif spec.kind is TaskKind.CLASSIFICATION:
        row["top1"] = float(np.mean(ref[names[0]].argmax(1) == out[names[0]].argmax(1)))
    elif spec.kind is TaskKind.DETECTION:
        row["iou"] = float(np.mean(best_box_ious(ref[names[0]], ref[names[1]], out[names[0]], out[names[1]])))
    else:
        row["px"] = float(np.linalg.norm((ref[names[0]] - out[names[0]]) * size, axis=-1).mean())
    return row


#: thresholds a backend running the fp32 model (and the FP16 graph built for TensorRT) must meet against the torch
#: fp32 reference. fp16 measured on the packaged default student's parity images (16, every head on every image;
#: `usedge export --target desktop-gpu`): worst Dice 0.997, box IoU 1.000, landmark 0.007 px, top-1 1.000 on
#: OpenVINO and ONNX Runtime alike; its bounds leave room for one flipped near-tie class among 16 images
THRESHOLDS = {"fp32": {"dice": 0.99, "top1": 1.0, "iou": 0.98, "px": 0.5},
              "fp16": {"dice": 0.98, "top1": 0.9, "iou": 0.95, "px": 0.5}}

#: why int8 parity is reported but not judged
INT8_NOTE = ("int8 agreement with the torch fp32 reference on the parity images (every head sees every image, "
             "most of them out of its domain, where int8 rounding moves low-confidence answers): informational; "
             "the per-task accuracy gate on held-out images is the int8 criterion")


def passes(row: dict[str, float], precision: str) -> bool | None:
    """fp32 / fp16: whether ``row`` meets THRESHOLDS; int8: None (informational, see INT8_NOTE)."""
    lim = THRESHOLDS.get(precision)
    if lim is None:
        return None
    for key, bound in lim.items():
        if key in row:
            ok = row[key] <= bound if key == "px" else row[key] >= bound
            if not ok:
                return False
    return True


def judge(rows: dict[str, dict[str, float]], precision: str) -> dict:
    """{"passed": bool | None, "tasks": rows} (+ "note" where not judged)."""
    verdicts = [passes(r, precision) for r in rows.values()]
    if precision not in THRESHOLDS:
        return {"passed": None, "note": INT8_NOTE, "tasks": rows}
    return {"passed": all(verdicts), "tasks": rows}


def parity_by_backend(model: str | Path, x: np.ndarray, ref: dict[str, np.ndarray], specs, size: int,
                      precision: str) -> dict[str, dict]:
    """The one parity loop (export and ``usedge verify``): ``model`` on every CPU runtime installed here
    against the torch reference outputs ``ref`` on inputs ``x``; ``{backend: judge(...)}``."""
    from usedge.backends import available_backends, open_backend

    result = {}
    for name in available_backends():
        backend = open_backend(name, model)
        try:
            got = backend.infer(x)
        finally:
            backend.close()
        result[name] = judge({s.id: agreement(s, ref, got, size) for s in specs}, precision)
    return result
