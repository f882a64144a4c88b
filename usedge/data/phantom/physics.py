"""Image formation of the phantom: probe geometry, speckle, PSF, attenuation, TGC, log compression.

The anatomy drawers paint three maps in Cartesian OUTPUT pixels (so labels are exact there):

* ``echo``  backscatter power relative to reference soft tissue (1.0); fluid ~2e-5 (-47 dB), bone 20;
* ``spec``  coherent (specular) amplitude of smooth reflectors (bone surfaces, pleura, walls);
* ``atten`` attenuation coefficient in dB/cm/MHz (soft tissue 0.5, fluid 0.02, bone 20+).

:func:`render` samples them on the beam grid (depth × line) of the probe, forms fully developed speckle
(complex Gaussian scatterers scaled by ``sqrt(echo)``, so the envelope is Rayleigh), accumulates attenuation
along every beam (shadows behind bone, enhancement behind fluid), blurs the complex field with an
anisotropic Gaussian PSF (axial sharper than lateral), takes the envelope, applies time-gain compensation,
gain and log compression to a dynamic range, and scan-converts to the output grid with ``cv2.remap``.
Because the simulation runs in beam coordinates, lateral speckle grows with depth in a fan and shadows
run along the beams. Remap tables depend only on (preset, size, variant) and are cached.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from usedge.errors import ConfigError

LN10_20 = math.log(10.0) / 20.0
#: Soft-tissue attenuation (dB/cm/MHz) the TGC is designed to compensate.
TGC_REFERENCE_ATTEN = 0.5
#: The auto-TGC never adds more than this multiple of the soft-tissue loss (its gain range is finite).
TGC_MAX_FACTOR = 1.3


@dataclass(frozen=True)
class ProbePreset:
    """A transducer family. Geometry choices are discrete (so remap tables can be cached); the
    acquisition ranges are continuous.

    Attributes:
        probe: ``curvilinear`` (fan, incl. phased and endocavity) or ``linear``.
        r0: fan: radius of the transducer face / image size (choices).
        half_angle_deg: fan: half opening angle (choices).
        width: linear: aperture width / image size (choices).
        top: skin line below the image top, / image size (choices).
        freq_mhz, depth_cm: centre frequency and imaged depth ranges.
        line_px: lateral line spacing at mid depth in output pixels (at 256 px).
    """

    name: str
    probe: str
    r0: tuple[float, ...] = (0.0,)
    half_angle_deg: tuple[float, ...] = (0.0,)
    width: tuple[float, ...] = (1.0,)
    top: tuple[float, ...] = (0.03,)
    freq_mhz: tuple[float, float] = (3.0, 5.0)
    depth_cm: tuple[float, float] = (10.0, 16.0)
    line_px: float = 1.6


PRESETS: dict[str, ProbePreset] = {
    "abdominal": ProbePreset("abdominal", "curvilinear", r0=(0.16, 0.24, 0.32), half_angle_deg=(30.0, 34.0, 38.0),
                             top=(0.02, 0.05), freq_mhz=(2.5, 5.0), depth_cm=(9.0, 18.0)),
    "phased": ProbePreset("phased", "curvilinear", r0=(0.015, 0.03), half_angle_deg=(38.0, 42.0, 45.0),
                          top=(0.02, 0.04), freq_mhz=(2.0, 3.5), depth_cm=(13.0, 18.0), line_px=1.8),
    "endocavity": ProbePreset("endocavity", "curvilinear", r0=(0.05, 0.08), half_angle_deg=(48.0, 54.0, 60.0),
                              top=(0.02, 0.04), freq_mhz=(5.0, 8.0), depth_cm=(6.0, 10.0)),
    "linear": ProbePreset("linear", "linear", width=(0.72, 0.86, 1.0), top=(0.0, 0.03, 0.06),
                          freq_mhz=(7.0, 12.0), depth_cm=(3.0, 6.0), line_px=1.4),
}


@dataclass(frozen=True, eq=False)
class Geometry:
    """Scan geometry of one probe setting, with its cached remap tables.

    Fan (``probe == 'curvilinear'``): beams leave ``apex`` at angles ``-half_angle..half_angle`` (0 = straight
    down); samples run from radius ``r0`` (skin line) to ``r1``. Linear: beams are the columns
    ``x0..x1``, samples the rows ``y0..y1``. All in output pixels.

    Attributes:
        beam_x, beam_y: (nd, nl) float32 Cartesian position of every beam sample (for sampling the maps).
        scan_x, scan_y: (size, size) float32 beam (line, sample) index of every output pixel (for scan
            conversion); far outside the grid where the pixel is outside the sector.
        mask: (size, size) uint8, 1 inside the scan sector.
    """

    preset: str
    probe: str
    size: int
    apex: tuple[float, float]
    r0: float
    r1: float
    half_angle: float
    x0: float
    x1: float
    y0: float
    y1: float
    nd: int
    nl: int
    beam_x: np.ndarray
    beam_y: np.ndarray
    scan_x: np.ndarray
    scan_y: np.ndarray
    mask: np.ndarray
    apod_db: np.ndarray

    @property
    def is_fan(self) -> bool:
        return self.probe == "curvilinear"

    @property
    def depth_px(self) -> float:
        """Imaged depth (skin line to bottom) in output pixels."""
        return self.r1 - self.r0 if self.is_fan else self.y1 - self.y0

    def at(self, depth: float | np.ndarray, lateral: float | np.ndarray) -> np.ndarray:
        """Cartesian point(s) at fractional ``depth`` (0 skin .. 1 bottom) and ``lateral`` (-1 .. 1 edge)."""
        d, lat = np.asarray(depth, np.float64), np.asarray(lateral, np.float64)
        if self.is_fan:
            r = self.r0 + d * (self.r1 - self.r0)
            th = lat * self.half_angle
            x, y = self.apex[0] + r * np.sin(th), self.apex[1] + r * np.cos(th)
        else:
            x, y = (self.x0 + self.x1) / 2 + lat * (self.x1 - self.x0) / 2, self.y0 + d * (self.y1 - self.y0)
        x, y = np.broadcast_arrays(x, y)
        return np.stack([x, y], -1)

    def depth_of(self, pts: np.ndarray) -> np.ndarray:
        """Fractional depth of Cartesian point(s)."""
        pts = np.asarray(pts, np.float64)
        if self.is_fan:
            r = np.hypot(pts[..., 0] - self.apex[0], pts[..., 1] - self.apex[1])
            return (r - self.r0) / (self.r1 - self.r0)
        return (pts[..., 1] - self.y0) / (self.y1 - self.y0)

    def lateral_of(self, pts: np.ndarray) -> np.ndarray:
        """Fractional lateral position (-1 .. 1 across the sector) of Cartesian point(s)."""
        pts = np.asarray(pts, np.float64)
        if self.is_fan:
            return np.arctan2(pts[..., 0] - self.apex[0], pts[..., 1] - self.apex[1]) / self.half_angle
        return (pts[..., 0] - (self.x0 + self.x1) / 2) / ((self.x1 - self.x0) / 2)

    def down(self, pts: np.ndarray) -> np.ndarray:
        """Unit beam direction (away from the probe) at Cartesian point(s)."""
        pts = np.asarray(pts, np.float64)
        if not self.is_fan:
            return np.broadcast_to(np.array([0.0, 1.0]), pts.shape).copy()
        v = pts - np.asarray(self.apex)
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)

    def contains(self, pts: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """True for points inside the scan sector AND the image, at least ``margin`` px from both edges."""
        pts = np.asarray(pts, np.float64)
        x, y = pts[..., 0], pts[..., 1]
        inside = (x >= margin) & (y >= margin) & (x <= self.size - 1 - margin) & (y <= self.size - 1 - margin)
        if self.is_fan:
            dx, dy = x - self.apex[0], y - self.apex[1]
            r = np.hypot(dx, dy)
            th = np.arctan2(dx, dy)
            lat = (self.half_angle - np.abs(th)) * r
            return inside & (r >= self.r0 + margin) & (r <= self.r1 - margin) & (lat >= margin) & (dy > 0)
        return inside & (x >= self.x0 + margin) & (x <= self.x1 - margin) & (y >= self.y0 + margin) & (
            y <= self.y1 - margin)

    def band(self, d0: float, d1: float, wobble0: np.ndarray | None = None, wobble1: np.ndarray | None = None,
             n: int = 48, lat: tuple[float, float] = (-1.6, 1.6)) -> np.ndarray:
        """Polygon of the layer between fractional depths d0 < d1, following the probe face (arcs for a fan),
        from lateral ``lat[0]`` to ``lat[1]`` (default: past both sector sides). ``wobble*`` (n values, px)
        displace the two boundaries along depth."""
        lats = np.linspace(lat[0], lat[1], n)
        w0 = np.zeros(n) if wobble0 is None else np.asarray(wobble0, np.float64)
        w1 = np.zeros(n) if wobble1 is None else np.asarray(wobble1, np.float64)
        dp = self.depth_px
        top = self.at(d0 + w0 / dp, lats)
        bottom = self.at(d1 + w1[::-1] / dp, lats[::-1])
        return np.concatenate([top, bottom], 0)

    def meta(self) -> dict:
        """JSON-serialisable description of the sector."""
        if self.is_fan:
            return {"type": "fan", "apex_xy": [round(self.apex[0], 2), round(self.apex[1], 2)],
                    "r0": round(self.r0, 2), "r1": round(self.r1, 2),
                    "half_angle_deg": round(math.degrees(self.half_angle), 2)}
        return {"type": "rect", "x0": round(self.x0, 2), "x1": round(self.x1, 2), "y0": round(self.y0, 2),
                "y1": round(self.y1, 2)}


def variants(preset: str) -> int:
    """Number of discrete geometry variants of a preset."""
    p = PRESETS[preset]
    return len(p.r0) * len(p.half_angle_deg) * len(p.width) * len(p.top)


@lru_cache(maxsize=256)
def get_geometry(preset: str, size: int, variant: int = 0) -> Geometry:
    """The (cached) geometry of ``preset`` at ``size`` px, variant ``0 .. variants(preset)-1``."""
    if preset not in PRESETS:
        raise ConfigError(f"Unknown probe preset '{preset}'.", fix=f"use one of: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    combos = [(a, b, c, d) for a in p.r0 for b in p.half_angle_deg for c in p.width for d in p.top]
    r0f, ha_deg, width, top = combos[variant % len(combos)]
    s = float(size)
    if p.probe == "linear":
        return _linear(p, size, width * s, top * s + 1.0, s - 2.0 - 0.01 * s)
    return _fan(p, size, r0f * s, math.radians(ha_deg), top * s + 1.0, s - 2.0 - 0.015 * s)


def _fan(p: ProbePreset, size: int, r0: float, ha: float, top: float, bottom: float) -> Geometry:
    ax, ay = (size - 1) / 2.0, top - r0
    r1 = bottom - ay
    nd = int(math.ceil(r1 - r0)) + 1
    scale = size / 256.0
    nl = max(32, int(round(ha * (r0 + r1) / (p.line_px * scale))))
    r = np.linspace(r0, r1, nd)
    th = np.linspace(-ha, ha, nl)
    beam_x = (ax + r[:, None] * np.sin(th)[None, :]).astype(np.float32)
    beam_y = (ay + r[:, None] * np.cos(th)[None, :]).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - ax, yy - ay
    rr, tt = np.hypot(dx, dy), np.arctan2(dx, dy)
    inside = (rr >= r0) & (rr <= r1) & (np.abs(tt) <= ha) & (dy > 0)
    si = (rr - r0) / (r1 - r0) * (nd - 1)
    sl = (tt + ha) / (2 * ha) * (nl - 1)
    return _finish(p, size, (ax, ay), r0, r1, ha, (0.0, 0.0, 0.0, 0.0), nd, nl, beam_x, beam_y, sl, si, inside)


def _linear(p: ProbePreset, size: int, width: float, top: float, bottom: float) -> Geometry:
    x0 = max((size - width) / 2.0, 0.0)
    x1 = min(x0 + width - 1.0, size - 1.0)
    nd = int(round(bottom - top)) + 1
    nl = max(32, int(round((x1 - x0) / (p.line_px * size / 256.0))))
    ys, xs = np.linspace(top, bottom, nd), np.linspace(x0, x1, nl)
    beam_x = np.broadcast_to(xs[None, :], (nd, nl)).astype(np.float32)
    beam_y = np.broadcast_to(ys[:, None], (nd, nl)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    inside = (xx >= x0) & (xx <= x1) & (yy >= top) & (yy <= bottom)
    si = (yy - top) / (bottom - top) * (nd - 1)
    sl = (xx - x0) / (x1 - x0) * (nl - 1)
    return _finish(p, size, (0.0, 0.0), 0.0, 0.0, 0.0, (x0, x1, top, bottom), nd, nl, beam_x, beam_y, sl, si, inside)


def _finish(p, size, apex, r0, r1, ha, rect, nd, nl, beam_x, beam_y, sl, si, inside) -> Geometry:
    scan_x = np.where(inside, np.clip(sl, 0, nl - 1), -10.0).astype(np.float32)
    scan_y = np.where(inside, np.clip(si, 0, nd - 1), -10.0).astype(np.float32)
    lat = np.linspace(-1.0, 1.0, nl)
    apod = (-5.0 if p.probe == "curvilinear" else -2.0) * lat ** 6   # lateral beam-profile fall-off
    arrays = [np.ascontiguousarray(a) for a in (beam_x, beam_y, scan_x, scan_y, inside.astype(np.uint8), apod)]
    for a in arrays:
        a.setflags(write=False)
    x0, x1, y0, y1 = rect
    return Geometry(p.name, p.probe, size, apex, r0, r1, ha, x0, x1, y0, y1, nd, nl, *arrays)


# ----------------------------------------------------------------------------------------------------
# Acquisition settings


@dataclass(frozen=True)
class Acquisition:
    """Per-image scanner settings (all sampled by :func:`sample_acquisition`)."""

    freq_mhz: float
    depth_cm: float
    gain_db: float
    dynamic_range_db: float
    tgc_compensation: float
    tgc_sliders_db: tuple[float, ...]
    noise_db: float      # electronic noise after TGC at the bottom of the image, dB re. reference tissue
    clutter_db: float    # near-field reverberation haze, dB re. reference tissue
    sigma_axial: float
    sigma_lateral: float
    tissue_gray: float
    gamma: float
    smoothing: float     # speckle-reduction blur of the log image, beam samples (0 = off)

    def meta(self) -> dict:
        return {"freq_mhz": round(self.freq_mhz, 2), "depth_cm": round(self.depth_cm, 2),
                "gain_db": round(self.gain_db, 2), "dynamic_range_db": round(self.dynamic_range_db, 2),
                "tgc_compensation": round(self.tgc_compensation, 3), "noise_db": round(self.noise_db, 1),
                "psf_sigma_axial_px": round(self.sigma_axial, 3),
                "psf_sigma_lateral_lines": round(self.sigma_lateral, 3),
                "smoothing": round(self.smoothing, 3)}


@dataclass(frozen=True)
class AcquisitionRanges:
    """Uniform ranges the per-image settings are drawn from (see docs/phantom.md)."""

    gain_db: tuple[float, float] = (-4.0, 4.0)
    dynamic_range_db: tuple[float, float] = (48.0, 62.0)
    tgc_compensation: tuple[float, float] = (0.75, 1.0)
    tgc_slider_db: float = 3.0
    noise_db: tuple[float, float] = (-34.0, -22.0)
    max_round_trip_db: float = 55.0
    clutter_db: tuple[float, float] = (-30.0, -20.0)
    sigma_axial_px: tuple[float, float] = (0.75, 1.1)
    sigma_lateral_lines: tuple[float, float] = (0.85, 1.25)
    tissue_gray: tuple[float, float] = (0.46, 0.58)
    gamma: tuple[float, float] = (0.85, 1.25)
    smoothing: tuple[float, float] = (0.0, 0.9)
    speckle_scale: float = 1.0


#: Wider scanner settings for a recipe robust to real scanners (``usedge train --acquisition wide``): every
#: range of the default widened (gain ±10 dB, dynamic range 40-72 dB, TGC compensation down to 0.45, an
#: electronic noise floor up to -12 dB, broader and narrower PSFs, ...). The default phantom (test and
#: held-out sets) keeps :class:`AcquisitionRanges`; benchmarks/shift_suite.py measures the difference.
WIDE_ACQUISITION = AcquisitionRanges(
    gain_db=(-10.0, 10.0), dynamic_range_db=(40.0, 72.0), tgc_compensation=(0.45, 1.0), tgc_slider_db=5.0,
    noise_db=(-36.0, -12.0), clutter_db=(-32.0, -16.0), sigma_axial_px=(0.65, 1.6), sigma_lateral_lines=(0.75, 1.8),
    tissue_gray=(0.40, 0.62), gamma=(0.75, 1.4), smoothing=(0.0, 1.2))
#: Named acquisition ranges (``--acquisition``).
ACQUISITIONS = {"default": AcquisitionRanges(), "wide": WIDE_ACQUISITION}


def sample_acquisition(rng: np.random.Generator, geom: Geometry, r: AcquisitionRanges) -> Acquisition:
    """Draw one image's scanner settings."""
    p = PRESETS[geom.preset]

    def u(lo_hi: tuple[float, float]) -> float:
        return float(rng.uniform(*lo_hi))

    scale = geom.size / 256.0 * r.speckle_scale
    depth = u(p.depth_cm)
    # deeper settings use lower frequencies: the nominal round-trip loss at the bottom stays bounded
    f_max = min(p.freq_mhz[1], r.max_round_trip_db / (2.0 * TGC_REFERENCE_ATTEN * depth))
    freq = float(rng.uniform(min(p.freq_mhz[0], f_max), f_max))
    return Acquisition(
        freq_mhz=freq, depth_cm=depth, gain_db=u(r.gain_db),
        dynamic_range_db=u(r.dynamic_range_db), tgc_compensation=u(r.tgc_compensation),
        tgc_sliders_db=tuple(float(v) for v in rng.uniform(-r.tgc_slider_db, r.tgc_slider_db, 5)),
        noise_db=u(r.noise_db), clutter_db=u(r.clutter_db),
        sigma_axial=u(r.sigma_axial_px) * scale, sigma_lateral=u(r.sigma_lateral_lines) * r.speckle_scale,
        tissue_gray=u(r.tissue_gray), gamma=u(r.gamma), smoothing=u(r.smoothing) * scale)


# ----------------------------------------------------------------------------------------------------
# Rendering


@lru_cache(maxsize=64)
def _gamma_lut(gamma_milli: int) -> np.ndarray:
    x = np.arange(256, dtype=np.float64) / 255.0
    lut = np.clip(np.round(255.0 * x ** (gamma_milli / 1000.0)), 0, 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def gain_profile_db(geom: Geometry, acq: Acquisition, mean_loss_db: np.ndarray) -> np.ndarray:
    """TGC + gain in dB per depth sample: an auto-TGC that compensates ``tgc_compensation`` of the round-trip
    loss of the less attenuated beams at each depth (``mean_loss_db``), plus five interpolated slider offsets
    and the overall gain. Local shadows and enhancement survive because they differ from the mean."""
    sliders = np.interp(np.linspace(0, 1, geom.nd), np.linspace(0, 1, len(acq.tgc_sliders_db)), acq.tgc_sliders_db)
    nominal = TGC_REFERENCE_ATTEN * acq.freq_mhz * 2.0 * np.linspace(0.0, acq.depth_cm, geom.nd)
    return acq.tgc_compensation * np.minimum(mean_loss_db, TGC_MAX_FACTOR * nominal) + sliders + acq.gain_db


def _sector_loss(loss_db: np.ndarray) -> np.ndarray:
    """Per-depth loss the auto-TGC compensates: the 25th percentile over every 4th beam of the central 80 %,
    so that shadows (few beams with a large loss) stay dark instead of brightening everything else."""
    nl = loss_db.shape[1]
    sub = loss_db[:, nl // 10: nl - nl // 10: 4]
    k = sub.shape[1] // 4
    return np.partition(sub, k, axis=1)[:, k].astype(np.float64)


def beam_maps(echo: np.ndarray, spec: np.ndarray, atten: np.ndarray, geom: Geometry,
              coords: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
    """Sample the Cartesian tissue maps on the beam grid (optionally at moved ``coords``)."""
    bx, by = coords if coords is not None else (geom.beam_x, geom.beam_y)
    stacked = cv2.merge([echo, spec, atten])
    beam = cv2.remap(stacked, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return tuple(cv2.split(beam))


def render(echo: np.ndarray, spec: np.ndarray, atten: np.ndarray, geom: Geometry, acq: Acquisition,
           rng: np.random.Generator, *, coords: tuple[np.ndarray, np.ndarray] | None = None,
           scatter: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Form the B-mode image (size × size uint8, 0 outside the sector) from Cartesian tissue maps.

    Args:
        coords: beam-sample positions in scene coordinates (default: the geometry's own); cine uses this
            to move the scene under a still probe.
        scatter: (real, imaginary) (nd, nl) float32 unit-variance scatterer field; drawn fresh when None.
    """
    eb, sb, ab = beam_maps(echo, spec, atten, geom, coords)
    loss_db = np.cumsum(ab, axis=0)
    loss_db -= ab                        # loss up to (not through) each sample: interfaces reflect unattenuated
    loss_db *= np.float32(2.0 * acq.freq_mhz * acq.depth_cm / max(geom.nd - 1, 1))     # round-trip loss, dB
    np.minimum(loss_db, 300.0, out=loss_db)
    att = cv2.exp(loss_db * np.float32(-LN10_20))                     # amplitude factor
    gain_db = gain_profile_db(geom, acq, _sector_loss(loss_db))
    noise_power = 10.0 ** ((acq.noise_db - (gain_db[-1] - acq.gain_db)) / 10.0)
    clutter = (10.0 ** (acq.clutter_db / 10.0)) * _near_field(geom.nd)
    power = (eb + clutter) * (att * att)
    power += np.float32(noise_power)
    # Unit-sum Gaussian PSF shrinks white-noise variance by sum(k^2) ~ 1/(4 pi sx sy): undo it for the
    # diffuse part so reference tissue keeps unit RMS, while the coherent part passes unchanged.
    amp = cv2.sqrt(power)
    amp *= np.float32(math.sqrt(4.0 * math.pi * acq.sigma_axial * acq.sigma_lateral))
    if scatter is None:      # complex Gaussian by Box-Muller: Rayleigh magnitude, uniform phase
        u = rng.random((2, geom.nd, geom.nl), dtype=np.float32)
        mag = cv2.sqrt(cv2.log(1.0 - u[0]) * np.float32(-2.0))
        re, im = cv2.polarToCart(mag * amp, u[1] * np.float32(2.0 * math.pi))
    else:
        re, im = scatter[0] * amp, scatter[1] * amp
    re += sb * att
    blur = dict(ksize=(0, 0), sigmaX=acq.sigma_lateral, sigmaY=acq.sigma_axial, borderType=cv2.BORDER_REFLECT)
    env = cv2.magnitude(cv2.GaussianBlur(re, **blur), cv2.GaussianBlur(im, **blur))
    env += np.float32(1e-6)
    a = 255.0 / (acq.dynamic_range_db * LN10_20)
    offset = (a * LN10_20 * (gain_db[:, None] + geom.apod_db[None, :]) + 255.0 * acq.tissue_gray).astype(np.float32)
    logimg = cv2.log(env)
    logimg *= np.float32(a)
    logimg += offset
    if acq.smoothing > 0.05:
        logimg = cv2.GaussianBlur(logimg, (0, 0), sigmaX=acq.smoothing, sigmaY=acq.smoothing)
    u8 = np.clip(logimg, 0, 255).astype(np.uint8)
    u8 = cv2.LUT(u8, _gamma_lut(int(round(acq.gamma * 1000))))
    return cv2.remap(u8, geom.scan_x, geom.scan_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@lru_cache(maxsize=64)
def _near_field(nd: int) -> np.ndarray:
    """Near-field reverberation profile exp(-z / 6 % of the depth), (nd, 1) float32."""
    out = np.exp(-np.linspace(0.0, 1.0, nd) / 0.06).astype(np.float32)[:, None]
    out.setflags(write=False)
    return out
