"""Atomic file writes (temp file in the same folder + rename) and image I/O with clear errors."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from usedge.errors import DataError

# mkstemp / mkdtemp create 0600 / 0700 entries; finished files and folders get the usual umask-based modes
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE, DIR_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def swap_in_dir(tmp: Path, path: Path) -> Path:
    """Replace folder ``path`` with the finished folder ``tmp`` (same parent): the old one is moved aside
    first and removed only after the rename, so a crash never leaves ``path`` half written."""
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.chmod(tmp, DIR_MODE)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename a finished temp file (made by mkstemp, mode 0600) onto ``path`` with the usual file mode."""
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Encode ``image`` (uint8/uint16, H×W or H×W×3 BGR) as PNG and write it atomically."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise DataError(f"Could not encode a {image.dtype} array of shape {image.shape} as PNG for {path}.")
    return atomic_write_bytes(path, buf.tobytes())


def read_image(path: str | os.PathLike, grayscale: bool = False) -> np.ndarray:
    """Read an image file unchanged in depth (8/16 bit); colour comes back as BGR.

    Raises:
        DataError: the file is missing or not a decodable image.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Image file not found: {path}", fix="check the path (CSV paths are relative to csv_files/).")
    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_UNCHANGED
    image = cv2.imread(str(path), flag)
    if image is None:
        raise DataError(f"Could not decode image {path} (not an image, or truncated).")
    return image
