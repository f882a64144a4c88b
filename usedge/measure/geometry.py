"""Plane geometry the measurements share, in millimetres (points scaled before anything is measured, so
non-square pixels give the right answer): angles at a vertex, a mask's outline and connected parts, the
longest (Feret) axis of an outline and its extent across that axis."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from usedge.measure.base import Scale


def to_mm(points: np.ndarray, scale: Scale) -> np.ndarray:
    """N×2 (x, y) pixels as N×2 millimetres (px when uncalibrated)."""
    return np.asarray(points, np.float64).reshape(-1, 2) * np.array([scale.sx, scale.sy])


def inside(points: np.ndarray, width: int, height: int) -> bool:
    """Whether every point is finite and within the image (pixel centres 0 .. size - 1)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return bool(np.isfinite(p).all() and (p[:, 0] >= 0).all() and (p[:, 0] <= width - 1).all()
                and (p[:, 1] >= 0).all() and (p[:, 1] <= height - 1).all())


def angle_at(vertex: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The angle a-vertex-b in degrees (0..180)."""
    u, v = np.asarray(a, np.float64) - vertex, np.asarray(b, np.float64) - vertex
    return math.degrees(math.atan2(abs(u[0] * v[1] - u[1] * v[0]), float(u @ v)))


#: masks are measured on a grid whose longer side is about this many pixels: a 640x480 frame every fourth pixel, a
#: 256-px one every second. The model's masks come from a 64x64 map, so finer sampling adds time, not information:
#: on 640-px phantom images the packaged default's errors on this grid and at full resolution agree within 0.1 mm
#: for HC, BPD, AC and lesion axes (benchmarks/measure_grid.py, docs/measure.md).
GRID_SIDE = 160


def grid_step(shape: tuple[int, ...]) -> int:
    """How many frame pixels one measurement-grid pixel spans (1 for frames up to ~1.5 x GRID_SIDE)."""
    return max(1, round(max(shape[:2]) / GRID_SIDE))


def edge_inset(step: int) -> float:
    """How far (frame px, on average along the outline's normal) the centres of a grid's boundary cells lie inside
    the structure's edge: the last foreground sample is 0 .. step - 1 px inside along a grid axis, (step - 1) / 2
    on average, and along the normal that shrinks by the mean |cos| of the normal's angle to the nearest axis,
    2 sqrt(2) / pi (0.90). At full resolution (step 1) the boundary pixels' centres are the edge (a filled
    polygon's boundary pixels straddle it); measured on drawn ellipses at steps 1-4: within 0.1 px."""
    return (step - 1) / 2 * (2 * math.sqrt(2) / math.pi)


def subsample(mask: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th pixel of ``mask`` along both axes (a view)."""
    mask = np.asarray(mask)
    return mask[::step, ::step] if step > 1 else mask


#: the foreground's box is looked for on every COARSE-th pixel first (structures at least this thick are found
#: there), then refined inside that window at full resolution
COARSE = 4


def foreground_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of ``mask > 0`` (w = 0 when empty). A coarse pass finds the window, a full-resolution pass
    inside it the exact box; a mask whose foreground the coarse pass misses (only specks thinner than COARSE
    pixels) is searched whole."""
    h, w = mask.shape[:2]
    coarse = np.ascontiguousarray(mask[::COARSE, ::COARSE])
    cx, cy, cw, ch = cv2.boundingRect(coarse)
    if cw == 0:
        return cv2.boundingRect(np.ascontiguousarray(mask))
    x0, y0 = max(0, (cx - 1) * COARSE), max(0, (cy - 1) * COARSE)
    x1, y1 = min(w, (cx + cw + 1) * COARSE), min(h, (cy + ch + 1) * COARSE)
    bx, by, bw, bh = cv2.boundingRect(np.ascontiguousarray(mask[y0:y1, x0:x1]))
    return bx + x0, by + y0, bw, bh


def _select(mask: np.ndarray, step: int, value: int | None) -> tuple[np.ndarray, int, int, tuple[int, int]]:
    """The grid cells of the foreground (or of ``value``) as uint8 0/1, cropped first to the mask's foreground box:
    (cells, gx, gy, grid shape), the crop starting at grid cell (gx, gy)."""
    mask = np.asarray(mask)
    if mask.dtype != np.uint8:
        mask = (mask > 0).view(np.uint8)
    h, w = mask.shape[:2]
    shape = (-(-h // step), -(-w // step))
    box = foreground_box(mask)
    x, y = box[0] - box[0] % step, box[1] - box[1] % step        # on the grid: every step-th frame pixel
    crop = mask[y:box[1] + box[3], x:box[0] + box[2]]
    grid = crop[::step, ::step] if step > 1 else crop
    cells = (grid > 0 if value is None else grid == value).view(np.uint8)
    return cells, x // step, y // step, shape


@dataclass(frozen=True)
class Part:
    """A foreground region cropped to its bounding box on the measurement grid: ``mask`` (bool) starts at
    (``x0``, ``y0``) of a grid of ``frame`` = (height, width) cells, one cell every ``step`` frame pixels (grid cell
    j is frame pixel j x step). Working on the crop keeps contour and distance work proportional to the
    structure; every coordinate a Part gives out is in frame pixels."""

    mask: np.ndarray          # uint8 0/1
    x0: int
    y0: int
    frame: tuple[int, int]
    step: int = 1

    @property
    def area(self) -> int:
        """Frame pixels covered."""
        return int(np.count_nonzero(self.mask)) * self.step * self.step

    @property
    def touches_edge(self) -> bool:
        """Whether the region reaches the frame's border (its bounding box is tight, so an edge of the box on the
        frame's edge is foreground there)."""
        h, w = self.mask.shape
        return self.x0 == 0 or self.y0 == 0 or self.x0 + w == self.frame[1] or self.y0 + h == self.frame[0]

    def outline(self, every_point: bool = True) -> np.ndarray:
        """The largest outer contour as N×2 float (x, y) cell centres, in frame pixels (``every_point=False``:
        only the ends of its straight runs, which is enough for extents and hulls)."""
        c = self._contour(cv2.CHAIN_APPROX_NONE if every_point else cv2.CHAIN_APPROX_SIMPLE)
        return (c + np.array([self.x0 - 1, self.y0 - 1])) * self.step

    def _contour(self, mode: int) -> np.ndarray:
        padded = cv2.copyMakeBorder(np.ascontiguousarray(self.mask), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, mode)
        if not contours:
            return np.zeros((0, 2), np.float64)
        return max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)

    def hull(self) -> np.ndarray:
        """The convex hull of the outline's cell centres (frame px): what extents depend on."""
        c = self.outline(every_point=False)
        if len(c) >= 3:
            c = cv2.convexHull(c.astype(np.float32)).reshape(-1, 2).astype(np.float64)
        return c

    @property
    def inset(self) -> float:
        """How far inside the edge the outline's cell centres lie, on average (:func:`edge_inset`)."""
        return edge_inset(self.step)


def part_of(mask: np.ndarray, value: int | None = None, step: int | None = None) -> Part | None:
    """All of ``mask > 0`` (or ``mask == value``) as one cropped Part (None when empty), on the measurement grid."""
    step = grid_step(np.shape(mask)) if step is None else step
    m, gx, gy, shape = _select(mask, step, value)
    if value is None and m.size and m.any():    # the crop is the foreground's box already (to within a cell)
        return Part(np.ascontiguousarray(m), gx, gy, shape, step)
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(m)) if m.size else (0, 0, 0, 0)
    if w == 0 or h == 0:
        return None
    return Part(np.ascontiguousarray(m[y:y + h, x:x + w]), gx + x, gy + y, shape, step)


def components(mask: np.ndarray, min_area: int, value: int | None = None, step: int | None = None) -> list[Part]:
    """Each 8-connected part of ``mask > 0`` (or ``mask == value``) covering at least ``min_area`` frame pixels,
    cropped, largest first."""
    step = grid_step(np.shape(mask)) if step is None else step
    m, gx, gy, shape = _select(mask, step, value)
    x, y, w, h = cv2.boundingRect(m) if m.size else (0, 0, 0, 0)
    if w == 0 or h == 0:
        return []
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m[y:y + h, x:x + w], connectivity=8)
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    out = []
    for i in order:
        if stats[i, cv2.CC_STAT_AREA] * step * step < min_area:
            break
        cx, cy, cw, ch = (int(stats[i, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                                    cv2.CC_STAT_HEIGHT))
        out.append(Part((labels[cy:cy + ch, cx:cx + cw] == i).view(np.uint8), gx + x + cx, gy + y + cy, shape,
                        step))
    return out


def memo(options: dict, key: tuple, compute):
    """``compute()`` once per frame's measurement pass (``measure`` hands every function one ``_cache``)."""
    cache = options.get("_cache")
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def extent_mm(direction_px: np.ndarray, length_px: float, scale: Scale) -> float:
    """``length_px`` frame pixels along ``direction_px`` (a unit vector) in mm (px uncalibrated)."""
    return length_px * float(np.hypot(direction_px[0] * scale.sx, direction_px[1] * scale.sy))


@dataclass(frozen=True)
class Axes:
    """The longest axis of a shape (its two end points and length) and its widest extent perpendicular to it."""

    ends: tuple[tuple[float, float], tuple[float, float]]
    long: float
    short: float
    angle_deg: float          # of the long axis, from +x towards +y (image down), 0..180


def feret_axes(points_mm: np.ndarray) -> Axes | None:
    """The maximum Feret diameter of the points (on their convex hull) and the extent across it."""
    if len(points_mm) < 3:
        return None
    hull = cv2.convexHull(points_mm.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 2:
        return None
    d = np.linalg.norm(hull[:, None, :] - hull[None, :, :], axis=-1)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    long = float(d[i, j])
    if long <= 0:
        return None
    u = (hull[j] - hull[i]) / long
    across = (hull - hull[i]) @ np.array([-u[1], u[0]])
    angle = math.degrees(math.atan2(u[1], u[0])) % 180.0
    return Axes((tuple(hull[i]), tuple(hull[j])), long, float(across.max() - across.min()), angle)
