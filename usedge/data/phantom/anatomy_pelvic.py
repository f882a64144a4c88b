"""Pelvic scenes: intrapartum transperineal view (pubic symphysis + fetal head), transvaginal cervix,
ovarian tumour and uterine fibroid."""
from __future__ import annotations

import math

import numpy as np

from usedge.data.phantom import truth
from usedge.data.phantom.anatomy_base import (
    FASCIA,
    FAT,
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
    ring_incidence,
    rot,
    stroke,
    tube,
    unit,
)
from usedge.data.phantom.anatomy_fetal import AMNIOTIC, BRAIN, FETAL_SKULL, FETAL_SOFT, MIDLINE

PUBIC_BONE = Tissue(9.0, 3.0, 4.0, 0.3)
CARTILAGE = Tissue(0.5, 0.8, 0.0, 0.3)
URINE = Tissue(2e-5, 0.02, 0.0, 0.0)
CYST_FLUID = Tissue(3e-4, 0.03, 0.0, 0.8)
SEPTUM = Tissue(4.0, 0.8, 1.0, 0.2)
ENDOMETRIUM = Tissue(5.0, 0.6, 1.0, 0.3)
FIBROID = Tissue(0.3, 0.9, 0.0, 0.2)
MUCOSA = Tissue(0.4, 0.5, 0.0, 0.3)


def abdominal_wall(sc: Scene, bladder: float = 0.0) -> float:
    """Skin, fat, rectus muscle; optionally a full bladder (anechoic) below. Returns the depth reached."""
    rng = sc.rng
    d_fat = rng.uniform(0.03, 0.07)
    d_mus = d_fat + rng.uniform(0.03, 0.05)
    sc.band(-0.05, d_mus, sc.tissue(MUSCLE), wobble=1.5)
    sc.band(-0.05, d_fat, sc.tissue(FAT), wobble=1.5)
    sc.band(-0.05, 0.012, sc.tissue(SKIN))
    sc.band(d_mus, d_mus + 1.6 / sc.geom.depth_px, sc.tissue(FASCIA))
    if rng.random() < bladder:
        g = sc.geom
        lat = rng.uniform(-0.3, 0.3)
        c = g.at(d_mus + 0.1, lat)
        sc.fill(blob(rng, c, 0.28 * g.depth_px, 0.08 * g.depth_px, rng.uniform(-0.2, 0.2), 0.05), sc.tissue(URINE))
        return d_mus + 0.18
    return d_mus


# ----------------------------------------------------------------------------------------------------
# Intrapartum transperineal view


def _tangent_point(q: np.ndarray, c: np.ndarray, a: float, b: float, ang: float, away: np.ndarray) -> np.ndarray:
    """Where a line from ``q`` touches the ellipse; of the two such points, the one farther from ``away``."""
    t = np.linspace(0, 2 * math.pi, 2048, endpoint=False)
    p = ellipse(c, a, b, ang, 2048)
    dp = rot(np.stack([-a * np.sin(t), b * np.cos(t)], -1), ang)
    v = p - q
    cross = v[:, 0] * dp[:, 1] - v[:, 1] * dp[:, 0]
    idx = np.flatnonzero(np.sign(cross) != np.sign(np.roll(cross, -1)))
    if len(idx) == 0:   # q inside the ellipse: cannot happen for separated shapes
        idx = np.array([int(np.argmin(np.abs(cross)))])
    cands = p[idx]
    return cands[int(np.argmax(np.linalg.norm(cands - away, axis=1)))]


def _inside(pts: np.ndarray, c: np.ndarray, a: float, b: float, ang: float) -> np.ndarray:
    q = rot(pts - c, -ang)
    return (q[:, 0] / a) ** 2 + (q[:, 1] / b) ** 2 <= 1.0


def _intrapartum(sc: Scene) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, float, float, float], np.ndarray]:
    """Draw symphysis + fetal head; return (symphysis polygon, [upper, lower], head ellipse, tangent point)."""
    rng, g = sc.rng, sc.geom
    sc.background(SOFT.scaled(0.75))
    sc.band(-0.05, rng.uniform(0.05, 0.1), sc.tissue(MUSCLE), wobble=2.0)
    sc.band(-0.05, 0.015, sc.tissue(SKIN))
    dp = g.depth_px
    ls = rng.uniform(0.2, 0.28) * dp
    s_ang = rng.uniform(math.radians(25), math.radians(60))
    s_b = ls * rng.uniform(0.17, 0.22)
    sym_rel = ellipse((0, 0), ls / 2, s_b, s_ang, 64)
    sc_c, k = fit(g, rng, sym_rel, (0.16, 0.3), (-0.6, -0.25), 6.0)
    sym = sc_c + sym_rel * k
    axis = unit(s_ang) * ls / 2 * k
    ends = np.array([sc_c - axis, sc_c + axis])
    upper, lower = (ends if ends[0, 1] <= ends[1, 1] else ends[::-1])
    sc.fill(sym, sc.tissue(PUBIC_BONE, 0.2))
    sc.fill(sc_c + rot(rot(sym_rel * k, -s_ang) * np.array([0.9, 0.3]), s_ang), sc.tissue(CARTILAGE))
    head = None
    for attempt in range(12):
        a = rng.uniform(0.26, 0.36) * dp * (0.9 ** attempt)
        b = a * rng.uniform(0.82, 0.95)
        h_ang = rng.uniform(0, math.pi)
        hc, hk = fit(g, rng, ellipse((0, 0), a + 4, b + 4, h_ang), (0.5, 0.7), (-0.05, 0.4), 5.0)
        a, b = a * hk, b * hk
        apart = not (_inside(sym, hc, a + 4, b + 4, h_ang).any()
                     or _inside(ellipse(hc, a + 4, b + 4, h_ang), sc_c, ls / 2 * k, s_b * k, s_ang).any())
        if apart and np.linalg.norm(hc - lower) > max(a, b) + 4:
            head = (hc, a, b, h_ang)
            break
    if head is None:
        raise RuntimeError("could not place the fetal head")
    hc, a, b, h_ang = head
    t = max(2.0, 0.06 * b)
    sc.fill(ellipse(hc, a + 0.8 * t, b + 0.8 * t, h_ang), sc.tissue(FETAL_SOFT))
    sc.fill(ellipse(hc, a, b, h_ang), sc.tissue(FETAL_SKULL, 0.3))
    sc.fill(ellipse(hc, a - t, b - t, h_ang), sc.tissue(BRAIN))
    ring_incidence(sc, hc, a, b, h_ang, t)
    ax = unit(h_ang)
    sc.stroke(np.array([hc - ax * (a - 1.2 * t), hc + ax * (a - 1.2 * t)]), sc.tissue(MIDLINE), max(1, 0.4 * t))
    tangent = _tangent_point(lower, hc, a, b, h_ang, upper)
    return sym, np.array([upper, lower]), head, tangent


def iugc(rng: np.random.Generator, size: int) -> Drawn:
    """IUGC: symphysis upper / lower ends and the head-contour tangent point from the lower end."""
    sc = Scene(rng, size, "abdominal")
    _, ends, _, tangent = _intrapartum(sc)
    return Drawn(sc, np.array([ends[0], ends[1], tangent]),
                 {"AoP": (truth.angle_deg(ends[1], ends[0], tangent), truth.ANGLE)})


def head_symphysis_multi(rng: np.random.Generator, size: int) -> Drawn:
    """head_symphysis_multi: 1 = pubic symphysis (filled oval), 2 = fetal head (filled outer skull ellipse)."""
    sc = Scene(rng, size, "abdominal")
    sym, ends, (hc, a, b, h_ang), tangent = _intrapartum(sc)
    label = fill_mask(size, sym, 1)
    fill(label, ellipse(hc, a, b, h_ang), 2)
    return Drawn(sc, label, {"AoP_mask": (truth.angle_deg(ends[1], ends[0], tangent), truth.ANGLE)})


# ----------------------------------------------------------------------------------------------------
# Transvaginal cervix


def _cervix(sc: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cervix with its canal; returns (anterior lip polygon, posterior lip polygon, [internal_os, external_os])."""
    rng, g = sc.rng, sc.geom
    sc.background(SOFT.scaled(0.25))
    dp = g.depth_px
    length = rng.uniform(0.32, 0.46) * dp
    th = rng.uniform(-0.35, 0.35) + (math.pi if rng.random() < 0.5 else 0.0)
    d = unit(th)                                   # from external to internal os
    n = rot(d, math.pi / 2)
    n = n if n[1] < 0 else -n                      # anterior = towards the probe (up)
    bend = rng.uniform(-0.08, 0.08) * length
    canal_rel = bezier(-d * length / 2, n * bend, d * length / 2, 40)
    thick = length * rng.uniform(0.26, 0.36)
    t = np.linspace(0, 1, len(canal_rel))
    tip = np.clip(t / 0.14, 0, 1)                  # rounded lips at the external os, narrower towards the internal
    prof = np.sqrt(tip * (2 - tip)) * (1.0 - 0.3 * np.clip((t - 0.7) / 0.3, 0, 1) ** 2)
    h_up = thick * prof * rng.uniform(0.85, 1.15)
    h_lo = thick * prof * rng.uniform(0.85, 1.15)
    outline = np.concatenate([canal_rel + n * h_up[:, None], canal_rel - n * h_lo[:, None]])
    c, k = fit(g, rng, np.concatenate([outline, canal_rel + d * 0.25 * length]), (0.35, 0.55), (-0.25, 0.25), 6.0)
    canal = c + canal_rel * k
    h_up, h_lo = h_up * k, h_lo * k
    e_os, i_os = canal[0], canal[-1]
    ant = np.concatenate([canal, (canal + n * h_up[:, None])[::-1]])
    post = np.concatenate([canal, (canal - n * h_lo[:, None])[::-1]])
    # amniotic sac beyond the internal os, bladder in front, vaginal fornices at the external os
    rs = rng.uniform(0.22, 0.32) * dp
    sc.fill(ellipse(i_os + d * (rs + 2.0), rs * 1.15, rs * 0.95, th), sc.tissue(SOFT.scaled(1.3)))
    sc.fill(ellipse(i_os + d * (rs + 4.0), rs, rs * 0.85, th), sc.tissue(AMNIOTIC))
    if rng.random() < 0.7:
        bc = (canal[len(canal) // 2] + n * (thick * k + 0.1 * dp) + d * 0.15 * length)
        sc.fill(blob(rng, bc, 0.2 * dp, 0.07 * dp, th, 0.05), sc.tissue(URINE))
    stroma = sc.tissue(SOFT.scaled(1.6))
    sc.fill(ant, stroma)
    sc.fill(post, stroma)
    fornix = sc.tissue(FASCIA)
    for s in (-1, 1):
        p0 = e_os + n * s * h_up[0] * 0.4
        sc.stroke(np.array([p0, p0 - d * 0.25 * length + n * s * 0.12 * length]), fornix, 2)
    sc.fill(tube(canal, max(1.5, thick * k * 0.14)), sc.tissue(MUCOSA.scaled(0.5)))
    sc.stroke(canal, sc.tissue(SEPTUM.scaled(1.5)), 1)
    return ant, post, np.array([i_os, e_os])


def fugc(rng: np.random.Generator, size: int) -> Drawn:
    """FUGC: internal os (canal end at the amniotic sac), external os (canal end at the vagina)."""
    sc = Scene(rng, size, "endocavity")
    _, _, points = _cervix(sc)
    return Drawn(sc, points, {"CL": (float(np.linalg.norm(points[0] - points[1])), truth.LENGTH)})


def cervix(rng: np.random.Generator, size: int) -> Drawn:
    sc = Scene(rng, size, "endocavity")
    ant, post, _ = _cervix(sc)
    label = fill_mask(size, ant)
    fill(label, post, 1)
    return Drawn(sc, label)


def cervix_multi(rng: np.random.Generator, size: int) -> Drawn:
    """cervix_multi: 1 = anterior lip (probe side of the canal), 2 = posterior lip."""
    sc = Scene(rng, size, "endocavity")
    ant, post, points = _cervix(sc)
    label = fill_mask(size, ant, 1)
    fill(label, post, 2)
    return Drawn(sc, label, {"CL_mask": (float(np.linalg.norm(points[0] - points[1])), truth.LENGTH)})


# ----------------------------------------------------------------------------------------------------
# Ovary and uterus


def ovary_tumor(rng: np.random.Generator, size: int) -> Drawn:
    """ovary_tumor: a cystic mass with wall, septations and papillary solid parts; mask = the mass."""
    sc = Scene(rng, size, "endocavity" if rng.random() < 0.5 else "abdominal")
    g = sc.geom
    top = abdominal_wall(sc, bladder=0.5) if g.preset == "abdominal" else 0.0
    sc.background(SOFT.scaled(0.75))
    dp = g.depth_px
    for _ in range(int(rng.integers(1, 4))):      # bowel loops / pelvic fat
        sc.fill(blob(rng, g.at(rng.uniform(0.3, 0.95), rng.uniform(-0.9, 0.9)), 0.1 * dp, 0.05 * dp,
                     rng.uniform(0, math.pi), 0.15), sc.tissue(SOFT.scaled(rng.uniform(0.6, 1.8)), 0.1))
    a = rng.uniform(0.18, 0.3) * dp
    b = a * rng.uniform(0.7, 1.0)
    ang = rng.uniform(0, math.pi)
    rel = blob(rng, (0, 0), a, b, ang, 0.06)
    c, k = fit(g, rng, rel * 1.05, (max(0.4, top + 0.2), 0.62), (-0.3, 0.3), 6.0)
    mass = c + rel * k
    sc.stroke(mass, sc.tissue(SEPTUM), 2, closed=True)
    sc.fill(mass, sc.tissue(CYST_FLUID.scaled(rng.uniform(1, 10)), 0.0))
    inner = np.zeros((size, size), np.uint8)
    fill(inner, c + (mass - c) * 0.97, 1)
    septa = np.zeros_like(inner)
    for _ in range(int(rng.integers(1, 5))):
        i, j = rng.choice(len(mass), 2, replace=False)
        stroke(septa, np.array([mass[i], mass[j]]), 1, int(rng.integers(1, 3)))
    sid = sc.tissue(SEPTUM)
    sc.idx[(septa & inner) > 0] = sid
    solid = sc.tissue(SOFT.scaled(0.9))
    for _ in range(int(rng.integers(0, 4))):
        p = mass[int(rng.integers(len(mass)))]
        sc.fill(blob(rng, c + (p - c) * 0.88, 0.12 * a * k, 0.09 * a * k, rng.uniform(0, math.pi), 0.2), solid)
    return Drawn(sc, fill_mask(size, mass), truth.lesion("ovary_tumor", mass))


def uterine_fibroid(rng: np.random.Generator, size: int) -> Drawn:
    """uterine_fibroid_det: a round hypoechoic, whorled, slightly shadowing mass in the uterus; box = its extent."""
    sc = Scene(rng, size, "abdominal")
    g = sc.geom
    top = abdominal_wall(sc, bladder=0.6)
    sc.background(SOFT.scaled(0.4))
    dp = g.depth_px
    ua, ub = rng.uniform(0.3, 0.38) * dp, rng.uniform(0.19, 0.25) * dp
    u_ang = rng.uniform(-0.4, 0.4)
    urel = blob(rng, (0, 0), ua, ub, u_ang, 0.05)
    uc, k = fit(g, rng, urel, (max(0.45, top + 0.25), 0.6), (-0.2, 0.2), 4.0)
    ua, ub = ua * k, ub * k
    sc.fill(uc + urel * k, sc.tissue(SOFT.scaled(1.2)))
    ax = unit(u_ang)
    stripe = np.array([uc - ax * ua * 0.65, uc + ax * ua * 0.6])
    sc.fill(tube(bezier(stripe[0], uc + rot(ax, math.pi / 2) * ub * 0.05, stripe[1], 12), ub * 0.11),
            sc.tissue(MUCOSA.scaled(0.4)))
    sc.fill(tube(bezier(stripe[0], uc + rot(ax, math.pi / 2) * ub * 0.05, stripe[1], 12), ub * 0.07),
            sc.tissue(ENDOMETRIUM))
    r = rng.uniform(0.35, 0.6) * ub
    rel = blob(rng, (0, 0), r, r * rng.uniform(0.85, 1.0), rng.uniform(0, math.pi), 0.05)
    for _ in range(30):
        fc = uc + rot(np.array([rng.uniform(-0.6, 0.6) * ua, rng.uniform(-0.7, 0.7) * ub]), u_ang)
        if g.contains(fc + rel, 4.0).all():
            break
    else:
        fc, rel = uc, rel * 0.8
    mass = fc + rel
    sc.fill(mass, sc.tissue(FIBROID))
    _whorl(sc, fc, r, rng)
    return Drawn(sc, fill_mask(size, mass))


def _whorl(sc: Scene, c: np.ndarray, r: float, rng: np.random.Generator) -> None:
    """Concentric/whorled echo modulation inside radius ``r`` around ``c``."""
    x0, y0 = max(int(c[0] - r - 2), 0), max(int(c[1] - r - 2), 0)
    x1, y1 = min(int(c[0] + r + 3), sc.size), min(int(c[1] + r + 3), sc.size)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - np.float32(c[0]), yy - np.float32(c[1])
    rad = np.sqrt(dx * dx + dy * dy)
    phase = np.arctan2(dy, dx)
    wave = np.exp(1.1 * np.sin(rad / max(r, 1.0) * rng.uniform(9, 14) + 1.5 * np.sin(3 * phase + rng.uniform(0, 6))))
    sel = rad <= r
    mul = sc.modulate()[y0:y1, x0:x1]
    mul[sel] *= wave[sel].astype(np.float32)
