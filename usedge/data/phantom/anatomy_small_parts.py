"""Small-parts scenes (linear probe): breast, thyroid, carotid artery, intra-operative spinal cord."""
from __future__ import annotations

import math

import numpy as np

from usedge.data.phantom import truth
from usedge.data.phantom.anatomy_base import (
    AIR,
    BLOOD,
    BONE,
    CALCIFICATION,
    FASCIA,
    FAT,
    FLUID,
    GLAND,
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
)

CYST = Tissue(2e-4, 0.05, 0.0, 0.5)
THYROID = Tissue(2.2, 0.6, 0.0, 0.12)
VESSEL_WALL = Tissue(12.0, 0.8, 4.0, 0.2)
MEDIA = Tissue(0.25, 0.6, 0.0, 0.2)
PLAQUE = Tissue(3.0, 2.0, 1.0, 0.6)
PIA = Tissue(4.0, 0.6, 1.5, 0.2)
CORD = Tissue(0.12, 0.5, 0.0, 0.35)


def skin_and_fat(sc: Scene, fat: tuple[float, float] = (0.04, 0.1)) -> float:
    """Skin line and subcutaneous fat; returns the fat's bottom depth."""
    d = sc.rng.uniform(*fat)
    sc.band(-0.05, d, sc.tissue(FAT), wobble=1.5)
    sc.band(-0.05, 0.02, sc.tissue(SKIN))
    return d


def _calcifications(sc: Scene, c: np.ndarray, r: float, count: int) -> None:
    tid = sc.tissue(CALCIFICATION, 0.2)
    for _ in range(count):
        p = c + rot(np.array([sc.rng.uniform(0, 0.6) * r, 0.0]), sc.rng.uniform(0, 2 * math.pi))
        rad = sc.rng.uniform(0.7, 1.4) * sc.size / 256
        sc.fill(ellipse(p, rad, rad, 0, 12), tid)


# ----------------------------------------------------------------------------------------------------
# Breast


def breast_scene(sc: Scene, lesion: str | None) -> np.ndarray | None:
    """Layered breast (skin, fat with Cooper's ligaments, fibroglandular tissue, retromammary fat, pectoralis,
    ribs) with an optional ``benign`` / ``malignant`` lesion; returns the lesion polygon (or None)."""
    rng, g = sc.rng, sc.geom
    d_fg0 = rng.uniform(0.1, 0.22)
    d_fg1 = d_fg0 + rng.uniform(0.3, 0.45)
    d_mus = d_fg1 + rng.uniform(0.04, 0.1)
    sc.background(FAT)
    sc.band(d_mus, 1.3, sc.tissue(MUSCLE), wobble=3.0)
    fascia = sc.tissue(FASCIA)
    for k in range(int(rng.integers(2, 5))):
        dd = d_mus + 0.03 + k * rng.uniform(0.04, 0.07)
        sc.stroke(g.band(dd, dd, smooth_1d(rng, 24, 2.0), None, 24)[:24], fascia, 1)
    if rng.random() < 0.6:
        rc = g.at(min(d_mus + 0.22, 0.93), rng.uniform(-0.6, 0.6))
        sc.fill(ellipse(rc, 0.16 * g.size, 0.06 * g.size, rng.uniform(-0.1, 0.1)), sc.tissue(BONE, 0.2))
    sc.band(-0.05, d_fg1, sc.tissue(GLAND), wobble=5.0)
    lobule = sc.tissue(FAT.scaled(1.5))
    for _ in range(int(rng.integers(3, 8))):
        p = g.at(rng.uniform(d_fg0, d_fg1), rng.uniform(-1.1, 1.1))
        sc.fill(blob(rng, p, 0.05 * g.size, 0.025 * g.size, rng.uniform(-0.4, 0.4), 0.15), lobule)
    sc.band(-0.05, d_fg0, sc.tissue(FAT), wobble=4.0)
    for _ in range(int(rng.integers(2, 5))):       # Cooper's ligaments
        x = rng.uniform(-1, 1)
        p0, p2 = g.at(d_fg0 + 0.01, x), g.at(d_fg0 + 0.01, x + rng.uniform(0.2, 0.4))
        sc.stroke(bezier(p0, (p0 + p2) / 2 - np.array([0, rng.uniform(0.3, 0.8) * d_fg0 * g.depth_px]), p2, 12),
                  fascia, 1)
    sc.band(-0.05, 0.022, sc.tissue(SKIN))
    if lesion is None:
        return None
    size = g.size
    if lesion == "benign":
        a = rng.uniform(0.07, 0.15) * size
        rel = blob(rng, (0, 0), a, a * rng.uniform(0.5, 0.75), rng.uniform(-0.25, 0.25), 0.03)
        tissue = CYST if rng.random() < 0.4 else Tissue(rng.uniform(0.04, 0.15), 0.25, 0.0, 0.35)
    else:
        a = rng.uniform(0.06, 0.12) * size
        rel = blob(rng, (0, 0), a, a * rng.uniform(1.0, 1.5), rng.uniform(-0.3, 0.3), 0.12,
                   spikes=int(rng.integers(8, 16)), spike_len=0.3)
        shadow = rng.uniform(1.2, 2.5) if rng.random() < 0.75 else 0.8
        tissue = Tissue(rng.uniform(0.04, 0.12), shadow, 0.0, 0.6)
    c, k = fit(g, rng, rel * 1.2, (d_fg0 + 0.12, max(d_fg0 + 0.13, d_fg1 - 0.05)), (-0.55, 0.55), 6.0)
    poly = c + rel * k
    if lesion == "malignant" and rng.random() < 0.5:
        sc.fill(c + rel * k * 1.18, sc.tissue(GLAND.scaled(1.6)))          # echogenic halo
    elif tissue is CYST:
        sc.stroke(poly, fascia, 1, closed=True)
    sc.fill(poly, sc.tissue(tissue, 0.1))
    if lesion == "malignant" and rng.random() < 0.5:
        _calcifications(sc, c, a * k * 0.8, int(rng.integers(3, 8)))
    return poly


def breast_lesion(rng: np.random.Generator, size: int) -> Drawn:
    sc = Scene(rng, size, "linear")
    poly = breast_scene(sc, "benign" if rng.random() < 0.5 else "malignant")
    return Drawn(sc, fill_mask(size, poly), truth.lesion("breast_lesion", poly))


def breast_cls(classes: tuple[str | None, ...]):
    """Drawer of a breast classification task whose class k shows ``classes[k]`` (None = normal)."""
    def draw(rng: np.random.Generator, size: int) -> Drawn:
        k = int(rng.integers(len(classes)))
        sc = Scene(rng, size, "linear")
        breast_scene(sc, classes[k])
        return Drawn(sc, k)
    return draw


# ----------------------------------------------------------------------------------------------------
# Thyroid


def thyroid_scene(sc: Scene, nodule: bool = True) -> np.ndarray | None:
    """Transverse neck: strap muscles, SCM, thyroid lobe + isthmus, trachea (shadow), carotid, jugular vein,
    and optionally a nodule (hypo / iso with halo / hyper / cystic, sometimes calcified). Returns its polygon."""
    rng, g = sc.rng, sc.geom
    s = g.size
    sc.background(SOFT.scaled(0.3))
    side = 1.0 if rng.random() < 0.5 else -1.0            # trachea side
    d_fat = skin_and_fat(sc, (0.03, 0.06))
    d_strap = d_fat + rng.uniform(0.08, 0.14)
    strap = MUSCLE.scaled(0.6)
    sc.band(d_fat, d_strap, sc.tissue(strap), wobble=2.0)
    sc.fill(blob(rng, g.at(d_fat + 0.08, -side * 0.6), 0.3 * s, 0.09 * s, -side * 0.2, 0.05), sc.tissue(strap))
    rt = rng.uniform(0.16, 0.22) * s
    tc = g.at(d_strap + 0.05, side * rng.uniform(0.85, 1.05)) + np.array([0, rt])
    la, lb = rng.uniform(0.22, 0.3) * s, rng.uniform(0.13, 0.18) * s
    lc = np.array([tc[0] - side * (rt + la * 0.85), g.at(d_strap + 0.02, 0)[1] + lb * 1.05])
    lobe = blob(rng, lc, la, lb, side * rng.uniform(0.0, 0.25), 0.05)
    thy = sc.tissue(THYROID)
    capsule = sc.tissue(FASCIA.scaled(0.5))
    isthmus = tube(np.array([lc, tc - np.array([0, rt * 0.9])]), lb * 0.35)
    sc.fill(isthmus, thy)
    sc.stroke(lobe, capsule, 1, closed=True)
    sc.fill(lobe, thy)
    sc.fill(ellipse(tc, rt + 3, rt + 3, 0), sc.tissue(SOFT.scaled(0.5)))
    sc.fill(ellipse(tc, rt, rt, 0), sc.tissue(AIR))
    sc.stroke(ellipse(tc, rt, rt, 0, 40, math.pi * 1.15, math.pi * 1.85), sc.tissue(FASCIA.scaled(2)), 2)
    cc = np.array([lc[0] - side * (la + rng.uniform(0.05, 0.1) * s), lc[1] + rng.uniform(-0.03, 0.06) * s])
    rc = rng.uniform(0.06, 0.08) * s
    sc.fill(ellipse(cc, rc + 2, rc + 2, 0), sc.tissue(VESSEL_WALL))
    sc.fill(ellipse(cc, rc, rc, 0), sc.tissue(BLOOD))
    sc.fill(ellipse(cc + np.array([-side * rc * 1.3, -rc * 1.2]), rc * 1.2, rc * 0.6, 0), sc.tissue(BLOOD))
    if not nodule:
        return None
    rn = rng.uniform(0.45, 0.9) * lb
    rel = blob(rng, (0, 0), rn, rn * rng.uniform(0.75, 1.0), rng.uniform(0, math.pi), rng.uniform(0.04, 0.12))
    nc = lc + np.array([rng.uniform(-0.35, 0.35) * la, rng.uniform(-0.2, 0.2) * lb])
    if not g.contains(nc + rel, 3.0).all():
        nc, k = fit(g, rng, rel, (0.3, 0.55), (-0.4, 0.4), 3.0)
        rel, rn = rel * k, rn * k
    poly = nc + rel
    kind = int(rng.integers(4))
    if kind == 1:                                                         # iso with hypoechoic halo
        sc.fill(nc + rel * (1.0 + max(3.0, 0.22 * rn) / rn), sc.tissue(Tissue(0.03, 0.6, 0.0, 0.2)))
    tissue = (Tissue(0.12, 0.8, 0.0, 0.35), Tissue(1.0, 0.6, 0.0, 0.35), Tissue(9.0, 0.9, 0.0, 0.5), CYST)[kind]
    sc.fill(poly, sc.tissue(tissue))
    if kind == 3:                                                         # solid part in a cystic nodule
        sc.fill(blob(rng, nc + rot(np.array([rn * 0.45, 0]), rng.uniform(0, 6)), rn * 0.4, rn * 0.3, 0, 0.2),
                sc.tissue(THYROID.scaled(0.7)))
    if rng.random() < 0.3:
        _calcifications(sc, nc, rn, int(rng.integers(1, 4)))
    return poly


def thyroid_nodule(rng: np.random.Generator, size: int) -> Drawn:
    sc = Scene(rng, size, "linear")
    poly = thyroid_scene(sc)
    return Drawn(sc, fill_mask(size, poly), truth.lesion("thyroid_nodule", poly))


# ----------------------------------------------------------------------------------------------------
# Carotid artery


def carotid_artery(rng: np.random.Generator, size: int) -> Drawn:
    """carotid_artery: longitudinal (65 %) or transverse lumen with intima-media walls, sometimes a plaque,
    jugular vein (thin wall) nearby; mask = lumen (minus plaque)."""
    sc = Scene(rng, size, "linear")
    g = sc.geom
    s = size
    sc.background(SOFT.scaled(0.8))
    d = skin_and_fat(sc)
    sc.band(d, d + rng.uniform(0.15, 0.25), sc.tissue(MUSCLE), wobble=3.0)
    h = rng.uniform(0.055, 0.085) * s
    imt = max(2.5, rng.uniform(0.015, 0.025) * s)
    longitudinal = rng.random() < 0.65
    if longitudinal:
        y = g.at(rng.uniform(0.45, 0.62), 0)[1]
        slope = rng.uniform(-0.12, 0.12)
        xs = np.linspace(-0.1 * s, 1.1 * s, 30)
        centre = np.stack([xs, y + slope * (xs - s / 2) + smooth_1d(rng, 30, 0.015 * s)], 1)
        if rng.random() < 0.6:      # jugular vein above, partly compressed
            sc.fill(tube(centre - np.array([0, h + imt + rng.uniform(0.08, 0.12) * s]), h * rng.uniform(0.3, 0.7)),
                    sc.tissue(BLOOD))
        walls = [tube(centre, h + imt), tube(centre, h + imt * 0.45), tube(centre, h), tube(centre, h - 1.0)]
    else:
        c = g.at(rng.uniform(0.45, 0.6), rng.uniform(-0.35, 0.35))
        side = 1.0 if c[0] < s / 2 else -1.0
        sc.fill(ellipse(c + np.array([side * h * 1.6, -h * 1.2]), h * 1.3, h * 0.7, rng.uniform(-0.3, 0.3)),
                sc.tissue(BLOOD))
        centre = c[None, :]
        walls = [ellipse(c, r, r) for r in (h + imt, h + imt * 0.45, h, h - 1.0)]
    for poly, tissue in zip(walls, (VESSEL_WALL, MEDIA, SOFT.scaled(2.5), BLOOD), strict=True):
        sc.fill(poly, sc.tissue(tissue))
    label = fill_mask(size, walls[3])
    if rng.random() < 0.3:          # plaque on the wall, protruding into the lumen
        p = walls[3][int(rng.integers(len(walls[3])))]
        toward = centre[int(np.argmin(np.linalg.norm(centre - p, axis=1)))] - p
        pl = blob(rng, p + toward * 0.1, h * rng.uniform(0.5, 1.0), h * rng.uniform(0.25, 0.45),
                  math.atan2(toward[1], toward[0]) + math.pi / 2, 0.15)
        sc.fill(pl, sc.tissue(PLAQUE))
        fill(label, pl, 0)
    return Drawn(sc, label)


# ----------------------------------------------------------------------------------------------------
# Intra-operative spinal cord (sagittal)


def spinal_cord_injury(rng: np.random.Generator, size: int) -> Drawn:
    """spinal_cord_injury_loc: saline window, dura, CSF, hypoechoic cord with bright pia and central canal,
    vertebral bodies (shadowing) below; injury = a swollen hyperechoic (sometimes cystic) cord segment; box =
    its extent."""
    sc = Scene(rng, size, "linear")
    g = sc.geom
    s = size
    sc.background(FLUID)
    y = lambda d: g.at(d, 0)[1]  # noqa: E731
    xs = np.linspace(-0.1 * s, 1.1 * s, 40)
    tilt = rng.uniform(-0.08, 0.08)
    d_dura = rng.uniform(0.08, 0.16)
    half = rng.uniform(0.09, 0.13) * g.depth_px
    cy = y(d_dura) + rng.uniform(0.05, 0.09) * g.depth_px + half
    line = lambda off: np.stack([xs, cy + off + tilt * (xs - s / 2) + smooth_1d(rng, 40, 1.0)], 1)  # noqa: E731
    centre = line(0.0)
    ix = rng.uniform(0.25, 0.75) * s
    ilen = rng.uniform(0.1, 0.18) * s
    swell = 1.0 + rng.uniform(0.1, 0.3) * np.exp(-((xs - ix) / ilen) ** 2)
    dura = sc.tissue(FASCIA)
    sc.stroke(line(-half * 1.0 - rng.uniform(0.04, 0.08) * g.depth_px), dura, 2)
    d_ant = half * 1.0 + rng.uniform(0.04, 0.07) * g.depth_px
    sc.stroke(line(d_ant), dura, 2)
    vb_top = d_ant + rng.uniform(0.03, 0.06) * g.depth_px
    x = rng.uniform(-0.3, 0.0) * s
    bone, disc = sc.tissue(BONE, 0.2), sc.tissue(Tissue(0.9, 4.0, 0.0, 0.3))
    sc.fill(np.concatenate([line(vb_top), line(g.depth_px)[::-1]]), disc)
    while x < 1.1 * s:
        w = rng.uniform(0.22, 0.32) * s
        pts = np.stack([np.linspace(x, x + w, 8), cy + vb_top + tilt * (np.linspace(x, x + w, 8) - s / 2)], 1)
        sc.fill(np.concatenate([pts, pts[::-1] + np.array([0, 0.5 * s])]), bone)
        x += w + rng.uniform(0.025, 0.045) * s
    sc.fill(tube(centre, half * swell + 1.5), sc.tissue(PIA))
    sc.fill(tube(centre, half * swell), sc.tissue(CORD))
    sc.stroke(centre, sc.tissue(PIA), 1)
    c = np.array([ix, np.interp(ix, xs, centre[:, 1])])
    rel = blob(rng, (0, 0), ilen * rng.uniform(0.9, 1.3), half * rng.uniform(0.6, 0.95), tilt, 0.1)
    poly = c + rel
    sc.fill(poly, sc.tissue(Tissue(rng.uniform(1.5, 3.5), 0.8, 0.0, 0.8)))
    if rng.random() < 0.4:
        sc.fill(c + rel * 0.45, sc.tissue(FLUID.scaled(50)))
    return Drawn(sc, fill_mask(size, poly))
