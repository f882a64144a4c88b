"""The frame gate: the packaged default's fitted gate on frames it must refuse and on its own phantom, the
bundle format's pieces (k-NN distance, int8 bank), the image-quality checks, the frozen-screen check, a bundle
without statistics, and refitting a bundle (usedge gate-fit)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from usedge.bundle.frame_gate import GateThresholds, knn_distance, pack_bank, unit_segments, unpack_bank
from usedge.data.quality import FrozenCheck, quality_scores


@pytest.fixture(scope="module")
def default():
    import usedge

    with usedge.load() as p:
        yield p


def phantom_image(task: str, index: int = 0) -> np.ndarray:
    from usedge.data.phantom import generate_sample, sample_rng
    from usedge.data.phantom.generator import PhantomConfig

    return generate_sample(task, sample_rng(4242, "val", task, index), PhantomConfig(size=128)).image


def image_folder(folder, images):
    """A folder of PNG frames, in order (a stream source)."""
    folder.mkdir()
    for i, im in enumerate(images):
        cv2.imwrite(str(folder / f"{i:02d}.png"), im)
    return folder


def test_the_default_rejects_blank_saturated_and_noise_frames_with_reasons(default):
    rng = np.random.default_rng(0)
    assert default.gate.ood_available and default.gate.thresholds.ood > 0
    for frame, why in ((np.zeros((480, 640), np.uint8), "blank"), (np.full((480, 640), 255, np.uint8), "saturated"),
                       (rng.integers(0, 256, (480, 640), dtype=np.uint8), "not like the training data")):
        r = default(frame)
        assert not r.accepted and any(why in x for x in r.gate.reasons), r.gate.reasons
        js = r.to_json()["gate"]
        assert js["accepted"] is False and js["reasons"] and js["thresholds"]["ood"] == pytest.approx(
            default.gate.thresholds.ood, rel=1e-3)


def test_the_default_accepts_its_own_phantom(default):
    tasks = ("fetal_head", "thyroid_nodule", "cardiac_multi", "organ_cls", "FUGC", "breast_lesion")
    results = [default(phantom_image(t, i)) for t in tasks for i in range(2)]
    accepted = [r.accepted for r in results]
    assert sum(accepted) >= len(accepted) - 1, [r.gate.reasons for r in results]
    assert all(r.gate.scores["ood"] < 2 * default.gate.thresholds.ood for r in results)


def test_a_colour_overlay_is_rejected_and_overrides_apply(default):
    image = cv2.cvtColor(phantom_image("carotid_artery"), cv2.COLOR_GRAY2BGR)
    image[30:90, 30:90] = (0, 0, 200)          # a red colour-Doppler box over a quarter of the image
    r = default(image)
    assert not r.accepted and any("colour overlay" in x for x in r.gate.reasons)
    relaxed = default.gate.with_thresholds(max_colour=0.9, ood=1e6)
    assert relaxed.judge(cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)).accepted
    with pytest.raises(Exception, match="unknown gate threshold"):
        default.gate.with_thresholds(bogus=1.0)


def test_gate_off_and_bad_gate_option():
    import usedge
    from usedge.errors import ConfigError

    with usedge.load(gate=False) as p:
        r = p(np.zeros((64, 64), np.uint8))
        assert r.gate is None and r.accepted and "gate" not in r.to_json()
    with pytest.raises(ConfigError, match="gate must be"):
        usedge.load(gate="yes")


def test_knn_distance_and_the_int8_bank():
    rng = np.random.default_rng(1)
    segments = [(0, 8), (8, 40)]
    bank = unit_segments(rng.random((50, 40)), segments)
    assert np.allclose(np.linalg.norm(bank[:, 8:40], axis=1), 1, atol=1e-5)
    d = knn_distance(bank, bank[:3] * 7.0, 1, segments)          # scale-free, nearest is itself
    assert np.allclose(d, 0, atol=1e-5)
    far = knn_distance(bank, -bank[:3], 1, segments)
    assert (far > 1).all()
    scaled = knn_distance(bank, -bank[:3], 1, segments, scales=[2.0, 2.0])
    assert np.allclose(scaled, far / 2, rtol=1e-5)
    unpacked = unpack_bank(pack_bank(bank, segments), segments)
    assert np.abs(unpacked @ bank.T - bank @ bank.T).max() < 0.02


def test_quality_scores_and_the_frozen_check():
    flat = quality_scores(np.full((128, 128), 90, np.uint8))
    assert flat["std"] == 0 and flat["texture"] == 0 and flat["colour"] == 0
    speckle = quality_scores(phantom_image("liver_lesion_2cls"))
    assert speckle["texture"] > 0.3 and speckle["std"] > 10
    check = FrozenCheck(frames=3)
    still = phantom_image("lung")
    assert [check(still) for _ in range(5)] == [False, False, False, True, True]
    assert not check(phantom_image("lung", 1)) and check.repeats == 0


def test_a_bundle_without_statistics_runs_the_quality_checks_and_says_why(bundle_dir):
    import usedge

    meta = json.loads((bundle_dir / "metadata.json").read_text())
    assert "unavailable" in meta["frame_gate"]            # 4 images per task: too few to fit at 1 %
    with usedge.load(bundle_dir) as p:
        assert not p.gate.ood_available and "no distance check" in p.gate.note
        r = p(np.zeros((96, 96), np.uint8))
        assert not r.accepted and r.gate.to_json()["ood_available"] is False and "ood" not in r.gate.scores


def test_refitting_a_bundle_adds_the_embedding_and_thresholds(bundle_dir, tmp_path):
    pytest.importorskip("onnx")
    import onnx

    import usedge
    from usedge.export.frame_gate import refit_bundle
    from usedge.tasks import EMBEDDING_OUTPUT

    out = refit_bundle(bundle_dir, bundle_dir.parent / "data", tmp_path / "gated", frr=0.2, k=3)
    meta = json.loads((out / "metadata.json").read_text())["frame_gate"]
    graph = onnx.load(str(out / "model.fp32.onnx")).graph
    assert EMBEDDING_OUTPUT in [o.name for o in graph.output]
    assert len(meta["segments"]) >= 3 and meta["ood"]["fp32"]["rejected"] <= 0.25
    with usedge.load(out) as p:
        assert p.gate.ood_available and p.gate.thresholds.ood == pytest.approx(meta["ood"]["fp32"]["threshold"])
        emb = p.backend.infer(np.zeros((1, 3, 64, 64), np.float32))[EMBEDDING_OUTPUT]
        assert emb.shape == (1, meta["segments"][-1][1])


def test_gate_thresholds_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        GateThresholds().ood = 1.0


def test_the_default_calibrates_classification_with_its_fitted_temperatures(default):
    import usedge

    meta = default.metadata["frame_gate"]["temperature"][default.precision]
    fitted = {t: r["temperature"] for t, r in meta.items()}
    assert default.temperatures == pytest.approx(fitted) and any(t != 1.0 for t in fitted.values())
    task = next(t for t, v in fitted.items() if v != 1.0)
    image = phantom_image(task)
    calibrated = default(image, tasks=[task])[task]
    assert calibrated.temperature == pytest.approx(fitted[task]) and calibrated.to_json()["temperature"]
    with usedge.load(calibrate=False) as raw:
        plain = raw(image, tasks=[task])[task]
    assert plain.temperature == 1.0 and plain.predicted_class == calibrated.predicted_class
    assert not np.allclose(plain.probs, calibrated.probs)


def test_eval_writes_the_gate_rates_and_the_risk_coverage_report(tmp_path):
    from click.testing import CliRunner

    from usedge.assets import shipped_bundle
    from usedge.cli.main import cli
    from usedge.data.phantom import generate_dataset
    from usedge.tasks import parse_tasks

    generate_dataset(tmp_path / "d", per_task=1, seed=77, size=128, tasks=parse_tasks("fetal_head,organ_cls"),
                     progress=False, val_per_task=12)
    res = CliRunner().invoke(cli, ["eval", "--bundle", str(shipped_bundle()), "--data", str(tmp_path / "d"),
                                   "--tasks", "fetal_head,organ_cls", "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    gate = json.loads((tmp_path / "ev" / "gate.json").read_text())
    assert gate["images"] == 24 and gate["distance_check"] and set(gate["tasks"]) == {"fetal_head", "organ_cls"}
    selective = json.loads((tmp_path / "ev" / "selective.json").read_text())
    assert {"segmentation", "classification"} <= set(selective) and 0 < selective["segmentation"]["area"] <= 1
    assert (tmp_path / "ev" / "selective.png").stat().st_size > 1000 and "risk-coverage area" in res.output


def test_masks_carry_a_confidence(default):
    r = default(phantom_image("fetal_head"), tasks=["fetal_head"])
    conf = r["fetal_head"].confidence
    assert 0.5 < conf <= 1.0 and r.to_json()["tasks"]["fetal_head"]["confidence"] == pytest.approx(conf, abs=1e-4)
    blank = default(np.zeros((128, 128), np.uint8), tasks=["fetal_head"])["fetal_head"]
    assert blank.confidence is None or np.isnan(blank.confidence) or blank.confidence <= 1.0


def test_a_stream_counts_rejected_frames_and_does_not_measure_them(tmp_path):
    import usedge
    from usedge.measure import Measurer
    from usedge.stream import Stream

    good = phantom_image("fetal_head")
    folder = image_folder(tmp_path / "frames", [good] * 3 + [np.zeros_like(good)] * 2)
    with usedge.load() as p:
        s = Stream(str(folder), p, ["fetal_head"], measure=Measurer(mm_per_pixel=0.2), warmup=0)
        results = list(s)
    assert [r.accepted for r in results] == [True, True, True, False, False]
    assert s.tracker.counts["rejected"] == 2
    rejected = results[-1]
    assert rejected.measurements and all(m.value is None and "frame rejected" in m.withheld for m in rejected.measurements)
    assert not any((m.withheld or "").startswith("frame rejected") for m in results[0].measurements)
    assert {k: v.to_json() for k, v in rejected.tracked.items()} == {k: v.to_json() for k, v in results[2].tracked.items()}


def test_a_frozen_screen_is_rejected_on_a_stream(tmp_path):
    import usedge
    from usedge.stream import Stream

    folder = image_folder(tmp_path / "frozen", [phantom_image("thyroid_nodule")] * 8)
    with usedge.load() as p:
        results = list(Stream(str(folder), p, ["thyroid_nodule"], warmup=0))
    frozen = [any("frozen" in x for x in r.gate.reasons) for r in results]
    assert frozen == [False] * 5 + [True] * 3, [r.gate.reasons for r in results]


def test_the_torch_backend_gives_the_same_embedding_as_the_graph(tmp_path):
    pytest.importorskip("torch")
    import shutil

    from usedge.assets import default_checkpoint, shipped_bundle
    from usedge.backends import open_backend
    from usedge.tasks import EMBEDDING_OUTPUT

    bundle = tmp_path / "b"
    shutil.copytree(shipped_bundle(), bundle)
    shutil.copytree(default_checkpoint(), bundle / "torch")      # the weights the graphs were exported from
    x = np.random.default_rng(0).standard_normal((2, 3, 128, 128)).astype(np.float32)
    with open_backend("torch", bundle) as t, open_backend("onnxruntime", bundle / "model.fp32.onnx") as o:
        a, b = t.infer(x), o.infer(x)
    assert set(a) == set(b) and EMBEDDING_OUTPUT in a
    np.testing.assert_allclose(a[EMBEDDING_OUTPUT], b[EMBEDDING_OUTPUT], atol=1e-4, rtol=1e-4)
