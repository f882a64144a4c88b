"""Fetal scenes (curvilinear probe through the maternal abdomen): head, femur, abdomen, thorax/heart,
head and sacrum position, and an 'other' plane (placenta, cord, limbs)."""
from __future__ import annotations

import math

import cv2
import numpy as np

from usedge.data.phantom import truth
from usedge.data.phantom.anatomy_base import (
    FASCIA,
    FAT,
    FETAL_SKULL,
    MUSCLE,
    PLACENTA,
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
    ring_incidence,
    rot,
    tube,
    unit,
)

AMNIOTIC = Tissue(3e-5, 0.02, 0.0, 1.0)
BRAIN = Tissue(0.22, 0.3, 0.0, 0.35)
FETAL_SOFT = Tissue(0.8, 0.5, 0.0, 0.3)
MIDLINE = Tissue(6.0, 0.6, 1.2, 0.2)
FETAL_BONE = Tissue(15.0, 9.0, 8.0, 0.15)
FETAL_SKIN = Tissue(3.0, 0.6, 1.0, 0.2)
HEART_WALL = Tissue(0.45, 0.6, 0.0, 0.3)


def maternal_wall(sc: Scene, fluid: Tissue = AMNIOTIC, placenta: bool = True) -> None:
    """Skin, subcutaneous fat, rectus muscle, uterine wall; the rest of the sector is amniotic fluid."""
    rng = sc.rng
    sc.background(fluid)
    d_fat = rng.uniform(0.04, 0.09)
    d_mus = d_fat + rng.uniform(0.03, 0.05)
    d_ut = d_mus + rng.uniform(0.04, 0.07)
    sc.band(-0.05, d_ut + 0.02, sc.tissue(SOFT.scaled(0.9)), wobble=2.0)
    sc.band(-0.05, d_mus, sc.tissue(MUSCLE), wobble=1.5)
    sc.band(-0.05, d_fat, sc.tissue(FAT), wobble=1.5)
    sc.band(-0.05, 0.012, sc.tissue(SKIN))
    fascia = sc.tissue(FASCIA)
    dp = sc.geom.depth_px
    for d in (d_fat, d_mus):
        sc.fill(sc.geom.band(d, d + 1.6 / dp), fascia)
    if placenta and rng.random() < 0.6:
        lo = rng.uniform(-1.6, 0.2)
        w = rng.uniform(1.0, 1.6)
        sc.fill(sc.geom.band(d_ut, d_ut + rng.uniform(0.07, 0.13), None, _taper(24, 8.0), 24, (lo, lo + w)),
                sc.tissue(PLACENTA))
    if rng.random() < 0.7:   # posterior uterine wall / maternal tissue at the bottom
        sc.band(rng.uniform(0.86, 0.95), 1.2, sc.tissue(SOFT.scaled(0.8)), wobble=3.0)


def _taper(n: int, depth_px: float) -> np.ndarray:
    """Boundary offsets that lift both ends of a layer (a lens-shaped placenta)."""
    x = np.linspace(-1, 1, n)
    return -depth_px * x ** 4


def _head(sc: Scene, depth: tuple[float, float] = (0.42, 0.6), lateral: tuple[float, float] = (-0.3, 0.3),
          size: tuple[float, float] = (0.2, 0.3), angle: float | None = None,
          aspect: tuple[float, float] = (0.72, 0.86), front: float | None = None,
          margin: float = 5.0) -> tuple[np.ndarray, float, float, float]:
    """Draw a fetal head (scalp, skull ring, brain, falx, cavum septi pellucidi, thalami); return
    (centre, a, b, angle) of the outer skull ellipse. ``front`` (+1/-1) puts the cavum on that side of ``angle``."""
    rng, g = sc.rng, sc.geom
    a = rng.uniform(*size) * g.depth_px
    b = a * rng.uniform(*aspect)
    ang = rng.uniform(0, math.pi) if angle is None else angle
    c, k = fit(g, rng, ellipse((0, 0), a * 1.08, b * 1.08, ang), depth, lateral, margin)
    a, b = a * k, b * k
    t = max(2.0, 0.07 * b)
    sc.fill(ellipse(c, a + 0.9 * t, b + 0.9 * t, ang), sc.tissue(FETAL_SOFT))
    sc.fill(ellipse(c, a, b, ang), sc.tissue(FETAL_SKULL, 0.3))
    sc.fill(ellipse(c, a - t, b - t, ang), sc.tissue(BRAIN))
    ring_incidence(sc, c, a, b, ang, t)
    ax, nrm = unit(ang), unit(ang + math.pi / 2)
    sc.stroke(np.array([c - ax * (a - 1.2 * t), c + ax * (a - 1.2 * t)]), sc.tissue(MIDLINE), max(1, t * 0.4))
    side = (1.0 if rng.random() < 0.5 else -1.0) if front is None else front
    sc.fill(ellipse(c + ax * side * a * 0.35, a * 0.1, b * 0.08, ang), sc.tissue(AMNIOTIC))
    thal = sc.tissue(BRAIN.scaled(0.45))
    for s in (-1, 1):
        sc.fill(ellipse(c + nrm * s * b * 0.2 - ax * side * a * 0.05, a * 0.16, b * 0.15, ang), thal)
    return c, a, b, ang


def fetal_head(rng: np.random.Generator, size: int) -> Drawn:
    """fetal_head: mask = filled outer skull ellipse."""
    sc = Scene(rng, size, "abdominal")
    maternal_wall(sc)
    c, a, b, ang = _head(sc)
    return Drawn(sc, fill_mask(size, ellipse(c, a, b, ang)), truth.head(ellipse(c, a, b, ang, 1440), a, b))


def fetal_femur(rng: np.random.Generator, size: int) -> Drawn:
    """fetal_femur: a bright, shadowing diaphysis inside the thigh; points = its two ends (left end first)."""
    sc = Scene(rng, size, "abdominal")
    maternal_wall(sc)
    g = sc.geom
    length = rng.uniform(0.3, 0.48) * g.depth_px
    ang = rng.uniform(-0.5, 0.5)
    d, n = unit(ang), unit(ang + math.pi / 2)
    rel = bezier(-d * length / 2, n * rng.uniform(-0.05, 0.05) * length, d * length / 2, 25)
    t = np.linspace(-1, 1, len(rel))
    half = length * rng.uniform(0.022, 0.03) * (1.0 + 0.6 * t ** 6)
    thigh = ellipse((0, 0), length * 0.62, length * rng.uniform(0.16, 0.22), ang + rng.uniform(-0.1, 0.1))
    c, k = fit(g, rng, np.concatenate([thigh, tube(rel, half)]), (0.35, 0.62), (-0.35, 0.35), 6.0)
    sc.fill(c + thigh * k, sc.tissue(FETAL_SOFT))
    if rng.random() < 0.5:   # the other leg / a loop of cord nearby
        sc.fill(c + rot(thigh * k * 0.7, rng.uniform(0.5, 1.2)) + n * length * 0.35, sc.tissue(FETAL_SOFT.scaled(0.7)))
    sc.fill(c + tube(rel * k, half * k), sc.tissue(FETAL_BONE, 0.2))
    ends = c + rel[[0, -1]] * k
    fl = float(np.linalg.norm(ends[1] - ends[0]))
    return Drawn(sc, ends[np.argsort(ends[:, 0])], {"FL": (fl, truth.LENGTH)})


def _body(sc: Scene, size: tuple[float, float] = (0.2, 0.28), depth: tuple[float, float] = (0.4, 0.6),
          angle: float | None = None) -> tuple[np.ndarray, float, float, float]:
    """A fetal trunk cross-section (skin ring + soft interior); returns (centre, a, b, angle)."""
    rng, g = sc.rng, sc.geom
    a = rng.uniform(*size) * g.depth_px
    b = a * rng.uniform(0.84, 0.97)
    ang = rng.uniform(0, math.pi) if angle is None else angle
    c, k = fit(g, rng, ellipse((0, 0), a + 3, b + 3, ang), depth, (-0.3, 0.3), 5.0)
    a, b = a * k, b * k
    sc.fill(ellipse(c, a + 2.0, b + 2.0, ang), sc.tissue(FETAL_SKIN))
    sc.fill(ellipse(c, a, b, ang), sc.tissue(FETAL_SOFT.scaled(0.85)))
    return c, a, b, ang


def _spine(sc: Scene, c: np.ndarray, r: float, u: np.ndarray) -> np.ndarray:
    """Three ossification centres (body + two laminae) at ``c + u*0.66r``; returns the spine's hull polygon."""
    n = rot(u, math.pi / 2)
    rc = max(1.6, 0.075 * r)
    centres = [c + u * r * 0.6, c + u * r * 0.8 + n * r * 0.13, c + u * r * 0.8 - n * r * 0.13]
    circles = [ellipse(p, rc, rc, 0.0, 16) for p in centres]
    hull = convex_hull(np.concatenate(circles))
    sc.fill(hull, sc.tissue(SOFT.scaled(0.6)))
    bone = sc.tissue(FETAL_BONE, 0.2)
    for circle in circles:
        sc.fill(circle, bone)
    return hull


def convex_hull(pts: np.ndarray) -> np.ndarray:
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def abdomen_scene(sc: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Abdominal circumference plane; returns the 5-class label map (abdomen, stomach, umbilical vein, spine) and
    the outline of the abdomen (its skin ellipse)."""
    rng = sc.rng
    c, a, b, ang = _body(sc)
    r = (a + b) / 2
    u = unit(rng.uniform(0, 2 * math.pi))
    side = 1 if rng.random() < 0.5 else -1
    st_c = c + rot(u, side * rng.uniform(1.7, 2.3)) * r * 0.42
    stomach = blob(rng, st_c, r * rng.uniform(0.18, 0.26), r * rng.uniform(0.11, 0.16), rng.uniform(0, math.pi), 0.05)
    p0 = c - u * r * 0.9 + rot(u, math.pi / 2) * r * rng.uniform(-0.1, 0.1)
    p2 = c + rot(u, -side * math.pi / 2) * r * 0.2 - u * r * 0.05
    vein = tube(bezier(p0, c - u * r * 0.35 + rot(u, -side * math.pi / 2) * r * 0.3, p2, 20), max(1.4, 0.045 * r))
    sc.fill(stomach, sc.tissue(AMNIOTIC))
    sc.fill(vein, sc.tissue(AMNIOTIC.scaled(3)))
    hull = _spine(sc, c, r, u)
    label = fill_mask(sc.size, ellipse(c, a + 2.0, b + 2.0, ang), 1)
    fill(label, stomach, 2)
    fill(label, vein, 3)
    fill(label, hull, 4)
    return label, ellipse(c, a + 2.0, b + 2.0, ang, 1440)


def fetal_abdomen_multi(rng: np.random.Generator, size: int) -> Drawn:
    sc = Scene(rng, size, "abdominal")
    maternal_wall(sc)
    label, outline = abdomen_scene(sc)
    return Drawn(sc, label, {"AC": (truth.perimeter(outline), truth.LENGTH)})


def thorax_scene(sc: Scene) -> np.ndarray:
    """Four-chamber view of the fetal thorax; returns the heart mask (filled heart outline)."""
    rng = sc.rng
    c, a, b, ang = _body(sc, size=(0.2, 0.27))
    r = (a + b) / 2
    sc.fill(ellipse(c, a, b, ang), sc.tissue(FETAL_SOFT.scaled(1.35)))       # lungs
    u = unit(rng.uniform(0, 2 * math.pi))
    rib = sc.tissue(FETAL_BONE, 0.2)
    phi = math.atan2(u[1], u[0])
    for s in (-1, 1):
        t0 = phi - ang + s * rng.uniform(1.0, 1.5)
        sc.stroke(ellipse(c, a - 1, b - 1, ang, 12, t0, t0 + 0.45), rib, max(2, 0.05 * r))
    _spine(sc, c, r, u)
    sc.fill(ellipse(c + u * r * 0.38, 0.07 * r, 0.07 * r, 0), sc.tissue(AMNIOTIC))  # descending aorta
    side = 1 if rng.random() < 0.5 else -1
    n = rot(u, math.pi / 2)
    h = c - u * r * 0.22 + n * side * r * 0.12
    ha, hb = r * rng.uniform(0.4, 0.48), r * rng.uniform(0.32, 0.38)
    hang = phi + math.pi + side * rng.uniform(0.6, 0.9)
    sc.stroke(ellipse(h, ha + 1, hb + 1, hang), sc.tissue(FETAL_SKIN), 1, closed=True)      # pericardium
    sc.fill(ellipse(h, ha, hb, hang), sc.tissue(HEART_WALL))
    e, e2 = unit(hang), unit(hang + math.pi / 2)
    blood = sc.tissue(AMNIOTIC.scaled(5))
    for s in (-1, 1):    # ventricles towards the apex, atria towards the base, septa in between
        sc.fill(blob(rng, h + e * ha * 0.32 + e2 * s * hb * 0.4, ha * 0.44, hb * 0.4, hang, 0.04), blood)
        sc.fill(blob(rng, h - e * ha * 0.45 + e2 * s * hb * 0.4, ha * 0.3, hb * 0.38, hang, 0.04), blood)
    return fill_mask(sc.size, ellipse(h, ha, hb, hang))


def fetal_heart(rng: np.random.Generator, size: int) -> Drawn:
    sc = Scene(rng, size, "abdominal")
    maternal_wall(sc)
    return Drawn(sc, thorax_scene(sc))


def clock_direction(k: int, rng: np.random.Generator, jitter_deg: float = 15.0) -> tuple[float, np.ndarray]:
    """Angle (radians, clockwise from 'up' = anterior) and unit image vector of clock class ``k`` of 8."""
    psi = k * math.pi / 4 + math.radians(rng.uniform(-jitter_deg, jitter_deg))
    return psi, np.array([math.sin(psi), -math.cos(psi)])


def _perineum(sc: Scene) -> None:
    """Transperineal window: thick maternal soft tissue and pelvic floor muscle layers."""
    sc.background(SOFT.scaled(0.7))
    sc.band(-0.05, sc.rng.uniform(0.06, 0.12), sc.tissue(MUSCLE), wobble=2.0)
    sc.band(-0.05, 0.015, sc.tissue(SKIN))


def fetal_head_pos(rng: np.random.Generator, size: int) -> Drawn:
    """Axial transperineal head: midline along the occiput direction, orbits at the face, thick occipital bone.
    Class = 8 clock sectors of the occiput direction (0 = anterior = up, clockwise)."""
    sc = Scene(rng, size, "abdominal")
    _perineum(sc)
    k = int(rng.integers(8))
    psi, u = clock_direction(k, rng)
    ang = math.atan2(u[1], u[0])
    c, a, b, _ = _head(sc, (0.45, 0.58), (-0.15, 0.15), (0.28, 0.34), ang, (0.85, 0.95), front=-1.0)
    n = unit(ang + math.pi / 2)
    orbit, rim = sc.tissue(AMNIOTIC.scaled(10)), sc.tissue(FETAL_BONE, 0.2)
    for s in (-1, 1):
        o = ellipse(c - u * a * 0.66 + n * s * b * 0.32, b * 0.13, b * 0.11, ang)
        sc.stroke(o, rim, max(1, 0.025 * a), closed=True)
        sc.fill(o, orbit)
    sc.stroke(ellipse(c, a - 1, b - 1, ang, 16, -0.55, 0.55), sc.tissue(FETAL_BONE, 0.1), max(2, 0.07 * b))
    cereb = sc.tissue(BRAIN.scaled(2.5))
    for s in (-1, 1):
        sc.fill(ellipse(c + u * a * 0.55 + n * s * b * 0.17, a * 0.13, b * 0.12, ang), cereb)
    return Drawn(sc, k)


def fetal_sacral_pos(rng: np.random.Generator, size: int) -> Drawn:
    """Fetal pelvis cross-section: bright shadowing sacrum arc and iliac wings toward the class direction,
    bladder opposite. Class = 8 clock sectors of the sacrum direction (0 = anterior = up, clockwise)."""
    sc = Scene(rng, size, "abdominal")
    maternal_wall(sc, placenta=False)
    k = int(rng.integers(8))
    psi, u = clock_direction(k, rng)
    ang = math.atan2(u[1], u[0])
    c, a, b, _ = _body(sc, (0.22, 0.28), (0.42, 0.55), ang)
    n = rot(u, math.pi / 2)
    sacrum = ellipse(c + u * a * 0.42, a * 0.22, b * 0.36, ang, 24, -1.2, 1.2)   # crescent, concave inwards
    sc.fill(tube(sacrum, max(1.5, 0.05 * a)), sc.tissue(FETAL_BONE, 0.1))
    ilium = sc.tissue(Tissue(8.0, 3.0, 4.0, 0.15))
    for s in (-1, 1):
        sc.stroke(np.array([c + u * a * 0.38 + n * s * b * 0.4, c - u * a * 0.1 + n * s * b * 0.62]), ilium, 2)
    sc.fill(ellipse(c - u * a * 0.5, a * 0.2, b * 0.17, ang), sc.tissue(AMNIOTIC))       # bladder
    return Drawn(sc, k)


def _cord(sc: Scene, c: np.ndarray, r: float) -> None:
    """Umbilical cord cross-section: Wharton's jelly, one vein, two arteries."""
    rng = sc.rng
    sc.fill(ellipse(c, r, r, 0), sc.tissue(FETAL_SOFT.scaled(0.6)))
    blood = sc.tissue(AMNIOTIC.scaled(5))
    v = unit(rng.uniform(0, 2 * math.pi))
    sc.fill(ellipse(c + v * r * 0.35, r * 0.45, r * 0.45, 0), blood)
    for s in (-1, 1):
        sc.fill(ellipse(c - v * r * 0.35 + rot(v, math.pi / 2) * s * r * 0.38, r * 0.26, r * 0.26, 0), blood)


def fetal_other(rng: np.random.Generator, size: int) -> Drawn:
    """'other' plane: thick placenta with venous lakes, cord loops and a limb in amniotic fluid."""
    sc = Scene(rng, size, "abdominal")
    maternal_wall(sc, placenta=False)
    g = sc.geom
    d0 = rng.uniform(0.14, 0.22)
    sc.band(d0, d0 + rng.uniform(0.2, 0.35), sc.tissue(PLACENTA), wobble=4.0)
    lake = sc.tissue(AMNIOTIC.scaled(20))
    for _ in range(int(rng.integers(1, 4))):
        sc.fill(blob(rng, g.at(d0 + rng.uniform(0.05, 0.18), rng.uniform(-0.7, 0.7)), 0.04 * g.depth_px,
                     0.025 * g.depth_px, rng.uniform(0, math.pi), 0.1), lake)
    for _ in range(int(rng.integers(2, 5))):
        _cord(sc, g.at(rng.uniform(0.55, 0.85), rng.uniform(-0.7, 0.7)), rng.uniform(0.035, 0.06) * g.depth_px)
    if rng.random() < 0.6:
        p = g.at(rng.uniform(0.55, 0.8), rng.uniform(-0.5, 0.5))
        d = unit(rng.uniform(0, math.pi)) * 0.12 * g.depth_px
        sc.fill(ellipse(p, 0.17 * g.depth_px, 0.05 * g.depth_px, math.atan2(d[1], d[0])), sc.tissue(FETAL_SOFT))
        sc.fill(tube(np.array([p - d, p + d]), 1.5), sc.tissue(FETAL_BONE))
    return Drawn(sc, 5)
