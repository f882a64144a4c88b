"""Adult organ scenes: apical four-chamber heart (phased array), lung (pleura, A-/B-lines, consolidation),
liver with focal lesions, kidney."""
from __future__ import annotations

import math

import numpy as np

from usedge.data.phantom.anatomy_base import (
    BLOOD,
    BONE,
    FASCIA,
    FAT,
    LIVER,
    MUSCLE,
    SKIN,
    SOFT,
    Drawn,
    Scene,
    Tissue,
    bezier,
    blob,
    ellipse,
    fill,
    fill_mask,
    fit,
    rot,
    smooth_1d,
    tube,
    unit,
)

CARDIAC_BLOOD = Tissue(3e-4, 0.15, 0.0, 0.8)
MYOCARDIUM = Tissue(0.7, 0.9, 0.0, 0.4)
PLEURA = Tissue(8.0, 0.5, 6.0, 0.2)
LUNG_AIR = Tissue(0.2, 0.8, 0.0, 0.7)
B_LINE = Tissue(4.0, 0.2, 0.8, 0.3)
CONSOLIDATION = Tissue(1.3, 0.7, 0.0, 0.3)
AIR_BRONCHOGRAM = Tissue(10.0, 2.0, 2.0, 0.2)


# ----------------------------------------------------------------------------------------------------
# Heart


def _bullet(apex: np.ndarray, e: np.ndarray, length: float, half_width: float, n: int = 40) -> np.ndarray:
    """Closed bullet shape from ``apex`` along ``e``: rounded at the apex, open width at the base."""
    s = np.linspace(0.0, 1.0, n)
    w = half_width * np.sqrt(np.clip(1.0 - (1.0 - s) ** 2.2, 0.0, 1.0))
    nrm = rot(e, math.pi / 2)
    axis = apex + np.outer(s * length, e)
    return np.concatenate([axis + np.outer(w, nrm), (axis - np.outer(w, nrm))[::-1]])


def cardiac_scene(sc: Scene) -> np.ndarray:
    """Apical four-chamber view; returns the label map (1 LV cavity, 2 LV myocardium, 3 left atrium)."""
    rng, g = sc.rng, sc.geom
    sc.background(Tissue(0.3, 0.7, 0.0, 0.7))
    sc.band(-0.05, rng.uniform(0.04, 0.07), sc.tissue(MUSCLE), wobble=1.5)
    sc.band(-0.05, 0.012, sc.tissue(SKIN))
    dp = g.depth_px
    length = rng.uniform(0.42, 0.52) * dp
    width = length * rng.uniform(0.36, 0.46)
    wall = length * rng.uniform(0.08, 0.12)
    beta = rng.uniform(0.0, 0.3)
    e = np.array([math.sin(beta), math.cos(beta)])
    nrm = rot(e, math.pi / 2)                      # points to screen left of the axis (the RV side)
    apex = g.at(rng.uniform(0.1, 0.15), rng.uniform(0.02, 0.2))
    la_a, la_b = rng.uniform(0.26, 0.34) * length, rng.uniform(0.5, 0.6) * width
    base = apex + e * length
    la_c = base + e * (la_a + 1.5)
    blood, myo = sc.tissue(CARDIAC_BLOOD), sc.tissue(MYOCARDIUM)
    # right heart (screen left): RV wall + cavity, RA; pericardium around everything
    rv_apex = apex + e * 0.3 * length + nrm * (width / 2 + wall * 0.9)
    rv = _bullet(rv_apex, e, length * 0.7, width * 0.42)
    pericardium = _bullet(apex - e * wall * 1.5, e, length + la_a * 2 + wall, width + wall * 2.5)
    sc.fill(pericardium, sc.tissue(FASCIA.scaled(0.4)))
    sc.fill(_bullet(rv_apex - e * wall * 0.6, e, length * 0.7 + wall * 0.6, width * 0.42 + wall * 0.6), myo)
    sc.fill(rv, blood)
    axis_angle = math.atan2(e[1], e[0])
    sc.fill(ellipse(base + nrm * (width * 0.62 + wall) + e * la_a * 0.9, la_a * 0.9, la_b * 0.75, axis_angle), blood)
    epi = _bullet(apex - e * wall, e, length + wall, width / 2 + wall)
    endo = _bullet(apex, e, length, width / 2)
    la = ellipse(la_c, la_a, la_b, math.atan2(e[1], e[0]))
    sc.fill(epi, myo)
    sc.fill(endo, blood)
    sc.fill(la, blood)
    leaflet = sc.tissue(FASCIA)
    for s in (-1, 1):
        hinge = base + s * nrm * width / 2
        tip = hinge - e * length * rng.uniform(0.12, 0.2) - s * nrm * width * rng.uniform(0.05, 0.15)
        sc.stroke(np.array([hinge, tip]), leaflet, 2)
    label = fill_mask(sc.size, epi, 2)
    fill(label, endo, 1)
    fill(label, la, 3)
    return label


def cardiac_multi(rng: np.random.Generator, size: int) -> Drawn:
    sc = Scene(rng, size, "phased")
    return Drawn(sc, cardiac_scene(sc))


# ----------------------------------------------------------------------------------------------------
# Lung


def lung_scene(sc: Scene, kind: str) -> np.ndarray:
    """Chest wall, ribs (shadows), pleural line and what lies below it for ``kind``: ``normal`` (A-lines),
    ``blines`` (3-6 B-lines), ``pneumonia`` (consolidation with air bronchograms) or ``covid``
    (irregular thick pleura, many/confluent B-lines, small subpleural consolidations).
    Returns the lung polygon: below the pleural line, between the rib shadows."""
    rng, g = sc.rng, sc.geom
    dpl = rng.uniform(0.2, 0.32)
    sc.background(LUNG_AIR)
    fat = rng.uniform(0.04, 0.08)
    sc.band(-0.05, dpl, sc.tissue(MUSCLE), wobble=1.5)
    sc.band(-0.05, fat, sc.tissue(FAT), wobble=1.0)
    sc.band(-0.05, 0.018, sc.tissue(SKIN))
    fascia = sc.tissue(FASCIA)
    sc.band(fat, fat + 1.5 / g.depth_px, fascia)
    lat_l, lat_r = -1.6, 1.6
    bone = sc.tissue(BONE, 0.2)
    p_mid = g.at(dpl, 0.0)
    half_w = float(np.linalg.norm(g.at(dpl, 1.0) - p_mid))          # half the sector width at the pleura
    rib_r = min(rng.uniform(0.05, 0.07) * g.size, 0.35 * dpl * g.depth_px)
    for side in (-1, 1):
        if rng.random() < 0.85:
            lat = side * rng.uniform(0.6, 0.9)
            top = g.at(dpl, lat)
            rib = ellipse(top - g.down(top) * rib_r * 0.7, rng.uniform(0.13, 0.24) * half_w, rib_r,
                          math.atan2(-g.down(top)[0], g.down(top)[1]))
            sc.fill(rib, bone)
            lats = g.lateral_of(rib)
            lat_l, lat_r = (max(lat_l, lats.max()), lat_r) if side < 0 else (lat_l, min(lat_r, lats.min()))
    span = (lat_l, lat_r)
    thick = (2.5 if kind == "covid" else 1.5) / g.depth_px * g.size / 256
    a_gain = {"normal": 1.0, "blines": 0.15, "pneumonia": 0.7, "covid": 0.05}[kind]
    for k in range(2, 6):
        if k * dpl < 1.0:
            sc.fill(g.band(k * dpl, k * dpl + thick, n=24, lat=span), sc.tissue(PLEURA.scaled(a_gain * 0.6 / k)))
    if kind in ("blines", "covid"):
        for _ in range(int(rng.integers(3, 7)) + (3 if kind == "covid" else 0)):
            wide = kind == "covid" and rng.random() < 0.3
            w = (rng.uniform(0.06, 0.14) if wide else rng.uniform(0.012, 0.025)) * (1 if g.is_fan else 1.6)
            c = rng.uniform(lat_l + w, lat_r - w) if lat_r - lat_l > 2 * w else (lat_l + lat_r) / 2
            sc.fill(g.band(dpl, 1.2, n=4, lat=(c - w / 2, c + w / 2)), sc.tissue(B_LINE))
    pleura = sc.tissue(PLEURA)
    if kind == "covid":
        w0, w1 = smooth_1d(rng, 48, 1.5, 12), smooth_1d(rng, 48, 1.5, 12) + 2.0
        sc.fill(g.band(dpl - thick, dpl + thick, w0, w1, 48, span), pleura)
        for _ in range(int(rng.integers(2, 5))):
            c = rng.uniform(*np.clip(span, -0.9, 0.9))
            sc.fill(g.band(dpl - 0.01, dpl + 0.01, n=4, lat=(c - 0.03, c + 0.03)), sc.tissue(LUNG_AIR.scaled(0.5)))
            sc.fill(blob(rng, g.at(dpl + 0.04, c), 0.04 * g.size, 0.03 * g.size, 0, 0.2), sc.tissue(CONSOLIDATION))
    else:
        sc.fill(g.band(dpl, dpl + thick, n=24, lat=span), pleura)
    if kind == "pneumonia":
        _consolidation(sc, dpl, span)
    return g.band(dpl, 1.2, n=48, lat=span)


def _consolidation(sc: Scene, dpl: float, span: tuple[float, float]) -> None:
    rng, g = sc.rng, sc.geom
    lo, hi = np.clip(span, -1.0, 1.0)
    w = (hi - lo) * rng.uniform(0.4, 0.75)
    l0 = rng.uniform(lo, hi - w)
    depth = rng.uniform(0.15, 0.35)
    n = 40
    shred = smooth_1d(rng, n, 0.06 * g.depth_px, 10) - np.linspace(-1, 1, n) ** 4 * depth * g.depth_px * 0.6
    poly = g.band(dpl + 0.005, dpl + depth, None, shred, n, (l0, l0 + w))
    sc.fill(poly, sc.tissue(CONSOLIDATION))
    sc.stroke(poly[n:], sc.tissue(FASCIA), 2)
    air = sc.tissue(AIR_BRONCHOGRAM)
    for _ in range(int(rng.integers(4, 10))):
        p = g.at(dpl + rng.uniform(0.03, depth * 0.7), rng.uniform(l0 + w * 0.15, l0 + w * 0.85))
        d = unit(rng.uniform(0, math.pi)) * rng.uniform(1, 6) * g.size / 256
        sc.stroke(np.array([p - d, p + d]), air, 2)


def lung(rng: np.random.Generator, size: int) -> Drawn:
    sc = Scene(rng, size, "linear" if rng.random() < 0.5 else "abdominal")
    kind = ("normal", "blines", "pneumonia", "covid")[int(rng.integers(4))]
    return Drawn(sc, fill_mask(size, lung_scene(sc, kind)))


def lung_cls(kinds: tuple[str, ...]):
    """Drawer of a lung classification task whose class k shows ``kinds[k]``."""
    def draw(rng: np.random.Generator, size: int) -> Drawn:
        k = int(rng.integers(len(kinds)))
        sc = Scene(rng, size, "linear" if rng.random() < 0.5 else "abdominal")
        lung_scene(sc, kinds[k])
        return Drawn(sc, k)
    return draw


# ----------------------------------------------------------------------------------------------------
# Liver and kidney


def body_wall(sc: Scene) -> float:
    """Skin, fat, abdominal muscle; returns the depth reached."""
    rng = sc.rng
    d_fat = rng.uniform(0.03, 0.07)
    d_mus = d_fat + rng.uniform(0.03, 0.06)
    sc.band(-0.05, d_mus, sc.tissue(MUSCLE), wobble=1.5)
    sc.band(-0.05, d_fat, sc.tissue(FAT), wobble=1.5)
    sc.band(-0.05, 0.012, sc.tissue(SKIN))
    sc.band(d_mus, d_mus + 1.6 / sc.geom.depth_px, sc.tissue(FASCIA))
    return d_mus


def liver_scene(sc: Scene, lesion: str | None) -> np.ndarray | None:
    """Liver parenchyma with hepatic/portal veins, diaphragm, sometimes the gallbladder, and an optional
    ``benign`` (hyperechoic, well defined) or ``malignant`` (hypoechoic irregular / target) lesion."""
    rng, g = sc.rng, sc.geom
    sc.background(LIVER)
    top = body_wall(sc)
    dp = g.depth_px
    d_dia, w = rng.uniform(0.82, 0.95), smooth_1d(rng, 48, 6.0)
    sc.fill(g.band(d_dia, 1.4, w, None), sc.tissue(LIVER.scaled(0.8)))
    sc.fill(g.band(d_dia, d_dia + 2.5 / dp, w, w), sc.tissue(FASCIA.scaled(1.5)))   # diaphragm
    _vessels(sc, top)
    if rng.random() < 0.3:
        gb = blob(rng, g.at(rng.uniform(top + 0.1, 0.35), rng.uniform(-0.7, 0.7)), 0.12 * dp, 0.05 * dp,
                  rng.uniform(-0.5, 0.5), 0.08)
        sc.fill(gb, sc.tissue(Tissue(3e-5, 0.02, 0.0, 0.0)))
    if lesion is None:
        return None
    r = rng.uniform(0.06, 0.13) * dp
    if lesion == "benign":
        rel = blob(rng, (0, 0), r, r * rng.uniform(0.8, 1.0), rng.uniform(0, math.pi), 0.04)
        layers = [(1.0, Tissue(rng.uniform(3.5, 6.0), 0.35, 0.0, 0.35))]
    else:
        rel = blob(rng, (0, 0), r, r * rng.uniform(0.75, 1.0), rng.uniform(0, math.pi), 0.12)
        if rng.random() < 0.5:
            layers = [(1.0, Tissue(rng.uniform(0.15, 0.35), 0.9, 0.0, 0.5))]
        else:
            core = Tissue(rng.uniform(1.5, 2.5), 0.8, 0.0, 0.5)                # target: bright core, dark halo
            layers = [(1.0, Tissue(0.06, 0.9, 0.0, 0.3)), (rng.uniform(0.55, 0.72), core)]
    c, k = fit(g, rng, rel, (max(0.3, top + 0.15), 0.7), (-0.5, 0.5), 5.0)
    for scale, tissue in layers:
        sc.fill(c + rel * k * scale, sc.tissue(tissue))
    return c + rel * k


def _vessels(sc: Scene, top: float) -> None:
    """Hepatic veins (tapering dark branches, no wall), portal veins (bright walls) and vessel cross-sections."""
    rng, g = sc.rng, sc.geom
    dp, unit_px = g.depth_px, g.size / 256
    wall, blood = sc.tissue(FASCIA), sc.tissue(BLOOD)
    for _ in range(int(rng.integers(2, 5))):
        p0 = g.at(rng.uniform(0.6, 1.1), rng.uniform(-1.2, 1.2))
        p2 = g.at(rng.uniform(top + 0.1, 0.7), rng.uniform(-0.8, 0.8))
        path = bezier(p0, (p0 + p2) / 2 + rng.normal(0, 0.12 * dp, 2), p2, 20)
        r = rng.uniform(2.0, 5.0) * unit_px * np.linspace(1.0, 0.35, len(path))
        portal = rng.random() < 0.5
        if portal:
            sc.fill(tube(path, r + 1.5 * unit_px), wall)
        sc.fill(tube(path, r), blood)
        for _ in range(int(rng.integers(0, 3))):         # a side branch
            i = int(rng.integers(3, len(path) - 5))
            q = path[i] + rot(path[i + 3] - path[i], rng.choice([-0.7, 0.7])) * rng.uniform(4, 8)
            branch = bezier(path[i], (path[i] + q) / 2 + rng.normal(0, 3 * unit_px, 2), q, 10)
            rb = r[i] * 0.6 * np.linspace(1.0, 0.4, 10)
            if portal:
                sc.fill(tube(branch, rb + 1.5 * unit_px), wall)
            sc.fill(tube(branch, rb), blood)
    for _ in range(int(rng.integers(2, 8))):
        c = g.at(rng.uniform(top + 0.1, 0.85), rng.uniform(-0.9, 0.9))
        r = rng.uniform(1.5, 4.5) * unit_px
        ang = rng.uniform(0, math.pi)
        if rng.random() < 0.5:
            sc.fill(ellipse(c, r * 1.4 + 1.5 * unit_px, r + 1.5 * unit_px, ang, 20), wall)
        sc.fill(ellipse(c, r * 1.4, r, ang, 20), blood)


def liver_cls(rng: np.random.Generator, size: int) -> Drawn:
    k = int(rng.integers(2))
    sc = Scene(rng, size, "abdominal")
    liver_scene(sc, ("benign", "malignant")[k])
    return Drawn(sc, k)


def kidney_scene(sc: Scene) -> None:
    """Kidney (long axis): bright capsule/perirenal fat, hypoechoic cortex, dark pyramids, echogenic sinus;
    often seen through the liver."""
    rng, g = sc.rng, sc.geom
    sc.background(SOFT.scaled(0.7))
    top = body_wall(sc)
    dp = g.depth_px
    if rng.random() < 0.6:
        sc.band(top, rng.uniform(0.35, 0.5), sc.tissue(LIVER), wobble=5.0)
    a = rng.uniform(0.28, 0.36) * dp
    b = a * rng.uniform(0.42, 0.52)
    ang = rng.uniform(-0.5, 0.5)
    rel = blob(rng, (0, 0), a, b, ang, 0.04)
    c, k = fit(g, rng, rel * 1.2, (0.5, 0.65), (-0.2, 0.2), 4.0)
    a, b = a * k, b * k
    sc.fill(c + rel * k * 1.18, sc.tissue(Tissue(2.2, 0.6, 0.0, 0.5)))
    sc.fill(c + rel * k, sc.tissue(Tissue(0.45, 0.6, 0.0, 0.2)))
    pyramid = sc.tissue(Tissue(0.08, 0.5, 0.0, 0.2))
    for t in np.linspace(0, 2 * math.pi, int(rng.integers(6, 9)), endpoint=False) + rng.uniform(0, 1):
        p = c + rot(np.array([0.6 * a * math.cos(t), 0.55 * b * math.sin(t)]), ang)
        sc.fill(ellipse(p, 0.12 * a, 0.2 * b, ang + t), pyramid)
    sc.fill(blob(rng, c, 0.55 * a, 0.28 * b, ang, 0.15), sc.tissue(Tissue(3.0, 0.7, 0.5, 0.5)))
