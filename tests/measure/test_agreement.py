"""Agreement of measurements: Bland-Altman statistics on pairs of known difference, withheld answers counted and
not scored, and ``usedge eval --measure`` on a phantom set with its recorded scale."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from usedge.measure.agreement import AgreementCollector, bland_altman_png, to_markdown
from usedge.runtime.results import FrameResult, LandmarkResult, SegmentationResult

W = H = 200


def femur(length_px: float) -> FrameResult:
    pts = np.array([[50.0, 100.0], [50.0 + length_px, 100.0]])
    return FrameResult(W, H, {"fetal_femur": LandmarkResult("fetal_femur", pts, ("a", "b"), W, H)})


def test_bland_altman_statistics_of_known_differences(tmp_path):
    c = AgreementCollector(0.5, names=["FL"])
    diffs = [2.0, -2.0, 4.0, 0.0]                     # px; at 0.5 mm per px: +1, -1, +2, 0 mm
    for i, d in enumerate(diffs):
        c.add(femur(60 + i), femur(60 + i + d))
    c.add(femur(60), femur(500))                       # the prediction's end point is outside: withheld
    (fl,) = c.results()
    mm = np.array(diffs) * 0.5
    assert fl.unit == "mm" and fl.images == 5 and fl.scored == 4 and fl.withheld == 1
    assert fl.mae == pytest.approx(np.abs(mm).mean()) and fl.bias == pytest.approx(mm.mean())
    sd = mm.std(ddof=1)
    assert fl.loa == pytest.approx((mm.mean() - 1.96 * sd, mm.mean() + 1.96 * sd))
    assert fl.withheld_fraction == pytest.approx(0.2) and "outside the image" in next(iter(fl.reasons))
    assert "| FL | mm | mask | 5 | 4 | 1 (20%) |" in to_markdown([fl])
    png = bland_altman_png(fl, tmp_path / "FL.png")
    assert cv2.imread(str(png)) is not None


def test_truth_that_cannot_be_measured_is_not_scored():
    empty = FrameResult(W, H, {"fetal_head": SegmentationResult("fetal_head", np.zeros((H, W), np.uint8))})
    c = AgreementCollector(None, names=["HC"])
    c.add(empty, empty)
    (hc,) = c.results()
    assert hc.truth_withheld == 1 and hc.scored == 0 and hc.mae is None and hc.withheld_fraction == 0.0


def test_eval_measure_writes_agreement_with_the_phantom_scale(tmp_path):
    from usedge.assets import shipped_bundle
    from usedge.cli.main import cli
    from usedge.data.phantom import generate_dataset

    data = tmp_path / "ph"
    generate_dataset(data, per_task=1, seed=4100, tasks=["fetal_head", "FUGC"], val_per_task=4, progress=False)
    out = tmp_path / "ev"
    res = CliRunner().invoke(cli, ["eval", "--bundle", str(shipped_bundle()), "--data", str(data), "--measure",
                                   "--tasks", "fetal_head,FUGC", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "each image's recorded phantom scale" in res.output
    rows = {r["name"]: r for r in json.loads((out / "measure" / "measure.json").read_text())}
    assert rows["HC"]["unit"] == "mm" and rows["HC"]["images"] == 4 and rows["CL"]["unit"] == "mm"
    assert rows["HC"]["truth"] == rows["CL"]["truth"] == "geometry" and rows["GA_HC"]["truth"] == "mask"
    assert (out / "measure" / "bland-altman" / "HC.png").is_file()


def test_the_exact_truth_replaces_the_measurement_of_the_true_masks():
    c = AgreementCollector(0.5, names=["FL"])
    c.add(femur(60), femur(62), exact={"FL": 30.0})            # truth 30 mm exactly; prediction 62 px = 31 mm
    (fl,) = c.results()
    assert fl.truth_source == "geometry" and fl.truth == (30.0,) and fl.bias == pytest.approx(1.0)


def test_phantom_images_carry_the_exact_measurements_of_their_geometry():
    """The generator's own numbers: the head polygon's perimeter is Ramanujan's of its axes, the true masks measure
    within a pixel's worth of them, and the set records them in mm."""
    from usedge.data.phantom import generate_sample, sample_rng
    from usedge.data.phantom.generator import image_truth
    from usedge.measure import measure
    from usedge.measure.ellipse import ramanujan_perimeter

    s = generate_sample("fetal_head", sample_rng(11, "val", "fetal_head", 0))
    t = {k: v for k, (v, _) in s.meta["truth_px"].items()}
    assert t["HC"] == pytest.approx(ramanujan_perimeter(t["OFD"] / 2, t["BPD"] / 2), rel=1e-4)
    mask = np.asarray(s.label, np.uint8)
    hc = measure(FrameResult(mask.shape[1], mask.shape[0], {"fetal_head": SegmentationResult("fetal_head", mask)}),
                 None, ["HC"])[0]
    assert hc.value == pytest.approx(t["HC"], rel=0.015)
    rec = image_truth(s.meta)
    assert rec["truth"]["HC"] == pytest.approx(t["HC"] * rec["mm_per_px"], rel=1e-4)
    iugc = generate_sample("IUGC", sample_rng(11, "val", "IUGC", 0))
    assert iugc.meta["truth_px"]["AoP"][1] == "angle" and 60 < iugc.meta["truth_px"]["AoP"][0] < 180
