"""A scanner's screen around an ultrasound image, for testing what frames without DICOM regions do (HDMI / webcam
grabs, screen recordings): a title bar with text, a side panel of coloured presets, a grey-scale bar, depth text,
a black surround, and the image pasted at a known place."""
from __future__ import annotations

import cv2
import numpy as np


def screen_grab(image: np.ndarray, x0: int, y0: int, w: int = 640, h: int = 480) -> np.ndarray:
    """A ``w``×``h`` BGR screen with ``image`` (grey or BGR uint8) pasted with its top-left corner at (x0, y0)."""
    canvas = np.zeros((h, w, 3), np.uint8)
    cv2.rectangle(canvas, (0, 0), (w, 28), (60, 50, 40), -1)
    cv2.putText(canvas, "LOGIQ  MI 1.1  TIs 0.4  12:04:33", (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1)
    cv2.rectangle(canvas, (w - 60, 40), (w - 10, 300), (90, 90, 90), -1)
    for i in range(8):
        cv2.putText(canvas, f"P{i} 12", (w - 55, 60 + 30 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
    for i in range(5):
        cv2.putText(canvas, f"Depth {i * 3 + 4} cm", (10, 460 - 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200,) * 3, 1)
    canvas[60:260, 20:32] = np.linspace(0, 255, 200).astype(np.uint8)[:, None, None]
    g = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3]
    canvas[y0:y0 + g.shape[0], x0:x0 + g.shape[1]] = g
    return canvas


__all__ = ["screen_grab"]
