"""The demo's settings (``usedge demo`` options) and the names its modules share."""
from __future__ import annotations

import math
from dataclasses import dataclass

from usedge.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".dcm", ".dicom")
RESULT_COLUMNS = ("task", "organ", "kind", "result", "score", "detail")
LATENCY_COLUMNS = ("stage", "ms")
ALL = "all tasks"


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo server (``usedge demo`` options)."""

    bundle: str | None = None            # None: the packaged default bundle
    backend: str = "auto"
    precision: str = "auto"
    max_upload_mb: float = 64.0
    max_video_frames: int = 900
    max_video_seconds: float = 120.0
    max_image_side: int = 4096
    max_decoded_mb: float = 256.0        # decoded DICOM pixels held at once (a frame; a deflated file in full)
    live_fps: float = 10.0               # frames/s the browser sends from a webcam
    live_idle_s: float = 10.0            # a live stream with no frame for this long ends
    live_max_side: int = 640             # camera frames are downscaled to this (px) before inference
    threads: int | None = None
    region: str = "dicom"                # the Predictor's region mode: dicom, auto (find it in screen grabs), none

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_decoded_mb", "max_video_seconds", "live_fps", "live_idle_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"DemoConfig.{name} must be a positive number, got {value!r}.")
        for name in ("max_video_frames", "max_image_side", "live_max_side"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ConfigError(f"DemoConfig.{name} must be a positive integer, got {getattr(self, name)!r}.")


__all__ = ["ALL", "IMAGE_SUFFIXES", "LATENCY_COLUMNS", "RESULT_COLUMNS", "VIDEO_SUFFIXES", "DemoConfig"]
