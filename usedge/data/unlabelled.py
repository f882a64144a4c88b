"""Unlabelled frames from any source (images, folders, videos, DICOM cines) as a uint8 RGB stack — for
distillation and INT8 calibration. Frames are cropped to their DICOM scan region when one is known (so
burnt-in text and colour bars stay out) and resized to the model's square input. No torch."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from usedge.data.transforms import to_gray_or_bgr_uint8, to_rgb
from usedge.errors import DataError, SourceError, UsedgeError


def read_unlabelled(sources: Sequence[str | Path], size: int, every: int = 1,
                    max_per_source: int = 2000) -> tuple[np.ndarray, list[str]]:
    """Frames of every source -> (N×size×size×3 uint8 RGB, one 'source#index' id per frame).

    Args:
        every: keep every ``every``-th frame (neighbouring video frames are near duplicates).
        max_per_source: stop reading a source after this many kept frames.
    Raises:
        SourceError: a source is missing or unreadable, or yields no frame.
    """
    from usedge.data.video import open_frames

    images: list[np.ndarray] = []
    ids: list[str] = []
    for src in sources:
        kept = 0
        try:
            with open_frames(src) as frames:
                for frame in frames:
                    if frame.index % every:
                        continue
                    images.append(_prepare(frame.cropped(), size))
                    ids.append(f"{src}#{frame.index}")
                    kept += 1
                    if kept >= max_per_source:
                        break
        except UsedgeError:
            raise
        except Exception as exc:  # decoder errors from pydicom / OpenCV
            raise SourceError(f"cannot read unlabelled frames from {src}: {exc}",
                              fix="pass an image, a folder of images, a video or a DICOM file.") from None
        if kept == 0:
            raise SourceError(f"{src} yielded no frames.", fix="check that the file is a readable image, video or DICOM.")
    return np.stack(images), ids


def _prepare(image: np.ndarray, size: int) -> np.ndarray:
    try:
        image = to_gray_or_bgr_uint8(np.ascontiguousarray(image))
    except DataError as exc:
        raise SourceError(str(exc), fix=exc.fix) from None
    return cv2.resize(to_rgb(image), (size, size), interpolation=cv2.INTER_AREA)
