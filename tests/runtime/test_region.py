"""Which part of a frame the model sees: region modes of the Predictor (dicom / auto / none / a box), the found
region of a screen grab (usedge.data.region_finder through RegionCache), and bad region options."""
from __future__ import annotations

import numpy as np
import pytest

from usedge.data.phantom import generate_sample, sample_rng
from usedge.data.phantom.screen import screen_grab
from usedge.errors import ConfigError, DataError
from usedge.runtime.predictor import check_region_mode


@pytest.fixture(scope="module")
def auto():
    import usedge

    with usedge.load(region="auto") as p:
        yield p


def test_region_modes_parse():
    assert check_region_mode(None) == "dicom" and check_region_mode(" AUTO ") == "auto"
    assert check_region_mode("10,20,300,200") == (10, 20, 300, 200) and check_region_mode((1, 2, 3, 4)) == (1, 2, 3, 4)
    with pytest.raises(ConfigError, match="x0,y0,x1,y1"):
        check_region_mode("left half")
    with pytest.raises(DataError, match="not \\(x0, y0, x1, y1\\)"):
        check_region_mode(3.5)


def test_auto_finds_the_image_in_a_screen_grab_once_per_layout(auto):
    image = generate_sample("FUGC", sample_rng(11, "val", "FUGC", 0)).image
    screen = screen_grab(image, 170, 100)
    ys, xs = np.nonzero(image)
    r = auto(screen)
    x0, y0, x1, y1 = r.region
    assert r.region_source == "found" and r.to_json()["region_source"] == "found"
    assert abs(x0 - (170 + xs.min())) <= 4 and abs(y1 - (100 + ys.max() + 1)) <= 4
    searches = auto.region_cache.searches
    auto(screen)
    assert auto.region_cache.searches == searches               # same layout: not searched again
    moved = auto(screen_grab(image, 60, 140))
    assert auto.region_cache.searches == searches + 1 and moved.region[0] < x0
    pts = r["FUGC"].points
    assert ((pts[:, 0] >= x0 - 1) & (pts[:, 0] <= x1 + 1)).all()  # the answer is in frame pixels, inside the image


def test_none_a_box_and_per_call_override(auto):
    screen = screen_grab(generate_sample("lung", sample_rng(12, "val", "lung", 0)).image, 100, 60)
    assert auto(screen, region="none").region is None
    given = auto(screen, region=(100, 60, 356, 316))
    assert given.region == (100, 60, 356, 316) and given.region_source == "given"


def test_a_screen_without_an_image_falls_back_to_the_whole_frame(auto):
    r = auto(screen_grab(np.zeros((10, 10), np.uint8), 300, 300))
    assert r.region is None and not r.accepted
