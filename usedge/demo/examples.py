"""The demo's built-in examples, all offline: phantom images (one per task family, rendered by the project's own
generator), a phantom cine (WebM), and the real ultrasound DICOM files that ship with pydicom / pydicom-data.

Phantom files are written once per usedge version into ``~/.cache/usedge/demo-examples/<version>`` (atomically);
the DICOM examples are used in place from the installed packages, and skipped when a package is missing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2

log = logging.getLogger(__name__)

#: (task, what it shows) rendered as example images: one per task family, a few organs
PHANTOM_IMAGES = (("fetal_head", "segmentation"), ("breast_lesion", "segmentation"),
                  ("fetal_plane_cls", "classification"), ("thyroid_nodule_det", "detection"),
                  ("fetal_femur", "landmarks"))
CINE_TASK, CINE_FRAMES, CINE_FPS = "fetal_head", 60, 20.0
#: real ultrasound DICOM files (file name in pydicom's / pydicom-data's test files, label)
DICOM_IMAGES = (("US1_UNCR.dcm", "echo frame (pydicom-data)"), ("OBXXXX1A.dcm", "OB image, Philips (pydicom-data)"),
                ("gdcm-US-ALOKA-16.dcm", "pelvis, ALOKA (pydicom-data)"),
                ("examples_ybr_color.dcm", "lymph node cine frame (pydicom)"))
DICOM_CINES = (("color3d_jpeg_baseline.dcm", "echo cine, 120 frames, SonoSite (pydicom-data)"),
               ("examples_ybr_color.dcm", "30-frame cine (pydicom)"))


@dataclass(frozen=True)
class Example:
    path: Path
    label: str


@dataclass(frozen=True)
class Examples:
    images: tuple[Example, ...]
    videos: tuple[Example, ...]


def default_folder() -> Path:
    from usedge import __version__

    return Path("~/.cache/usedge/demo-examples").expanduser() / __version__


def _phantom_images(folder: Path, size: int) -> list[Example]:
    from usedge._io import atomic_write_bytes
    from usedge.data.phantom import generate_sample, sample_rng
    from usedge.data.phantom.generator import PhantomConfig
    from usedge.tasks import get_task

    out = []
    for task, family in PHANTOM_IMAGES:
        if task not in _task_ids():
            continue
        path = folder / f"phantom_{task}.png"
        if not path.is_file():
            sample = generate_sample(get_task(task).id, sample_rng(7, "val", task, 0), PhantomConfig(size=size))
            ok, png = cv2.imencode(".png", sample.image)
            if ok:
                atomic_write_bytes(path, png.tobytes())
        out.append(Example(path, f"phantom {task} ({family})"))
    return out


def _task_ids() -> set[str]:
    from usedge.tasks import ALL_TASKS

    return {t.id for t in ALL_TASKS}


def _phantom_cine(folder: Path, size: int) -> Example | None:
    import os
    import tempfile

    from usedge._io import publish
    from usedge.data.phantom import iter_cine

    path = folder / f"phantom_{CINE_TASK}_cine.webm"
    if not path.is_file():
        fd, tmp = tempfile.mkstemp(prefix=".cine.", suffix=".webm", dir=folder)
        os.close(fd)
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"VP80"), CINE_FPS, (size, size), True)
        if not writer.isOpened():
            Path(tmp).unlink(missing_ok=True)
            log.warning("demo examples: OpenCV cannot write VP8 WebM; no phantom cine example")
            return None
        for sample in iter_cine(CINE_TASK, CINE_FRAMES, seed=7, size=size):
            writer.write(cv2.cvtColor(sample.image, cv2.COLOR_GRAY2BGR))
        writer.release()
        publish(tmp, path)
    return Example(path, f"phantom {CINE_TASK} cine, {CINE_FRAMES} frames")


def _dicom(name: str) -> Path | None:
    try:
        from pydicom.data import get_testdata_file

        path = get_testdata_file(name, download=False)
    except Exception:  # noqa: BLE001 - pydicom / pydicom-data missing: no such example
        return None
    return Path(path) if path else None


def ensure_examples(folder: str | Path | None = None, size: int = 256) -> Examples:
    """Write (once) and list the demo's examples."""
    folder = Path(folder) if folder else default_folder()
    folder.mkdir(parents=True, exist_ok=True)
    images = _phantom_images(folder, size)
    images += [Example(p, label) for name, label in DICOM_IMAGES if (p := _dicom(name)) is not None]
    cine = _phantom_cine(folder, size)
    videos = [cine] if cine else []
    videos += [Example(p, label) for name, label in DICOM_CINES if (p := _dicom(name)) is not None]
    return Examples(tuple(images), tuple(videos))


__all__ = ["Example", "Examples", "default_folder", "ensure_examples"]
