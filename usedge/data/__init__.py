"""Data: the FMC-UIA layout, the phantom generator, DICOM and video frames.

The names below are imported on first use, so ``import usedge.data`` stays cheap on a scanner.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Frame": "usedge.data.frames", "ScanRegion": "usedge.data.frames", "FrameSource": "usedge.data.frames",
    "open_dicom": "usedge.data.dicom", "open_video": "usedge.data.video", "open_frames": "usedge.data.video",
    "read_split": "usedge.data.fmcuia", "load_split": "usedge.data.fmcuia", "validate_split": "usedge.data.fmcuia",
    "generate_dataset": "usedge.data.phantom", "write_cine": "usedge.data.phantom",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'usedge.data' has no attribute {name!r}; valid: {', '.join(__all__)}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
