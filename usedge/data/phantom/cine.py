"""Phantom cines: one scene scanned with a slowly moving probe, per-frame labels.

The scene (tissue maps, labels and a complex scatterer field tied to tissue coordinates) is drawn once. Each
frame moves the probe by a smooth affine motion (translation, rotation about the probe face, scale — sums of
slow sinusoids at a nominal 30 frames/s): the beam samples look up the scene at moved positions, so speckle
moves with the tissue and decorrelates only partly (a fresh fraction of scatterers per frame, and the PSF's
anisotropy under rotation). Shadows are recomputed along the beams every frame. Labels are moved with the
same motion, then cropped to the sector.

Label JSON (``<video stem>.labels.json``)::

    {"task_id", "kind", "fps", "size", "video", "frames": [{"index", "timestamp_s", "label"}, ...]}

``label`` by kind: classification ``int``; detection ``[x0, y0, x1, y1]``; regression ``[[x, y], ...]``;
segmentation ``{"rle": {"size": [h, w], "values": [...], "lengths": [...]}}`` — runs of class values over the
row-major flattened mask (:func:`decode_rle` turns it back into the array).
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from usedge._io import atomic_write_json, publish
from usedge.data.phantom.anatomy import DRAWERS
from usedge.data.phantom.generator import PhantomConfig, PhantomSample, check_size, finish_label, sample_meta
from usedge.data.phantom.physics import Geometry, render, sample_acquisition
from usedge.errors import ConfigError, DataError
from usedge.tasks import ALL_TASKS, TaskKind, TaskSpec, get_task

NOMINAL_FPS = 30.0
#: Fraction of scatterer power that is tied to the tissue from frame to frame (the rest is fresh).
TISSUE_COHERENCE = 0.9


@dataclass(frozen=True)
class Motion:
    """Smooth probe motion: each parameter is a sum of two sinusoids (random frequency 0.1-0.5 Hz at the
    nominal 30 frames/s, random phase), zero at frame 0 only in expectation."""

    amp: np.ndarray      # (4, 2) amplitudes of tx, ty (px), rotation (rad), log-scale
    freq: np.ndarray     # (4, 2) Hz
    phase: np.ndarray    # (4, 2) rad
    pivot: tuple[float, float]

    @classmethod
    def sample(cls, rng: np.random.Generator, geom: Geometry) -> Motion:
        s = geom.size
        scale = np.array([0.025 * s, 0.02 * s, math.radians(2.5), 0.025])[:, None]
        amp = scale * rng.uniform(0.3, 1.0, (4, 2)) / math.sqrt(2)
        pivot = (geom.size / 2.0, geom.apex[1] + geom.r0 if geom.is_fan else geom.y0)
        return cls(amp, rng.uniform(0.1, 0.5, (4, 2)), rng.uniform(0, 2 * math.pi, (4, 2)), pivot)

    def matrix(self, index: int) -> np.ndarray:
        """2x3 affine taking OUTPUT (probe) coordinates of frame ``index`` to scene coordinates."""
        t = index / NOMINAL_FPS
        tx, ty, rot, logs = (self.amp * np.sin(2 * math.pi * self.freq * t + self.phase)).sum(1)
        c, s = math.cos(rot) * math.exp(logs), math.sin(rot) * math.exp(logs)
        px, py = self.pivot
        lin = np.array([[c, -s], [s, c]])
        off = np.array([px, py]) - lin @ np.array([px, py]) + np.array([tx, ty])
        return np.hstack([lin, off[:, None]])


def _tissue_scatterers(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance complex scatterers on the scene grid, smoothed just enough (sigma 0.7 px) that
    interpolating them at moved positions keeps their variance."""
    sigma = 0.7
    out = []
    for _ in range(2):
        w = rng.standard_normal((size, size), dtype=np.float32)
        w = cv2.GaussianBlur(w, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        out.append(w * np.float32(2.0 * sigma * math.sqrt(math.pi)))
    return out[0], out[1]


def _move_label(spec: TaskSpec, source: object, m: np.ndarray, size: int) -> object:
    """The drawer's label source seen through a probe at affine ``m`` (output -> scene)."""
    if spec.kind is TaskKind.CLASSIFICATION:
        return source
    if spec.kind is TaskKind.REGRESSION:
        inv = cv2.invertAffineTransform(m)
        pts = np.asarray(source, np.float64)
        return pts @ inv[:, :2].T + inv[:, 2]
    return cv2.warpAffine(np.asarray(source, np.uint8), m, (size, size), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _check(task_id: str, frames: int, size: int) -> TaskSpec:
    spec = get_task(task_id)
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ConfigError(f"frames must be a positive integer, got {frames!r}.")
    check_size(size)
    return spec


def iter_cine(task_id: str, frames: int, seed: int = 0, size: int = 256) -> Iterator[PhantomSample]:
    """Yield ``frames`` consecutive phantom frames of one scene under smooth probe motion (deterministic in
    (seed, task_id)). Each sample's ``meta`` has ``frame`` (index) and ``motion`` (the 2x3 affine)."""
    spec = _check(task_id, frames, size)
    task_no = [t.id for t in ALL_TASKS].index(spec.id)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 2, task_no, 0])
    config = PhantomConfig(size=size)
    drawn = DRAWERS[spec.id](rng, size)
    geom = drawn.scene.geom
    echo, spec_map, atten = drawn.scene.maps()
    acq = sample_acquisition(rng, geom, config.acquisition)
    motion = Motion.sample(rng, geom)
    tissue = _tissue_scatterers(rng, size)
    keep, fresh = np.float32(math.sqrt(TISSUE_COHERENCE)), np.float32(math.sqrt(1.0 - TISSUE_COHERENCE))
    previous = None
    for i in range(int(frames)):
        frng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 2, task_no, i + 1])
        m = motion.matrix(i).astype(np.float32)
        bx = m[0, 0] * geom.beam_x + m[0, 1] * geom.beam_y + m[0, 2]
        by = m[1, 0] * geom.beam_x + m[1, 1] * geom.beam_y + m[1, 2]
        scatter = tuple(cv2.remap(t, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) * keep
                        + frng.standard_normal(bx.shape, dtype=np.float32) * fresh for t in tissue)
        image = render(echo, spec_map, atten, geom, acq, frng, coords=(bx, by), scatter=scatter)
        try:
            label = finish_label(spec, _move_label(spec, drawn.label, m, size), geom)
        except RuntimeError:           # a detection object moved out of view: keep its last box
            label = previous
        previous = label
        meta = sample_meta(spec, drawn, acq.meta(), label)
        meta.update(frame=i, motion=[[round(float(v), 5) for v in row] for row in m])
        yield PhantomSample(spec.id, image, label, meta)


# ----------------------------------------------------------------------------------------------------
# Writing


def encode_rle(mask: np.ndarray) -> dict:
    """Run-length code of a class map: runs of equal values over the row-major flattened array."""
    flat = np.asarray(mask).ravel()
    if flat.size == 0:
        return {"size": list(np.shape(mask)), "values": [], "lengths": []}
    starts = np.flatnonzero(np.concatenate([[True], flat[1:] != flat[:-1]]))
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    return {"size": [int(v) for v in np.shape(mask)], "values": flat[starts].astype(int).tolist(),
            "lengths": lengths.astype(int).tolist()}


def decode_rle(rle: dict) -> np.ndarray:
    """Inverse of :func:`encode_rle` (uint8 class map)."""
    try:
        h, w = rle["size"]
        flat = np.repeat(np.asarray(rle["values"], np.uint8), np.asarray(rle["lengths"], np.int64))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"not a usedge RLE mask: {exc}") from None
    if flat.size != h * w:
        raise DataError(f"RLE covers {flat.size} pixels, size says {h}x{w}.")
    return flat.reshape(h, w)


def label_to_json(spec: TaskSpec, label: object) -> object:
    if spec.kind is TaskKind.SEGMENTATION:
        return {"rle": encode_rle(np.asarray(label))}
    if spec.kind is TaskKind.CLASSIFICATION:
        return int(label)  # type: ignore[call-overload]
    if spec.kind is TaskKind.DETECTION:
        return [round(float(v), 3) for v in label]  # type: ignore[union-attr]
    return [[round(float(x), 3), round(float(y), 3)] for x, y in label]  # type: ignore[union-attr]


def label_from_json(spec: TaskSpec, value: object) -> object:
    """Inverse of the label JSON form (segmentation -> uint8 array, detection -> tuple, points -> tuple)."""
    if spec.kind is TaskKind.SEGMENTATION:
        return decode_rle(value["rle"])  # type: ignore[index]
    if spec.kind is TaskKind.CLASSIFICATION:
        return int(value)  # type: ignore[call-overload]
    if spec.kind is TaskKind.DETECTION:
        return tuple(float(v) for v in value)  # type: ignore[union-attr]
    return tuple((float(x), float(y)) for x, y in value)  # type: ignore[union-attr]


def _open_writer(path: Path, fps: float, size: int) -> tuple[cv2.VideoWriter, Path, Path]:
    """An opened writer on a temp file next to the target: mp4v .mp4, else MJPG .avi (.avi asked: MJPG first)."""
    options = [("mp4v", ".mp4"), ("MJPG", ".avi")]
    for fourcc, suffix in (options[::-1] if path.suffix.lower() == ".avi" else options):
        final = path.with_suffix(suffix)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=suffix, dir=final.parent)
        os.close(fd)
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), float(fps), (size, size), True)
        if writer.isOpened():
            return writer, Path(tmp), final
        writer.release()
        Path(tmp).unlink(missing_ok=True)
    raise DataError("OpenCV can write neither mp4v (.mp4) nor MJPG (.avi) video here.",
                    fix="install an OpenCV build with video I/O (opencv-python-headless has it).")


def write_cine(out: str | os.PathLike, task_id: str, frames: int = 60, fps: float = 30.0, seed: int = 0,
               size: int = 256) -> tuple[Path, Path]:
    """Write a cine video (mp4v .mp4, or MJPG .avi if ``out`` ends in .avi or mp4v is not available — the
    returned path says which)
    and ``<stem>.labels.json`` with one label per frame (see the module doc). Both are written atomically.

    Returns:
        (video path, labels path).
    """
    spec = _check(task_id, frames, size)
    if not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ConfigError(f"fps must be a positive number, got {fps!r}.")
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".avi"):
        out = out.with_name(out.name + ".mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer, tmp, video = _open_writer(out, fps, size)
    entries = []
    try:
        for sample in iter_cine(spec.id, frames, seed, size):
            writer.write(cv2.cvtColor(sample.image, cv2.COLOR_GRAY2BGR))
            i = sample.meta["frame"]
            entries.append({"index": i, "timestamp_s": round(i / fps, 6), "label": label_to_json(spec, sample.label)})
        writer.release()
        publish(tmp, video)
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    labels = video.with_name(video.stem + ".labels.json")
    atomic_write_json(labels, {"task_id": spec.id, "kind": spec.kind.value, "fps": float(fps), "size": size,
                               "video": video.name, "seed": seed, "label_format": _FORMATS[spec.kind],
                               "frames": entries})
    return video, labels


_FORMATS = {
    TaskKind.SEGMENTATION: "rle: runs of class values over the row-major mask (usedge.data.phantom.cine.decode_rle)",
    TaskKind.CLASSIFICATION: "class index",
    TaskKind.DETECTION: "[x0, y0, x1, y1] pixel box",
    TaskKind.REGRESSION: "[[x, y], ...] pixel points",
}
