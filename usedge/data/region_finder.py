"""Finding the ultrasound image inside a frame that has no DICOM regions: an HDMI / webcam grab, a screen
recording, an exported video, where the scanner's menus, text, colour bars and a black surround frame the image.

The image is the largest region of grey, textured pixels. Speckle is textured (local standard deviation above a
floor), grey (no chroma) and has no flat pixels around it, while menus are flat panels and coloured text, text is
strokes on a flat background (:func:`glyphs`) or, dense, thin bright strokes on black (:func:`strokes`), and a
grey-scale bar is a tall narrow run of equal grey levels across (:func:`scale_bars`). Dark fluid inside the image
is neither, so the textured pixels are closed over with a kernel of a few percent of the frame, the holes filled,
and thin bridges opened away; the faint mask (anything above the surround's black level and its noise) joins the
textured parts through dark depths. Black bands (fluid from edge to edge, the gap below the probe face) split an
image into parts: the parts beside and below the main one join it (:func:`_neighbours`), and so do the dim specks
a dark sector's depths leave (:func:`_dim_neighbours`). The answer is the bounding rectangle of the parts, as a
:class:`~usedge.data.frames.ScanRegion` (``data_type="found"``), or None when nothing image-like covers at least
``min_fraction`` of the frame. A frame that is all image comes back as the whole frame.

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
#: the speckle (as a fraction of the main part's) of a part above or below the image that joins it (the probe face's
#: near field past a black band, a far-field arc past the fluid), and of one beside it
DEPTH_PART, SIDE_PART = 0.03, 0.05
#: the share of an 11x11 window that is thin bright strokes on black at which it is text (speckle: under 0.045)
STROKE_DENSITY = 0.05
#: grey levels above the black level below which a whole component is dim: the noise of a dark sector's depths
DIM = 30


def _grey_and_chroma(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if image.ndim == 2:
        return image, None
    bgr = image[..., :3]
    chroma = (bgr.max(axis=2).astype(np.int16) - bgr.min(axis=2)).astype(np.uint8)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), chroma


def texture_mask(image: np.ndarray) -> np.ndarray:
    """uint8 0/1: the grey, textured pixels of a uint8 frame (grey or BGR), text and scale bars left out."""
    grey, chroma = _grey_and_chroma(np.asarray(image))
    return _textured(grey, chroma, _drawn(grey))


def _drawn(grey: np.ndarray) -> np.ndarray:
    """bool: what is drawn on the screen, not scanned: dense text and scale bars."""
    return strokes(grey) | scale_bars(grey.astype(np.float32))


def _textured(grey: np.ndarray, chroma: np.ndarray | None, drawn: np.ndarray) -> np.ndarray:
    g = grey.astype(np.float32)
    mean = cv2.boxFilter(g, -1, (7, 7))
    var = cv2.boxFilter(g * g, -1, (7, 7)) - mean * mean
    textured = var > TEXTURE_STD ** 2
    if chroma is not None:
        textured &= chroma <= MAX_CHROMA
    textured &= ~glyphs(g) & ~_ruled(g) & ~drawn
    return textured.view(np.uint8)


def scale_bars(g: np.ndarray, run: int = 9) -> np.ndarray:
    """bool: grey-scale and colour bars and 8 px around them: the connected runs of ``run`` equal grey levels across
    (above the black level) that are at least 4 times as tall as wide and under 40 px wide. The texture filters see
    the bar's edges as texture; the probe face's bands are as wide as the image."""
    above = g > np.percentile(g, 2) + 2
    flat = ((cv2.boxFilter(g * g, -1, (run, 1)) - cv2.boxFilter(g, -1, (run, 1)) ** 2) < 0.25) & above
    n, labels, stats, _ = cv2.connectedComponentsWithStats(flat.view(np.uint8), connectivity=8)
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    bar = (h >= 4 * w) & (w < 40) & (h >= 4 * run)
    bar[0] = False
    if not bar.any():
        return np.zeros(g.shape, bool)
    return cv2.dilate(bar[labels].view(np.uint8), np.ones((17, 17), np.uint8)) > 0


def strokes(grey: np.ndarray) -> np.ndarray:
    """bool: where text is dense: thin bright strokes (a 3x3 opening takes them away, 80 grey levels or more)
    with black within 2 px, at a density of ``STROKE_DENSITY`` or more of an 11x11 window, and 2 px around. Dense
    lines of text (a depth scale) have too little flat ground for :func:`glyphs`; speckle's bright grains lie on
    tissue, not on black, and the image's edges are not thin."""
    black = float(np.percentile(grey, 2))
    opened = cv2.morphologyEx(grey, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    thin = (grey.astype(np.int16) - opened) > 80
    on_black = cv2.erode(grey, np.ones((5, 5), np.uint8)) <= black + 1
    density = cv2.boxFilter((thin & on_black).astype(np.float32), -1, (11, 11))
    return cv2.dilate((density >= STROKE_DENSITY).view(np.uint8), np.ones((5, 5), np.uint8)) > 0


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
    grey, chroma = _grey_and_chroma(image)
    drawn = _drawn(grey)
    textured = _textured(grey, chroma, drawn)
    k = max(3, int(round(CLOSE_FRACTION * min(h, w))) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    closed = cv2.morphologyEx(textured, cv2.MORPH_CLOSE, kernel)
    closed = cv2.morphologyEx(_fill_holes(closed), cv2.MORPH_OPEN, kernel)   # dark fluid in; thin text out
    lit = _faint(grey, chroma, drawn)
    # the image's textured parts joined through its dark-but-noisy depths and shadows; a flat black surround
    # keeps it apart from the menus
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed | lit, connectivity=8)
    if n <= 1:
        return None
    speckle = np.bincount(labels.ravel(), weights=(closed > 0).ravel(), minlength=n)
    texture = np.bincount(labels.ravel(), weights=(textured > 0).ravel(), minlength=n)
    gap = GAP_FRACTION * min(h, w)
    parts = _image_parts(stats, speckle, texture, gap, (h, w), min_fraction)
    if parts is None:
        return None
    # the specks beside what is drawn (text, ticks, the grey-scale bar's dark end) are the drawing's
    drawn |= _ruled(grey.astype(np.float32)) & (grey > np.percentile(grey, 2) + 2)
    parts = _dim_neighbours(stats, labels, grey, drawn.view(np.uint8), parts, gap, (h, w))
    x, y, bw, bh = cv2.boundingRect((np.isin(labels, parts) & (lit > 0)).view(np.uint8))
    if bw * bh < min_fraction * h * w:
        return None
    return ScanRegion(x, y, x + bw, y + bh, "2D", "found")


def _touches_border(stat: np.ndarray, frame: tuple[int, int]) -> bool:
    x, y, bw, bh = (int(v) for v in stat[:4])
    return x == 0 or y == 0 or x + bw == frame[1] or y + bh == frame[0]


def _neighbours(stats: np.ndarray, speckle: np.ndarray, texture: np.ndarray, best: int, gap: float,
                frame: tuple[int, int]) -> list[int]:
    """``best`` and the parts beside it that belong to the same image: an anechoic band (fluid, a vessel lumen)
    that is black from edge to edge splits an image in two. ``speckle`` counts each component's solid speckle (the
    closed, opened mask), ``texture`` its textured pixels (thin arcs too). A part that does not run along the
    frame's border (a menu) joins (:func:`_joins`) when it lies above or below the parts so far, within 3 ``gap``
    px and overlapping them by half across, with ``DEPTH_PART`` of ``best``'s solid speckle above (the probe
    face's near field past a black band; a title bar's text has none) or of its texture below (a far-field arc past
    the fluid); beside them within ``gap`` px, overlapping by a third along the depth, with ``SIDE_PART`` of its
    texture; or off a corner (``gap`` across, 3 ``gap`` along the depth: a sector's arc below its side) with
    ``SIDE_PART`` of its solid speckle."""
    x, y, bw, bh = (float(v) for v in stats[best, :4])
    box = [x, y, x + bw, y + bh]
    parts, changed = [best], True
    while changed:
        changed = False
        for i in range(1, len(stats)):
            if i in parts or _touches_border(stats[i], frame) or not _joins(stats[i], box, gap, (
                    speckle[i] / max(speckle[best], 1.0), texture[i] / max(texture[best], 1.0))):
                continue
            a0, b0, aw, ah = (float(v) for v in stats[i, :4])
            box = [min(box[0], a0), min(box[1], b0), max(box[2], a0 + aw), max(box[3], b0 + ah)]
            parts.append(i)
            changed = True
    return parts


def _dim_neighbours(stats: np.ndarray, labels: np.ndarray, grey: np.ndarray, drawn: np.ndarray, parts: list[int],
                    gap: float, frame: tuple[int, int]) -> list[int]:
    """``parts`` and the dim specks around them: a dark sector (fluid, a far field with little echo) is black but
    for the noise of its depths, which the faint mask finds as specks around the bright parts. A component joins
    when none of it is brighter than ``DIM`` above the black level (text, menus and the grey-scale bar are), it does
    not touch the frame's border nor lie within 8 px of such a bright component or of ``drawn`` (the specks of
    anti-aliased or compressed text, of scale ticks, the dark end of the grey-scale bar), and it lies within ``gap``
    px of the parts' box across and 3 ``gap`` along the depth."""
    black = float(np.percentile(grey, 2))
    peak = np.zeros(len(stats), np.int32)
    np.maximum.at(peak, labels.ravel(), grey.ravel().astype(np.int32))
    x0, y0, x1, y1 = stats[:, 0], stats[:, 1], stats[:, 0] + stats[:, 2], stats[:, 1] + stats[:, 3]
    taken = np.zeros(len(stats), bool)
    taken[parts] = True
    bright = (peak > black + DIM) & ~taken
    bright[0] = False
    halo = cv2.dilate(bright[labels].view(np.uint8) | drawn, np.ones((17, 17), np.uint8)) > 0  # specks of text, ticks
    dim = (peak <= black + DIM) & (x0 > 0) & (y0 > 0) & (x1 < frame[1]) & (y1 < frame[0])
    dim &= np.bincount(labels[halo], minlength=len(stats)) == 0
    dim[0] = False
    box = [x0[parts].min(), y0[parts].min(), x1[parts].max(), y1[parts].max()]
    while True:
        near = dim & ~taken & (x1 >= box[0] - gap) & (x0 <= box[2] + gap) & (y1 >= box[1] - 3 * gap) & \
            (y0 <= box[3] + 3 * gap)
        if not near.any():
            return [int(i) for i in np.flatnonzero(taken)]
        taken |= near
        box = [min(box[0], x0[near].min()), min(box[1], y0[near].min()), max(box[2], x1[near].max()),
               max(box[3], y1[near].max())]


def _joins(stat: np.ndarray, box: list[float], gap: float, share: tuple[float, float]) -> bool:
    """Whether the component ``stat`` (with ``share`` = its solid speckle and texture relative to the main part's)
    belongs to the image whose parts so far span ``box``; see :func:`_neighbours`."""
    x0, y0, x1, y1 = box
    a0, b0, aw, ah = (float(v) for v in stat[:4])
    a1, b1 = a0 + aw, b0 + ah
    dx, dy = max(0.0, a0 - x1, x0 - a1), max(0.0, b0 - y1, y0 - b1)
    ox = max(0.0, min(x1, a1) - max(x0, a0)) / max(1.0, min(x1 - x0, aw))
    oy = max(0.0, min(y1, b1) - max(y0, b0)) / max(1.0, min(y1 - y0, ah))
    speckle, texture = share
    if dx == 0 and dy <= 3 * gap and ox >= 1 / 2:       # along the depth: an anechoic layer may be wide
        return speckle >= DEPTH_PART if b1 <= y0 else texture >= DEPTH_PART
    if dy == 0:                                         # beside it
        return dx <= gap and oy >= 1 / 3 and texture >= SIDE_PART
    return dx <= gap and dy <= 3 * gap and speckle >= SIDE_PART   # off a corner: a sector's arc below its side


def _faint(grey: np.ndarray, chroma: np.ndarray | None, drawn: np.ndarray) -> np.ndarray:
    """uint8 0/1: the grey pixels brighter than the surround's black level by more than its noise (the noise of dark
    depths counts), not a flat bright panel (a menu), a drawn gradient, text nor colour."""
    g = grey.astype(np.float32)
    mean = cv2.boxFilter(g, -1, (5, 5))
    flat_panel = (cv2.boxFilter(g * g, -1, (5, 5)) - mean * mean < 1.0) & (grey > 3 * FAINT + 30)
    flat_panel |= _ruled(g) & (grey > 3 * FAINT + 30)
    black = float(np.percentile(grey, 2))                # the surround's black level (video capture: up to 16)
    dark = grey[grey <= black + 3]
    noise = float(dark.std()) if dark.size else 0.0
    lit = (grey > black + max(FAINT, 3 * noise)) & ~flat_panel & ~drawn
    if chroma is not None:
        lit &= chroma <= MAX_CHROMA
    return cv2.morphologyEx(lit.view(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))


def _ruled(g: np.ndarray, run: int = 9) -> np.ndarray:
    """bool: pixels on a run of ``run`` equal grey levels along a row or a column: the grey-scale bar and other
    drawn gradients (constant across, ramping along). Speckle varies in both directions."""
    flat = lambda k: (cv2.boxFilter(g * g, -1, k) - cv2.boxFilter(g, -1, k) ** 2) < 0.25  # noqa: E731
    return flat((run, 1)) | flat((1, run))


def _image_parts(stats: np.ndarray, speckle: np.ndarray, texture: np.ndarray, gap: float, frame: tuple[int, int],
                 min_fraction: float) -> list[int] | None:
    """The components that make the image: the one :func:`_pick` chooses and its :func:`_neighbours`; else (black
    bands split the image into parts none of which is big enough alone) the first of the five most speckled inner
    components whose neighbours and it have solid speckle over a fifth of ``min_fraction`` of the frame; None when
    neither."""
    h, w = frame
    best = _pick(stats, speckle, h, w, min_fraction)
    if best is not None:
        return _neighbours(stats, speckle, texture, best, gap, frame)
    need = 0.2 * min_fraction * h * w                  # together, with a box of min_fraction (the caller checks)
    inner = [i for i in np.argsort(-speckle) if i > 0 and speckle[i] >= 0.25 * need and
             not _touches_border(stats[i], frame)][:5]
    for i in inner:
        parts = _neighbours(stats, speckle, texture, int(i), gap, frame)
        if speckle[parts].sum() >= need:
            return parts
    return None


def _pick(stats: np.ndarray, speckle: np.ndarray, h: int, w: int, min_fraction: float) -> int | None:
    """The component that is the image: of those with enough speckle, the one with the most that does not run
    along the frame's border (menu bars and side panels do; an image framed by them does not), else one that is
    speckle over 30 % of its box (a frame that is all image, a sector against the frame's edge); None otherwise."""
    big = [i for i in range(1, len(stats)) if speckle[i] >= 0.5 * min_fraction * h * w]
    if not big:
        return None

    inner = [i for i in big if not _touches_border(stats[i], (h, w))]
    if inner:
        return max(inner, key=lambda i: speckle[i])
    # along the border only: an image filling the frame is speckle nearly throughout; menus and text are not
    full = [i for i in big if speckle[i] >= 0.3 * stats[i, cv2.CC_STAT_WIDTH] * stats[i, cv2.CC_STAT_HEIGHT]]
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
