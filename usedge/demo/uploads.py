"""Reading what a browser uploads: checked size and type, header before decode, images brought to BGR and
bounded in size. No Gradio, no torch."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from usedge.demo.config import IMAGE_SUFFIXES, DemoConfig
from usedge.errors import DataError


# -- reading uploads -------------------------------------------------------------------------------------
def _checked_file(path: str | Path | None, suffixes: Sequence[str], what: str, max_mb: float) -> Path:
    if path is None or str(path) == "":
        raise DataError(f"no {what} given.", fix=f"upload a {what} ({', '.join(suffixes)}) or pick an example.")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p.name} is not a readable file.", fix=f"upload the {what} again.")
    size_mb = p.stat().st_size / (1 << 20)
    if size_mb > max_mb:
        raise DataError(f"{p.name} is {size_mb:.1f} MB; this demo accepts at most {max_mb:g} MB.",
                        fix="upload a smaller file, or restart the demo with a larger --max-upload-mb.")
    from usedge.data.dicom import is_dicom_file

    if p.suffix.lower() not in suffixes and not is_dicom_file(p):
        raise DataError(f"{p.name}: unsupported file type {p.suffix or '(none)'} for a {what}.",
                        fix=f"use one of: {', '.join(suffixes)}.")
    return p


def read_image(path: str | Path, config: DemoConfig = DemoConfig()) -> tuple[np.ndarray, Any, str]:
    """(image as H×W grey or H×W×3 BGR, its scan region or None, a one-line description) of a PNG/JPEG/DICOM.
    A multi-frame DICOM gives its middle frame."""
    from usedge.data.dicom import is_dicom_file, open_dicom

    p = _checked_file(path, IMAGE_SUFFIXES, "image", config.max_upload_mb)
    if is_dicom_file(p):
        with open_dicom(p, config.max_decoded_mb) as series:
            n = series.num_frames or 1
            frame = series.frame(n // 2)
        image, region = frame.image, frame.region
        info = f"{p.name}: DICOM, {n} frame(s), showing frame {frame.index}, {image.shape[1]}×{image.shape[0]}"
    else:
        from usedge._io import decode_image

        # strict (a truncated JPEG is refused, not grey-filled); the size is checked from the header first
        image = decode_image(p.read_bytes(), p.name, max_side=config.max_image_side)
        region, info = None, f"{p.name}: {image.shape[1]}×{image.shape[0]}"
    return _checked_image(image, config), region, info


def _checked_image(image: np.ndarray, config: DemoConfig) -> np.ndarray:
    if image.ndim not in (2, 3) or image.size == 0 or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise DataError(f"unsupported image shape {image.shape}.", fix="use a grey or RGB image.")
    if max(image.shape[:2]) > config.max_image_side:
        raise DataError(f"image is {image.shape[1]}×{image.shape[0]}; the demo accepts at most "
                        f"{config.max_image_side} px per side.", fix="downscale the image first.")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def fit_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` downscaled (area interpolation) so its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    k = max_side / max(h, w)
    return image if k >= 1 else cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                                           interpolation=cv2.INTER_AREA)


def rgb_to_bgr(image: np.ndarray) -> np.ndarray:
    """Gradio hands RGB arrays; usedge frames are BGR (or grey)."""
    return image[..., ::-1].copy() if image.ndim == 3 and image.shape[2] == 3 else image
