"""Image-quality figures of a frame as the model sees it (its scan-region crop at the model's input size), for the
frame gate (usedge.runtime.gate): how uniform, how saturated, how much of it is speckle, how much is colour; and a
stream's frozen-screen check. Plain OpenCV / numpy, ~0.1 ms per 128² image."""
from __future__ import annotations

import cv2
import numpy as np

#: local standard deviation (grey levels, 5×5 at the model's input size) above which a pixel is speckle / tissue
TEXTURE_STD = 3.0
#: chroma (max - min of B, G, R) above which a pixel is colour (Doppler, UI)
COLOUR_CHROMA = 24


def quality_scores(small: np.ndarray) -> dict[str, float]:
    """The image-quality figures of one model-input-sized uint8 image (grey or BGR)."""
    if small.ndim == 3 and small.shape[2] >= 3:
        bgr = small[..., :3]
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        chroma = bgr.max(axis=2).astype(np.int16) - bgr.min(axis=2)
        colour = float(np.mean(chroma > COLOUR_CHROMA))
    else:
        grey = small.reshape(small.shape[:2])
        colour = 0.0
    g = grey.astype(np.float32)
    mean = cv2.boxFilter(g, -1, (5, 5))
    var = cv2.boxFilter(g * g, -1, (5, 5)) - mean * mean
    return {"std": float(g.std()), "saturated": float(np.mean(grey >= 250)),
            "texture": float(np.mean(var > TEXTURE_STD ** 2)), "colour": colour}


class FrozenCheck:
    """A stream's frozen-screen check: a frame whose 64×48 thumbnail equals the previous one (within 1 grey level)
    ``frames`` times in a row is frozen (a scanner's freeze, a stalled capture)."""

    def __init__(self, frames: int = 5) -> None:
        self.frames = frames
        self._last: np.ndarray | None = None
        self.repeats = 0

    def __call__(self, image: np.ndarray) -> bool:
        grey = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(grey, (64, 48), interpolation=cv2.INTER_AREA).astype(np.int16)
        same = self._last is not None and int(np.abs(thumb - self._last).max()) <= 1
        self.repeats = self.repeats + 1 if same else 0
        self._last = thumb
        return self.repeats >= self.frames


__all__ = ["COLOUR_CHROMA", "TEXTURE_STD", "FrozenCheck", "quality_scores"]
