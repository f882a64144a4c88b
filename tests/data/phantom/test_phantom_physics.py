"""Image formation: black outside the sector, Rayleigh speckle, shadows along the beams, enhancement."""
import numpy as np

from usedge.data.phantom.anatomy_base import ellipse, fill
from usedge.data.phantom.physics import PRESETS, Acquisition, get_geometry, render, variants

ACQ = Acquisition(freq_mhz=5.0, depth_cm=8.0, gain_db=0.0, dynamic_range_db=55.0, tgc_compensation=0.9,
                  tgc_sliders_db=(0.0,) * 5, noise_db=-40.0, clutter_db=-40.0, sigma_axial=0.9,
                  sigma_lateral=1.0, tissue_gray=0.5, gamma=1.0, smoothing=0.0)
S = 192


def _maps():
    return np.ones((S, S), np.float32), np.zeros((S, S), np.float32), np.full((S, S), 0.5, np.float32)


def test_geometries_and_black_outside():
    for preset in PRESETS:
        for v in range(variants(preset)):
            g = get_geometry(preset, S, v)
            assert g.mask.dtype == np.uint8 and 0.3 < g.mask.mean() < 1.0
            img = render(*_maps(), g, ACQ, np.random.default_rng(v))
            assert (img[g.mask == 0] == 0).all()
            assert img[g.mask > 0].mean() > 60
            pts = g.at(np.array([0.1, 0.5, 0.9]), np.array([-0.5, 0.0, 0.5]))
            assert g.contains(pts).all() and np.allclose(g.depth_of(pts), [0.1, 0.5, 0.9])


def test_fully_developed_speckle():
    """Homogeneous tissue: the log-compressed envelope has the Rayleigh spread (std ~5.6 dB)."""
    g = get_geometry("linear", S, 6)
    img = render(*_maps(), g, ACQ, np.random.default_rng(0)).astype(np.float64)
    roi = img[60:120, 60:130]
    db_std = roi.std() * ACQ.dynamic_range_db / 255.0
    assert 4.0 < db_std < 7.0


def test_bone_shadows_and_cyst_enhancement_follow_the_beams():
    g = get_geometry("abdominal", S, 4)
    echo, spec, atten = _maps()
    bone = ellipse(g.at(0.25, -0.5), 10, 3, 0.0)
    for arr, value in ((echo, 20.0), (spec, 12.0), (atten, 25.0)):
        fill(arr, bone, value)
    cyst = ellipse(g.at(0.3, 0.5), 16, 16, 0.0)
    fill(echo, cyst, 1e-5)
    fill(atten, cyst, 0.02)
    imgs = [render(echo, spec, atten, g, ACQ, np.random.default_rng(k)).astype(np.float64) for k in range(3)]
    img = np.mean(imgs, 0)

    def mean_at(depth, lateral, r=5):
        x, y = np.round(g.at(depth, lateral)).astype(int)
        return img[y - r:y + r + 1, x - r:x + r + 1].mean()

    beside = mean_at(0.7, 0.0)
    assert mean_at(0.7, -0.5) < 0.5 * beside, "shadow behind the bone, along its beam"
    x_bone = g.at(0.25, -0.5)[0]
    straight_below = np.array([x_bone, g.at(0.9, -0.5)[1]])
    if g.lateral_of(straight_below) > -0.3:              # straight down is another beam in a fan
        xs, ys = np.round(straight_below).astype(int)
        assert img[ys - 5:ys + 6, xs - 5:xs + 6].mean() > 0.5 * beside
    assert mean_at(0.7, 0.5) > beside + 15, "posterior enhancement behind the cyst"
