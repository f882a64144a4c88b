"""Task-balanced INT8 calibration sets.

A quantizer fed mostly fetal planes clips thyroid contrast: activation ranges must be seen on every task.
``build_calibration`` takes the same number of training images from every task (plus optional unlabelled
frames), runs them through the runtime's preprocessing, and writes ``calibration.npz`` and
``manifest.json`` (samples, per-task and per-organ counts, preprocessing, sha256 of the tensor bytes).
The manifest hash goes into the bundle; a set whose tensors no longer match their manifest is refused.
"""
from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usedge._io import atomic_write_bytes, atomic_write_json
from usedge.data.preprocess import PreprocessSpec, preprocess
from usedge.errors import ConfigError, DataError
from usedge.tasks import get_task

#: Fewer images than this for any task is a toy set: its activation ranges are noise (NNCF's default
#: statistics subset is 300 images; 27 tasks x 10 = 270).
MIN_PER_TASK = 10
IMAGES = "calibration.npz"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class CalibrationSet:
    images: np.ndarray          # N×3×S×S float32, preprocessed
    manifest: dict
    path: Path | None = None

    @property
    def sha256(self) -> str:
        """Hash of the manifest (which itself holds the hash of the tensors): the cache / bundle key."""
        return hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.images)


def tensor_sha256(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images, np.float32).tobytes()).hexdigest()


def select_samples(samples, tasks: Sequence[str], per_task: int, seed: int, allow_small: bool):
    """``per_task`` samples of each task (all when fewer), refusing tasks below MIN_PER_TASK."""
    rng = np.random.default_rng(seed)
    by_task: dict[str, list] = {t: [] for t in tasks}
    for s in samples:
        if s.task_id in by_task:
            by_task[s.task_id].append(s)
    short = {t: len(v) for t, v in by_task.items() if len(v) < min(MIN_PER_TASK, per_task) or not v}
    if short and not allow_small:
        raise ConfigError(
            "calibration needs at least " f"{MIN_PER_TASK} images per task; too few for: "
            + ", ".join(f"{t} ({n})" for t, n in sorted(short.items())),
            fix=f"add images for those tasks (e.g. `usedge data phantom --per-task {MIN_PER_TASK * 2}`), or pass "
                "--allow-small-calibration (recorded in the bundle).")
    chosen = []
    for t in tasks:
        items = by_task[t]
        idx = rng.permutation(len(items))[:per_task]
        chosen += [items[i] for i in sorted(idx)]
    return chosen


def build_calibration(data: str | Path, spec: PreprocessSpec, tasks: Sequence[str], out: str | Path | None = None,
                      per_task: int = 32, unlabelled: Sequence[str] = (), unlabelled_max: int = 64, seed: int = 0,
                      allow_small: bool = False) -> CalibrationSet:
    """Build (and with ``out``, write) a task-balanced calibration set from ``data``'s train split."""
    from usedge.data.fmcuia import load_split

    if per_task < 1:
        raise ConfigError("per_task must be >= 1.", fix=f"use {MIN_PER_TASK} or more.")
    chosen = select_samples(load_split(data, "train", list(tasks)), tasks, per_task, seed, allow_small)
    images = [preprocess(s.load_image(), spec) for s in chosen]
    extra_ids: list[str] = []
    if unlabelled:
        from usedge.data.unlabelled import read_unlabelled

        frames, ids = read_unlabelled(unlabelled, spec.size, max_per_source=unlabelled_max)
        from usedge.data.transforms import normalize

        images += [normalize(f, spec.mean, spec.std) for f in frames]
        extra_ids = ids
    stack = np.stack(images).astype(np.float32)
    manifest = {
        "version": 1, "data": str(data), "seed": seed, "per_task_requested": per_task,
        "min_per_task": MIN_PER_TASK, "allow_small": allow_small, "preprocess": spec.to_dict(),
        "per_task": dict(Counter(s.task_id for s in chosen)),
        "per_organ": dict(Counter(get_task(s.task_id).organ for s in chosen)),
        "samples": [{"task_id": s.task_id, "image": s.image_rel} for s in chosen],
        "unlabelled": extra_ids, "count": int(len(stack)), "tensor_sha256": tensor_sha256(stack),
    }
    calib = CalibrationSet(stack, manifest)
    if out is not None:
        calib = write_calibration(calib, Path(out))
    return calib


def sources_sha256(samples) -> str:
    """sha256 over the bytes of every sample's image file, in order: what a calibration set is made of."""
    h = hashlib.sha256()
    for s in samples:
        h.update(s.image_rel.encode() + b"\0")
        h.update(hashlib.sha256(Path(s.image_path).read_bytes()).digest())
    return h.hexdigest()


def calibration_cache_dir() -> Path:
    """Where built calibration sets are kept: ``~/.cache/usedge/calibration``, one folder per content key
    (see :func:`cached_calibration`)."""
    return Path.home() / ".cache" / "usedge" / "calibration"


def cached_calibration(data: Path, spec: PreprocessSpec, tasks: Sequence[str], per_task: int, seed: int,
                       model_sha256: str, cache: Path | None = None, allow_small: bool = False,
                       log=lambda msg: None) -> CalibrationSet:
    """The calibration set of ``data``'s train split, from ``cache`` (default :func:`calibration_cache_dir`) when
    one was built from the same content.

    The key is the content, never the path: the bytes of the images the selection picks (the same selection
    :func:`build_calibration` makes), the preprocessing, tasks, count, seed and the fp32 model's hash. A set
    regenerated in place (a new phantom version in the same folder) gets a new key; a damaged cached set is rebuilt."""
    from usedge.data.fmcuia import load_split

    chosen = select_samples(load_split(data, "train", list(tasks)), tasks, per_task, seed, allow_small)
    key = hashlib.sha256(json.dumps([sources_sha256(chosen), spec.to_dict(), list(tasks), per_task, seed,
                                     model_sha256, allow_small]).encode()).hexdigest()[:16]
    folder = (cache or calibration_cache_dir()) / key
    if (folder / MANIFEST).is_file():
        try:
            return load_calibration(folder)
        except DataError:
            pass  # damaged cache: rebuild
    log(f"calibration: {per_task} images per task from {data}/train")
    return build_calibration(data, spec, tasks, out=folder, per_task=per_task, seed=seed, allow_small=allow_small)


def write_calibration(calib: CalibrationSet, out: Path) -> CalibrationSet:
    buf = io.BytesIO()
    np.savez_compressed(buf, images=calib.images)
    atomic_write_bytes(out / IMAGES, buf.getvalue())
    atomic_write_json(out / MANIFEST, calib.manifest)
    return CalibrationSet(calib.images, calib.manifest, out)


def load_calibration(path: str | Path) -> CalibrationSet:
    """Load a calibration folder (or its manifest.json); refuse tensors that do not match their manifest."""
    path = Path(path)
    folder = path.parent if path.name == MANIFEST else path
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        with np.load(folder / IMAGES, allow_pickle=False) as z:
            images = z["images"]
    except FileNotFoundError as exc:
        raise DataError(f"no calibration set at {folder}: {exc.filename} is missing.",
                        fix="build one with `usedge calibrate --data DIR --out FOLDER`.") from None
    except (ValueError, KeyError, OSError) as exc:
        raise DataError(f"calibration set at {folder} is unreadable: {exc}", fix="rebuild it with `usedge calibrate`.") from None
    if tensor_sha256(images) != manifest.get("tensor_sha256"):
        raise DataError(f"calibration tensors in {folder} do not match their manifest (stale or modified).",
                        fix="rebuild it with `usedge calibrate`.")
    return CalibrationSet(images, manifest, folder)


def check_compatible(calib: CalibrationSet, spec: PreprocessSpec) -> None:
    """Refuse a calibration set made with other preprocessing than the model's."""
    made = PreprocessSpec.from_dict(calib.manifest.get("preprocess", {}))
    if (made.size, made.mean, made.std) != (spec.size, spec.mean, spec.std):
        raise ConfigError(f"calibration set was preprocessed for {made.size}² mean={made.mean} std={made.std}, "
                          f"the model expects {spec.size}² mean={spec.mean} std={spec.std}.",
                          fix="rebuild it for this model: `usedge calibrate --model CKPT --data DIR`.")
