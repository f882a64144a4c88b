"""Finding the ultrasound image inside a frame that has no DICOM regions: an HDMI / webcam grab, a screen
recording, an exported video, where the scanner's menus, text, colour bars and a black surround frame the image.

The image is the largest region of grey, textured pixels. Speckle is textured (local standard deviation above a
floor), grey (no chroma) and has no flat pixels around it, while menus are flat panels and coloured text, and
text is strokes on a flat background (:func:`glyphs`). Dark fluid inside the
image is neither, so the textured pixels are closed over with a kernel of a few percent of the frame, the holes
filled, and thin bridges to nearby text opened away. The answer is the bounding rectangle of the largest
component, as a :class:`~usedge.data.frames.ScanRegion` (``data_type="found"``), or None when nothing image-like
covers at least ``min_fraction`` of the frame. A frame that is all image comes back as the whole frame.

Not a detector of the sector's exact outline: the rectangle is what the Predictor crops to, as it crops to a
DICOM region."""
from __future__ import annotations

import cv2
import numpy as np

from usedge.data.frames import ScanRegion

#: local standard deviation (grey levels, 7x7) above which a pixel counts as textured (speckle, tissue)
TEXTURE_STD = 4.0
#: fraction of flat pixels (3x3 variance < 1) in a 9x9 window above which a textured pixel is a glyph, not speckle
FLAT_AROUND = 0.4
#: chroma (max - min of B, G, R) above which a pixel is colour: UI, colour bars, Doppler boxes
MAX_CHROMA = 24
#: grey levels above the surround's black level (and its noise) at which a pixel counts as part of an image (the
#: noise of dark depths and shadows does)
FAINT = 1
#: how far apart (fraction of the shorter side) two textured parts of one image may lie (an anechoic band between)
GAP_FRACTION = 0.06
#: the closing kernel, as a fraction of the frame's shorter side
CLOSE_FRACTION = 0.04


def _grey_and_chroma(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if image.ndim == 2:
        return image, None
    bgr = image[..., :3]
    chroma = (bgr.max(axis=2).astype(np.int16) - bgr.min(axis=2)).astype(np.uint8)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), chroma


def texture_mask(image: np.ndarray) -> np.ndarray:
    """uint8 0/1: the grey, textured pixels of a uint8 frame (grey or BGR)."""
    grey, chroma = _grey_and_chroma(np.asarray(image))
    g = grey.astype(np.float32)
    mean = cv2.boxFilter(g, -1, (7, 7))
    var = cv2.boxFilter(g * g, -1, (7, 7)) - mean * mean
    textured = var > TEXTURE_STD ** 2
    if chroma is not None:
        textured &= chroma <= MAX_CHROMA
    textured &= ~glyphs(g)
    return textured.view(np.uint8)


def glyphs(g: np.ndarray) -> np.ndarray:
    """bool: pixels with many flat pixels around them (3x3 variance < 1 for more than ``FLAT_AROUND`` of a 9x9
    window): text and UI strokes on a flat background. Speckle, and the noise of dark depths, have none."""
    m3 = cv2.boxFilter(g, -1, (3, 3))
    flat = ((cv2.boxFilter(g * g, -1, (3, 3)) - m3 * m3) < 1.0).astype(np.float32)
    return cv2.boxFilter(flat, -1, (9, 9)) >= FLAT_AROUND


def find_scan_region(image: np.ndarray, min_fraction: float = 0.05) -> ScanRegion | None:
    """The rectangle of the ultrasound image inside ``image`` (uint8 grey or BGR), or None when no image-like
    region covers ``min_fraction`` of the frame."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    if image.dtype != np.uint8 or h < 16 or w < 16:
        return None
    textured = texture_mask(image)
    k = max(3, int(round(CLOSE_FRACTION * min(h, w))) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    closed = cv2.morphologyEx(textured, cv2.MORPH_CLOSE, kernel)
    closed = cv2.morphologyEx(_fill_holes(closed), cv2.MORPH_OPEN, kernel)   # dark fluid in; thin text out
    lit = _faint(image)
    # the image's textured parts joined through its dark-but-noisy depths and shadows; a flat black surround
    # keeps it apart from the menus
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed | lit, connectivity=8)
    if n <= 1:
        return None
    speckle = np.bincount(labels.ravel(), weights=(closed > 0).ravel(), minlength=n)
    best = _pick(stats, speckle, h, w, min_fraction)
    if best is None:
        return None
    parts = _neighbours(stats, speckle, best, GAP_FRACTION * min(h, w), (h, w))
    x, y, bw, bh = cv2.boundingRect((np.isin(labels, parts) & (lit > 0)).view(np.uint8))
    if bw * bh < min_fraction * h * w:
        return None
    return ScanRegion(x, y, x + bw, y + bh, "2D", "found")


def _touches_border(stat: np.ndarray, frame: tuple[int, int]) -> bool:
    x, y, bw, bh = (int(v) for v in stat[:4])
    return x == 0 or y == 0 or x + bw == frame[1] or y + bh == frame[0]


def _neighbours(stats: np.ndarray, speckle: np.ndarray, best: int, gap: float, frame: tuple[int, int]) -> list[int]:
    """``best`` and the textured parts beside it that belong to the same image: an anechoic band (fluid, a vessel
    lumen) that is black from edge to edge splits an image in two. A part joins when it has a fifth of the
    speckle of ``best``, does not run along the frame's border (a menu), lies within ``gap`` px of the parts so
    far and overlaps them by a third along the other axis."""
    box = [float(v) for v in stats[best, :4]]
    x0, y0, x1, y1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    parts, changed = [best], True
    while changed:
        changed = False
        for i in range(1, len(stats)):
            if i in parts or speckle[i] < 0.2 * speckle[best] or _touches_border(stats[i], frame):
                continue
            a0, b0, aw, bh = (float(v) for v in stats[i, :4])
            a1, b1 = a0 + aw, b0 + bh
            dx, dy = max(0.0, a0 - x1, x0 - a1), max(0.0, b0 - y1, y0 - b1)
            ox = max(0.0, min(x1, a1) - max(x0, a0)) / max(1.0, min(x1 - x0, aw))
            oy = max(0.0, min(y1, b1) - max(y0, b0)) / max(1.0, min(y1 - y0, bh))
            # along the depth (an anechoic layer) a part may be farther away than across it
            if (dy <= 3 * gap and dx == 0 and ox >= 1 / 2) or (dx <= gap and dy == 0 and oy >= 1 / 3):
                parts.append(i)
                x0, y0, x1, y1 = min(x0, a0), min(y0, b0), max(x1, a1), max(y1, b1)
                changed = True
    return parts


def _faint(image: np.ndarray) -> np.ndarray:
    """uint8 0/1: the grey pixels brighter than the surround's black level by more than its noise (the noise of dark
    depths counts), not a flat bright panel (a menu) nor colour."""
    grey, chroma = _grey_and_chroma(image)
    g = grey.astype(np.float32)
    mean = cv2.boxFilter(g, -1, (5, 5))
    flat_panel = (cv2.boxFilter(g * g, -1, (5, 5)) - mean * mean < 1.0) & (grey > 3 * FAINT + 30)
    flat_panel |= _ruled(g) & (grey > 3 * FAINT + 30)
    black = float(np.percentile(grey, 2))                # the surround's black level (video capture: up to 16)
    dark = grey[grey <= black + 3]
    noise = float(dark.std()) if dark.size else 0.0
    lit = (grey > black + max(FAINT, 3 * noise)) & ~flat_panel
    if chroma is not None:
        lit &= chroma <= MAX_CHROMA
    return cv2.morphologyEx(lit.view(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))


def _ruled(g: np.ndarray, run: int = 9) -> np.ndarray:
    """bool: pixels on a run of ``run`` equal grey levels along a row or a column: the grey-scale bar and other
    drawn gradients (constant across, ramping along). Speckle varies in both directions."""
    flat = lambda k: (cv2.boxFilter(g * g, -1, k) - cv2.boxFilter(g, -1, k) ** 2) < 0.25  # noqa: E731
    return flat((run, 1)) | flat((1, run))


def _pick(stats: np.ndarray, speckle: np.ndarray, h: int, w: int, min_fraction: float) -> int | None:
    """The component that is the image: of those with enough speckle, the one with the most that does not run
    along the frame's border (menu bars and side panels do; an image framed by them does not), else one that is
    speckle over half its box (a frame that is all image); None otherwise."""
    big = [i for i in range(1, len(stats)) if speckle[i] >= 0.5 * min_fraction * h * w]
    if not big:
        return None

    inner = [i for i in big if not _touches_border(stats[i], (h, w))]
    if inner:
        return max(inner, key=lambda i: speckle[i])
    # along the border only: an image filling the frame is speckle nearly throughout; menus and text are not
    full = [i for i in big if speckle[i] >= 0.5 * stats[i, cv2.CC_STAT_WIDTH] * stats[i, cv2.CC_STAT_HEIGHT]]
    return max(full, key=lambda i: speckle[i]) if full else None


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background region not connected to the frame's border filled."""
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    outside = padded.copy()
    cv2.floodFill(outside, None, (0, 0), 1)
    return (mask | (1 - outside[1:-1, 1:-1])).astype(np.uint8)


def layout_changed(previous: np.ndarray | None, image: np.ndarray, tolerance: float = 0.02) -> bool:
    """Whether the frame's layout (where its flat surround is) has changed since ``previous`` (a coarse signature
    from :func:`layout_signature`): a stream finds the region once and again only when this says so."""
    if previous is None:
        return True
    return float(np.mean(previous != layout_signature(image))) > tolerance


def layout_signature(image: np.ndarray) -> np.ndarray:
    """A coarse map of where the frame is flat (menus, black surround) vs not: 32x24 cells, 1 where the cell's
    range of grey levels is small."""
    grey, _ = _grey_and_chroma(np.asarray(image))
    small_max = cv2.resize(cv2.dilate(grey, np.ones((5, 5), np.uint8)), (32, 24), interpolation=cv2.INTER_AREA)
    small_min = cv2.resize(cv2.erode(grey, np.ones((5, 5), np.uint8)), (32, 24), interpolation=cv2.INTER_AREA)
    return (small_max.astype(np.int16) - small_min < 8).astype(np.uint8)


class RegionCache:
    """A stream's scan region without DICOM regions: found on the first frame, kept while the layout holds, found
    again when :func:`layout_changed` says the screen changed (a menu opened, the depth changed, another scanner).
    ``searches`` counts the times it looked. Thread-safe (a server's clients share one Predictor)."""

    def __init__(self, min_fraction: float = 0.05) -> None:
        import threading

        self.min_fraction = min_fraction
        self.region: ScanRegion | None = None
        self.searches = 0
        self._signature: np.ndarray | None = None
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> ScanRegion | None:
        with self._lock:
            if layout_changed(self._signature, image):
                self._signature = layout_signature(image)
                self.region = find_scan_region(image, self.min_fraction)
                self.searches += 1
            return self.region
