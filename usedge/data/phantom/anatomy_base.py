"""Building blocks of the anatomy drawers: tissues, the scene painter and shape helpers.

A drawer paints tissues into a tissue-index map with polygons (painter's order: later shapes cover earlier
ones) and rasterises its labels from the SAME polygons, so labels are exact in output pixels. Every shape is
a float (N, 2) polygon in output pixel coordinates (pixel centres at integers) drawn with 4 bits of
sub-pixel precision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from usedge.data.phantom.physics import Geometry, get_geometry, variants

SHIFT = 4
_ONE = 1 << SHIFT


@dataclass(frozen=True)
class Tissue:
    """Acoustic properties of one tissue.

    Attributes:
        echo: backscatter power relative to reference soft tissue (1.0).
        atten: attenuation, dB/cm/MHz (soft tissue 0.5, fluid 0.02, bone 20).
        spec: coherent (specular) amplitude, in units of the reference tissue's RMS echo.
        tex: strength of the smooth log-normal texture that modulates ``echo``.
    """

    echo: float
    atten: float = 0.5
    spec: float = 0.0
    tex: float = 0.25

    def scaled(self, factor: float) -> Tissue:
        """The same tissue reflecting ``factor`` x the power (diffuse echo x factor, specular x sqrt)."""
        return replace(self, echo=self.echo * factor, spec=self.spec * math.sqrt(factor))


# A palette (per-scene jitter is applied by the drawers).
SOFT = Tissue(1.0, 0.5, 0.0, 0.3)
LIVER = Tissue(1.1, 0.55, 0.0, 0.15)
FAT = Tissue(0.15, 0.45, 0.0, 0.45)
MUSCLE = Tissue(0.35, 0.9, 0.0, 0.35)
GLAND = Tissue(1.6, 0.7, 0.0, 0.55)
SKIN = Tissue(5.0, 0.9, 1.5, 0.2)
FASCIA = Tissue(6.0, 0.8, 2.0, 0.2)
FLUID = Tissue(2e-5, 0.02, 0.0, 0.0)
BLOOD = Tissue(1e-4, 0.15, 0.0, 0.0)
BONE = Tissue(20.0, 25.0, 12.0, 0.15)
FETAL_SKULL = Tissue(10.0, 3.0, 3.0, 0.15)
CALCIFICATION = Tissue(30.0, 30.0, 10.0, 0.0)
PLACENTA = Tissue(1.4, 0.6, 0.0, 0.4)
AIR = Tissue(0.02, 40.0, 0.0, 0.0)


def polygon_i32(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts, np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def fill(img: np.ndarray, pts: np.ndarray, value: float) -> None:
    """Fill polygon ``pts`` (N, 2 float pixels) into ``img`` in place."""
    cv2.fillPoly(img, [polygon_i32(pts)], value, cv2.LINE_8, SHIFT)


def stroke(img: np.ndarray, pts: np.ndarray, value: float, width: int, closed: bool = False) -> None:
    """Draw polyline ``pts`` with an integer pixel ``width``."""
    cv2.polylines(img, [polygon_i32(pts)], closed, value, max(1, int(round(width))), cv2.LINE_8, SHIFT)


def fill_mask(size: int, pts: np.ndarray, value: int = 1) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    fill(m, pts, value)
    return m


# ----------------------------------------------------------------------------------------------------
# Shapes (all return float (N, 2) arrays)


def rot(v: np.ndarray, angle: float) -> np.ndarray:
    """Rotate vectors by ``angle`` radians (image coordinates: x right, y down; positive = clockwise)."""
    c, s = math.cos(angle), math.sin(angle)
    v = np.asarray(v, np.float64)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], -1)


def unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def ellipse(c, a: float, b: float, angle: float = 0.0, n: int = 72, t0: float = 0.0,
            t1: float = 2 * math.pi) -> np.ndarray:
    """Ellipse (or arc from t0 to t1) with semi-axes a (along ``angle``) and b."""
    t = np.linspace(t0, t1, n, endpoint=(t1 - t0) < 2 * math.pi - 1e-9)
    return rot(np.stack([a * np.cos(t), b * np.sin(t)], -1), angle) + np.asarray(c, np.float64)


def blob(rng: np.random.Generator, c, a: float, b: float, angle: float = 0.0, irregular: float = 0.08,
         spikes: int = 0, spike_len: float = 0.25, n: int = 120) -> np.ndarray:
    """Ellipse with a smoothly perturbed radius (``irregular`` relative amplitude) and optional spicules."""
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    k = np.arange(2, 7)
    coef = rng.normal(0.0, irregular, (len(k), 2)) / np.sqrt(k - 1)[:, None]
    rad = 1.0 + (coef[:, :1] * np.cos(np.outer(k, t)) + coef[:, 1:] * np.sin(np.outer(k, t))).sum(0)
    if spikes:
        centres = rng.uniform(0, 2 * math.pi, spikes)
        width = rng.uniform(0.04, 0.1, spikes)
        d = np.angle(np.exp(1j * (t[None, :] - centres[:, None])))
        tent = np.clip(1 - np.abs(d) / width[:, None], 0, 1)
        rad = rad + (rng.uniform(0.4, 1.0, spikes)[:, None] * spike_len * tent).sum(0)
        rad = rad + rng.normal(0, irregular * 0.35, n)
    rad = np.maximum(rad, 0.35)
    return rot(np.stack([a * rad * np.cos(t), b * rad * np.sin(t)], -1), angle) + np.asarray(c, np.float64)


def bezier(p0, p1, p2, n: int = 32) -> np.ndarray:
    """Quadratic Bezier curve from p0 to p2 with control point p1."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def tube(centre: np.ndarray, half_width: float | np.ndarray) -> np.ndarray:
    """Polygon of a thick curve: ``centre`` (N, 2) offset by ±``half_width`` along its normals."""
    c = np.asarray(centre, np.float64)
    d = np.gradient(c, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    nrm = np.stack([-d[:, 1], d[:, 0]], 1)
    hw = np.broadcast_to(np.asarray(half_width, np.float64), (len(c),))[:, None]
    return np.concatenate([c + nrm * hw, (c - nrm * hw)[::-1]], 0)


def smooth_noise(rng: np.random.Generator, size: int, cells: int, coarse: int = 0,
                 coarse_weight: float = 0.0) -> np.ndarray:
    """Smooth random field (size × size float32, std ~1) with ~``cells`` features per side, plus optionally
    ``coarse_weight`` x a coarser field with ~``coarse`` features (one cubic resize in all)."""
    grid = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    if coarse:
        small = rng.standard_normal((coarse + 3, coarse + 3)).astype(np.float32)
        grid += np.float32(coarse_weight) * cv2.resize(small, (cells + 3, cells + 3), interpolation=cv2.INTER_CUBIC)
    pad = size // cells
    big = cv2.resize(grid, (size + 3 * pad, size + 3 * pad), interpolation=cv2.INTER_CUBIC)
    return big[pad:pad + size, pad:pad + size]


# ----------------------------------------------------------------------------------------------------
# Scene


class Scene:
    """The tissue-index map of one image under construction, plus its geometry.

    Tissue 0 is the background (reference soft tissue unless :meth:`background` changes it).
    """

    def __init__(self, rng: np.random.Generator, size: int, preset: str, variant: int | None = None) -> None:
        self.rng = rng
        self.size = size
        self.variant = int(rng.integers(variants(preset))) if variant is None else variant
        self.geom: Geometry = get_geometry(preset, size, self.variant)
        self.idx = np.zeros((size, size), np.uint8)
        self.tissues: list[Tissue] = [SOFT]
        self.echo_mul: np.ndarray | None = None
        self.texture_cells = (6, max(8, size // 10))

    def background(self, t: Tissue) -> None:
        self.tissues[0] = t

    def tissue(self, t: Tissue, jitter: float = 0.15) -> int:
        """Register a tissue (its echo jittered by a log-uniform factor of ±``jitter``); return its id."""
        if len(self.tissues) >= 255:
            raise RuntimeError("too many tissues in one scene")
        f = math.exp(float(self.rng.uniform(-jitter, jitter))) if jitter else 1.0
        self.tissues.append(t.scaled(f))
        return len(self.tissues) - 1

    def fill(self, pts: np.ndarray, tid: int) -> None:
        fill(self.idx, pts, tid)

    def stroke(self, pts: np.ndarray, tid: int, width: float, closed: bool = False) -> None:
        stroke(self.idx, pts, tid, width, closed)

    def band(self, d0: float, d1: float, tid: int, wobble: float = 0.0, n: int = 48) -> None:
        """Fill the layer between fractional depths d0 and d1 (probe-parallel), with wavy boundaries."""
        w0 = smooth_1d(self.rng, n, wobble) if wobble else None
        w1 = smooth_1d(self.rng, n, wobble) if wobble else None
        self.fill(self.geom.band(d0, d1, w0, w1, n), tid)

    def modulate(self) -> np.ndarray:
        """A multiplicative echo map (ones) the drawer may edit in place (patterns, whorls, artefacts)."""
        if self.echo_mul is None:
            self.echo_mul = np.ones((self.size, self.size), np.float32)
        return self.echo_mul

    def maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(echo, spec, atten) float32 maps: per-tissue values with a smooth log-normal texture on echo."""
        lut = np.zeros((256, 4), np.float32)
        lut[: len(self.tissues)] = [(t.echo, t.spec, t.atten, t.tex) for t in self.tissues]
        echo, spec, atten, tex = (cv2.LUT(self.idx, np.ascontiguousarray(lut[:, k])) for k in range(4))
        coarse, fine = self.texture_cells
        field = smooth_noise(self.rng, self.size, fine, coarse, 1.3)
        field *= np.float32(0.6)
        echo = echo * cv2.exp(tex * field)
        if self.echo_mul is not None:
            echo *= self.echo_mul
            spec = spec * cv2.sqrt(self.echo_mul)
        return echo, spec, atten


def smooth_1d(rng: np.random.Generator, n: int, amplitude: float, cells: int = 6) -> np.ndarray:
    """Smooth random 1-D profile of ``n`` values with std ~``amplitude``."""
    knots = rng.normal(0.0, amplitude, cells)
    return np.interp(np.linspace(0, cells - 1, n), np.arange(cells), knots)


def fit(geom: Geometry, rng: np.random.Generator, outline: np.ndarray, depth: tuple[float, float],
        lateral: tuple[float, float], margin: float = 4.0, tries: int = 24) -> tuple[np.ndarray, float]:
    """Find a centre (and shrink factor) so ``outline`` (points relative to its centre) lies inside the sector.

    Centres are drawn at fractional ``depth`` / ``lateral`` positions; after every 8 failed tries the outline
    shrinks by 15 %. Returns (centre, scale) — apply ``scale`` to the shape before placing it at ``centre``.
    """
    scale = 1.0
    for k in range(tries):
        centre = geom.at(rng.uniform(*depth), rng.uniform(*lateral))
        if geom.contains(outline * scale + centre, margin).all():
            return centre, scale
        if k % 8 == 7:
            scale *= 0.85
    centre = geom.at(np.mean(depth), np.mean(lateral))
    while scale > 0.1 and not geom.contains(outline * scale + centre, margin).all():
        scale *= 0.9
    return centre, scale


@dataclass
class Drawn:
    """A drawer's result: the scene and its label source in output pixels, before the sector crop.

    ``label`` by kind: segmentation: uint8 class map; classification: int; detection: uint8 mask of the
    object (the box is its tight bounding box); regression: (K, 2) float array of points. ``truth``: the exact
    clinical measurements of the drawn geometry (:mod:`usedge.data.phantom.truth`), name -> (value, kind).
    """

    scene: Scene
    label: object
    truth: dict = field(default_factory=dict)


def ring_incidence(sc: Scene, c: np.ndarray, a: float, b: float, angle: float, thickness: float,
                   floor: float = 0.2) -> None:
    """Angle-dependent specular reflection of an elliptical ring (skull, bone arcs): where the beam grazes the
    ring its echo drops to ``floor`` x; where it hits it perpendicularly it stays. Edits ``sc.modulate()``."""
    ring = np.zeros((sc.size, sc.size), np.uint8)
    fill(ring, ellipse(c, a + 1, b + 1, angle), 1)
    fill(ring, ellipse(c, a - thickness - 1, b - thickness - 1, angle), 0)
    ys, xs = np.nonzero(ring)
    if len(xs) == 0:
        return
    p = np.stack([xs, ys], -1).astype(np.float64)
    q = rot(p - c, -angle)
    n = rot(np.stack([q[:, 0] / a ** 2, q[:, 1] / b ** 2], -1), angle)
    d = sc.geom.down(p)
    cos2 = (n * d).sum(-1) ** 2 / np.maximum((n * n).sum(-1), 1e-12)
    mul = sc.modulate()
    mul[ys, xs] *= (floor + (1.0 - floor) * cos2).astype(np.float32)
