"""Hadlock dating, EFW and the weight standard against printed values (and, where no printed example exists, an
independent implementation), plus the guards a swapped or mistyped coefficient would trip."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from usedge.measure import hadlock as h
from usedge.measure import measure
from usedge.runtime.results import FrameResult, LandmarkResult, SegmentationResult


def test_the_hc_table_is_hadlocks_linear_cubic_model():
    model = -11.48 + 1.56 * h.TABLE_WEEKS - 0.0002548 * h.TABLE_WEEKS ** 3
    assert len(h.HC_FOR_AGE_CM) == len(h.TABLE_WEEKS) == 57
    assert np.abs(model - h.HC_FOR_AGE_CM).max() < 0.1             # a mistyped entry is off by >= 0.3 cm
    assert (np.diff(h.HC_FOR_AGE_CM) > 0).all() and (np.diff(h.FL_FOR_AGE_CM) >= 0).all()


@pytest.mark.parametrize("weeks,hc_cm", [(12.0, 6.8), (20.0, 17.7), (25.0, 23.5), (30.0, 28.4), (35.0, 32.2),
                                         (40.0, 34.6)])
def test_dating_by_hc_returns_the_printed_week(weeks, hc_cm):
    assert h.age_from_size(hc_cm, h.HC_FOR_AGE_CM) == pytest.approx(weeks, abs=1e-9)


def test_dating_between_table_rows_follows_the_model():
    for weeks in np.arange(12.25, 40.0, 1.0):
        hc = -11.48 + 1.56 * weeks - 0.0002548 * weeks ** 3
        assert h.age_from_size(hc, h.HC_FOR_AGE_CM) == pytest.approx(weeks, abs=0.2)


def test_dating_by_fl_and_outside_the_table():
    assert h.age_from_size(3.3, h.FL_FOR_AGE_CM) == 20.0 and h.age_from_size(5.8, h.FL_FOR_AGE_CM) == 30.0
    assert h.age_from_size(7.4, h.FL_FOR_AGE_CM) == 38.0                 # printed twice: the first week
    assert h.age_from_size(0.5, h.FL_FOR_AGE_CM) is None and h.age_from_size(40.0, h.HC_FOR_AGE_CM) is None
    assert h.weeks_days(20.43) == "20w3d"


def test_efw_hc_ac_fl_matches_the_who_calculator():
    """Expected values: the WHO fetal growth calculator (srhr.org/fetalgrowthcalculator), as used in the tests of
    the whoFetalStandards R package; no printed worked example of the 1985 paper was found."""
    for (hc, ac, fl), grams in [((6, 6, 6), 304.5), ((9, 9, 9), 942.8), ((12, 12, 12), 2550.1),
                                ((6, 9, 12), 2129.7)]:
        got, formula = h.efw_hadlock(hc_mm=hc * 10, ac_mm=ac * 10, fl_mm=fl * 10)
        assert formula == "Hadlock 1985 HC-AC-FL" and got == pytest.approx(grams, abs=0.06)


def test_efw_formulas_agree_on_a_term_fetus_and_need_ac_and_fl():
    """A term-sized fetus (BPD 9.3, HC 33.5, AC 34.5, FL 7.3 cm): every form gives 3.2-3.7 kg (a swapped AC/FL or a
    sign error gives grams off by orders of magnitude)."""
    kw = dict(ac_mm=345.0, fl_mm=73.0)
    for extra in ({}, {"hc_mm": 335.0}, {"bpd_mm": 93.0}, {"hc_mm": 335.0, "bpd_mm": 93.0}):
        grams, _ = h.efw_hadlock(**kw, **extra)
        assert 3200 < grams < 3700, (extra, grams)
    with pytest.raises(ValueError):
        h.efw_hadlock(hc_mm=335.0, ac_mm=345.0)


@pytest.mark.parametrize("weeks,grams", [(10, 35), (15, 117), (20, 331), (25, 785), (28, 1210), (30, 1559),
                                         (34, 2377), (37, 3028), (40, 3619)])
def test_the_weight_standard_is_the_printed_table_and_its_model(weeks, grams):
    assert h.weight_centiles(weeks)[50] == pytest.approx(grams, abs=1e-6)
    assert round(math.exp(0.578 + 0.332 * weeks - 0.00354 * weeks ** 2)) == grams


def test_printed_centiles_and_bands():
    at = {w: h.weight_centiles(w) for w in (20, 30, 40)}
    for w, c, printed in [(20, 10, 275), (30, 10, 1294), (40, 10, 3004), (20, 90, 387), (30, 90, 1824),
                          (40, 90, 4234), (40, 3, 2714), (40, 97, 4524)]:
        assert at[w][c] == pytest.approx(printed, abs=1.0)
    assert h.centile_band(40, 3619) == "50th-90th" and h.centile_band(40, 2000) == "<3rd"
    assert h.centile_band(30, 1300) == "10th-50th" and h.centile_band(30, 5000) == ">97th"
    assert h.centile_band(9, 100) is None


def test_gestational_age_is_reported_per_frame_from_hc_and_fl():
    mask = np.zeros((600, 600), np.uint8)
    a, b = 130, 100                                   # px: at 0.25 mm per px an HC of about 181 mm (20 weeks)
    cv2.ellipse(mask, (300, 300), (a, b), 0, 0, 360, 1, -1)
    femur = np.array([[100.0, 100.0], [100.0 + 33.0 / 0.25, 100.0]])          # 33 mm at 0.25 mm per px
    r = FrameResult(600, 600, {"fetal_head": SegmentationResult("fetal_head", mask, ("background", "head")),
                               "fetal_femur": LandmarkResult("fetal_femur", femur, ("a", "b"), 600, 600)})
    got = {m.name: m for m in measure(r, (0.25, 0.25))}
    hc = got["HC"].value
    assert got["GA_HC"].value == pytest.approx(h.age_from_size(hc / 10, h.HC_FOR_AGE_CM))
    assert got["GA_HC"].detail["HC"] == pytest.approx(hc, abs=0.01)
    assert got["GA_FL"].value == pytest.approx(20.0, abs=0.05) and got["GA_FL"].unit == "weeks"
    assert "calibrated" in {m.name: m for m in measure(r, None)}["GA_HC"].withheld
    big = {m.name: m for m in measure(r, (1.0, 1.0))}["GA_HC"]                 # a 1.4 m head
    assert big.value is None and "outside the Hadlock table" in big.withheld
