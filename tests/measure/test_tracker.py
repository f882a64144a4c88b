"""Measurements over a cine: the tracker's median, spread, confidence, best frame and freeze, on the phantom cine's
own truth masks; the stream attaches them to every result (with the packaged default, as a user runs it)."""
from __future__ import annotations

import numpy as np
import pytest

from usedge.data.phantom.cine import iter_cine
from usedge.errors import ConfigError
from usedge.measure import Measurement, MeasurementTracker, Measurer, measure
from usedge.runtime.results import FrameResult, SegmentationResult


def truth_results(frames: int = 24, seed: int = 1):
    for s in iter_cine("fetal_head", frames, seed=seed, size=256):
        mask = np.asarray(s.label, np.uint8)
        yield FrameResult(256, 256, {"fetal_head": SegmentationResult("fetal_head", mask, ("background", "head"))},
                          index=s.meta["frame"])


def test_tracked_hc_over_the_phantom_cine_is_the_median_of_the_frames():
    measurer = Measurer(names=["HC"], mm_per_pixel=0.3, window=30, min_accepted=5)
    per_frame = []
    for r in truth_results():
        per_frame.append(measurer(r)[0].value)
        assert r.measurements[0].name == "HC" and "HC" in r.tracked
    tracked = measurer.tracker.summary()["HC"]
    assert tracked.value == pytest.approx(float(np.median(per_frame)))
    assert tracked.range == pytest.approx(max(per_frame) - min(per_frame))
    assert tracked.spread == pytest.approx(float(np.std(per_frame)))
    assert tracked.accepted == tracked.seen == 24 and tracked.confidence == 1.0
    assert tracked.best_value == max(per_frame) and tracked.best_frame == int(np.argmax(per_frame))  # "largest"
    assert tracked.calibration == {"source": "user", "mm_per_px": [0.3, 0.3]}
    assert r.to_json()["tracked"]["HC"]["value"] == round(tracked.value, 3)


def test_too_few_values_are_withheld_and_freezing_holds_the_value():
    t = MeasurementTracker(window=6, min_accepted=3)
    ok = [Measurement("FL", 30.0 + i, "mm") for i in range(2)]
    bad = Measurement("FL", None, "mm", "a femur end point lies outside the image")
    state = t.update([ok[0]], 0)
    state = t.update([bad], 1)
    assert state["FL"].value is None and "1 of the last 2 frames" in state["FL"].withheld
    assert "outside the image" in state["FL"].withheld
    for i in range(2, 5):
        state = t.update([Measurement("FL", 30.0 + i, "mm")], i)
    # 30, withheld, 32, 33, 34
    assert state["FL"].value == 32.5 and state["FL"].accepted == 4 and state["FL"].confidence == pytest.approx(0.8)
    t.freeze()
    state = t.update([Measurement("FL", 99.0, "mm")], 5)             # ignored while frozen
    assert state["FL"].value == 32.5 and state["FL"].frozen
    t.unfreeze()
    assert t.update([Measurement("FL", 99.0, "mm")], 6)["FL"].value == 33.0   # median of 30, 32, 33, 34, 99
    with pytest.raises(ConfigError):
        MeasurementTracker(window=3, min_accepted=5)


def test_exam_gives_ga_and_efw_from_the_tracked_biometry():
    t = MeasurementTracker(window=5, min_accepted=1)
    t.update([Measurement("HC", 177.0, "mm"), Measurement("AC", 150.0, "mm"), Measurement("FL", 33.0, "mm")], 0)
    exam = {m.name: m for m in t.exam()}
    assert exam["GA"].value == pytest.approx(20.0) and exam["GA"].detail["text"] == "20w0d"
    assert 250 < exam["EFW"].value < 450 and exam["EFW"].detail["formula"] == "Hadlock 1985 HC-AC-FL"
    assert exam["EFW"].detail["centile"] is not None
    t2 = MeasurementTracker(window=5, min_accepted=1)
    t2.update([Measurement("HC", 177.0, "px")], 0)
    missing = {m.name: m for m in t2.exam()}
    assert missing["GA"].value is None and missing["EFW"].value is None and "AC" in missing["EFW"].withheld


def test_measurements_carry_their_calibration():
    r = next(truth_results(1))
    assert measure(r, None, ["HC"])[0].calibration == {"source": "none", "mm_per_px": None}
    assert Measurer(["HC"], mm_per_pixel=(0.2, 0.25))(r)[0].calibration["mm_per_px"] == [0.2, 0.25]


def test_the_stream_measures_every_frame_with_the_packaged_default():
    import usedge
    from usedge.stream import Stream
    from usedge.stream.sources import PhantomSource

    with Stream(PhantomSource(fps=1000.0, task="fetal_head", frames=12, seed=3), usedge.load(), "fetal_head",
                measure=Measurer(mm_per_pixel=0.3, min_accepted=3), mode="lossless") as s:
        results = list(s)
        summary = s.measurer.tracker.summary()
    assert len(results) == 12 and all(r.measurements for r in results)
    assert {m.name for m in results[-1].measurements} >= {"HC", "BPD", "OFD", "CI", "GA_HC"}
    assert all("measure" in r.timings_ms for r in results)
    hc = summary["HC"]
    assert hc.value is not None and hc.unit == "mm" and hc.accepted >= 3
    assert results[-1].to_json()["measurements"][0]["calibration"]["source"] == "user"
