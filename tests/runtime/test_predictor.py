"""The Predictor: frames of any kind -> typed results in original pixels; scan-region crops; batches; the same
answers on every backend; clear errors for bad frames; usedge.load's choices."""
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest

import usedge
from usedge.backends import available_backends
from usedge.data.frames import Frame, ScanRegion
from usedge.errors import ConfigError, DataError
from usedge.runtime.predictor import MAX_FRAME_PIXELS, choose
from usedge.runtime.results import ClassificationResult, DetectionResult, LandmarkResult, SegmentationResult

pytestmark = pytest.mark.skipif(not available_backends(), reason="needs OpenVINO or ONNX Runtime (usedge[cpu])")


@pytest.fixture(scope="module")
def predictor(bundle_dir):
    with usedge.load(bundle_dir) as p:
        yield p


def test_load_says_what_it_picked_and_results_are_typed_in_frame_pixels(predictor, phantom_frames):
    assert predictor.choice.backend in available_backends() and predictor.precision == "fp32"
    assert "fastest at export" in predictor.choice.reason   # the bundle's own side-by-side latency
    image = phantom_frames[0][0]
    h, w = image.shape[:2]
    r = predictor(image)
    kinds = {t: type(v) for t, v in r.tasks.items()}
    assert kinds == {"fetal_head": SegmentationResult, "cardiac_multi": SegmentationResult,
                     "organ_cls": ClassificationResult, "thyroid_nodule_det": DetectionResult,
                     "FUGC": LandmarkResult}
    assert r["fetal_head"].mask.shape == (h, w) and r["cardiac_multi"].mask.max() <= 3
    assert abs(r["organ_cls"].probs.sum() - 1) < 1e-6 and r["organ_cls"].label in r["organ_cls"].class_names
    box = r["thyroid_nodule_det"].box
    assert 0 <= box[0] <= box[2] <= w and 0 <= box[1] <= box[3] <= h
    assert r["FUGC"].points.shape == (2, 2)
    assert set(r.timings_ms) >= {"preprocess", "infer", "postprocess", "total"}
    doc = json.loads(json.dumps(r.to_json()))  # JSON-serialisable, challenge field names
    assert doc["tasks"]["organ_cls"]["predicted_class"] == r["organ_cls"].predicted_class
    assert len(doc["tasks"]["FUGC"]["predicted_points_pixels"]) == 4
    assert doc["tasks"]["thyroid_nodule_det"]["bbox_normalized"][2] == pytest.approx(box[2] / w)


def test_any_stored_frame_kind_is_accepted(predictor, phantom_frames):
    grey = phantom_frames[0][0]
    grey = grey if grey.ndim == 2 else grey[..., 0]
    variants = [grey, grey[..., None], np.dstack([grey] * 3), np.dstack([grey] * 3 + [np.full_like(grey, 255)]),
                grey.astype(np.uint16) * 257]
    ref = predictor(grey)
    for v in variants:
        r = predictor(v)
        assert r["organ_cls"].predicted_class == ref["organ_cls"].predicted_class
        np.testing.assert_allclose(r["organ_cls"].probs, ref["organ_cls"].probs, atol=1e-4)


def test_scan_region_crop_maps_back_to_frame_pixels(predictor, phantom_frames):
    image = phantom_frames[0][0]
    h, w = image.shape[:2]
    big = np.zeros((h + 40, w + 60) + image.shape[2:], image.dtype)
    big[30:30 + h, 50:50 + w] = image       # the scan picture inside a larger screen grab
    region = ScanRegion(50, 30, 50 + w, 30 + h)
    inside = predictor(image)
    r = predictor(Frame(big, 0, 0.0, "test", region=region))
    assert r.region == (50, 30, 50 + w, 30 + h)
    assert r["fetal_head"].mask.shape == big.shape[:2]
    assert r["fetal_head"].mask[:30].sum() == 0 and r["fetal_head"].mask[:, :50].sum() == 0
    np.testing.assert_array_equal(r["fetal_head"].mask[30:30 + h, 50:50 + w], inside["fetal_head"].mask)
    np.testing.assert_allclose(r["FUGC"].points, inside["FUGC"].points + [50, 30], atol=1e-6)
    np.testing.assert_allclose(r["thyroid_nodule_det"].box, inside["thyroid_nodule_det"].box + [50, 30, 50, 30],
                               atol=1e-6)
    assert predictor(big, region=(50, 30, 50 + w, 30 + h))["organ_cls"].predicted_class == \
        inside["organ_cls"].predicted_class
    with pytest.raises(DataError, match="empty"):
        predictor(big, region=(0, 0, 1, 1))


def test_batch_equals_single_frames_and_tasks_can_be_selected(predictor, phantom_frames):
    images = [im for im, _ in phantom_frames]
    batch = predictor.predict_batch(images, tasks=["organ_cls", "FUGC"])
    assert [set(r.tasks) for r in batch] == [{"organ_cls", "FUGC"}] * len(images)
    for im, r in zip(images, batch):
        single = predictor(im, tasks="organ_cls,FUGC")
        np.testing.assert_allclose(r["FUGC"].points, single["FUGC"].points, atol=1e-3)
    with pytest.raises(ConfigError, match="not in this model"):
        predictor(images[0], tasks=["thyroid_nodule_seg"])


def test_bad_frames_get_clear_errors_and_the_predictor_keeps_working(predictor, phantom_frames):
    bad = {
        "NaN": np.full((32, 32), np.nan, np.float32),
        "uint8 or uint16": np.zeros((32, 32), np.float32),
        "dtype int32": np.zeros((32, 32), np.int32),
        "empty": np.zeros((0, 10), np.uint8),
        "expected H×W grey": np.zeros((32, 32, 2), np.uint8),
        "MP limit": np.broadcast_to(np.uint8(0), (8193, 8193)),
        "numpy array": "frame.png",
        r"frame shape \(1024,\) is 1-D": np.zeros(1024, np.uint8),     # was "frame is empty"
    }
    assert 8193 * 8193 > MAX_FRAME_PIXELS
    for message, frame in bad.items():
        with pytest.raises(DataError, match=message):
            predictor(frame)
    assert predictor(phantom_frames[0][0])["organ_cls"].probs.shape == (6,)


def test_big_endian_uint16_frames_read_as_their_values(predictor, phantom_frames):
    """Raw dumps are often big-endian: same pixel values, same answer (was refused as 'not supported')."""
    image = phantom_frames[0][0].astype(np.uint16) * 257
    native = predictor(image)
    swapped = predictor(image.astype(">u2"))
    assert swapped["organ_cls"].predicted_class == native["organ_cls"].predicted_class
    assert np.array_equal(swapped["fetal_head"].mask, native["fetal_head"].mask)


def test_every_backend_gives_the_same_answers(bundle_dir, phantom_frames):
    pytest.importorskip("torch")
    names = available_backends() + ["torch"]
    images = [im for im, _ in phantom_frames]
    runs = {}
    for n in names:
        with usedge.load(bundle_dir, backend=n) as p:
            runs[n] = p.predict_batch(images)
    ref = runs["torch"]
    for name, results in runs.items():
        for a, b in zip(ref, results):
            assert a["organ_cls"].predicted_class == b["organ_cls"].predicted_class, name
            for t in ("fetal_head", "cardiac_multi"):
                agree = (a[t].mask == b[t].mask).mean()
                assert agree > 0.995, (name, t, agree)
            assert np.abs(a["FUGC"].points - b["FUGC"].points).max() < 0.5, name
            assert np.abs(a["thyroid_nodule_det"].box - b["thyroid_nodule_det"].box).max() < 0.5, name


def _fake_bundle(int8: bool, passed: bool):
    precisions = ["fp32", "int8"] if int8 else ["fp32"]
    return SimpleNamespace(precisions=precisions, meta=SimpleNamespace(int8_gate_passed=int8 and passed, latency={}),
                           path="/nonexistent")


@pytest.fixture
def vnni_cpu(monkeypatch):
    """This CPU as one with VNNI, whatever it is (choose() reads usedge._cpu)."""
    import usedge._cpu as cpu

    fake = cpu.CpuIsa("test CPU", "x86_64", "avx512_vnni", True, "avx512_vnni")
    monkeypatch.setattr(cpu, "cpu_isa", lambda: fake)
    monkeypatch.setattr(cpu, "isa_for", lambda backend: fake)
    return fake


def test_choose_prefers_gated_int8_on_openvino_and_fp32_on_onnxruntime(vnni_cpu):
    if "openvino" in available_backends():
        assert choose(_fake_bundle(True, True)).precision == "int8"
        slow = _fake_bundle(True, True)
        slow.meta.latency = {"fp32": {"openvino": {"p50_ms": 2.0}}, "int8": {"openvino": {"p50_ms": 2.5}}}
        c = choose(slow, backend="openvino")
        assert c.precision == "fp32" and "measured slower" in c.reason
        c = choose(_fake_bundle(True, False))
        assert c.precision == "fp32" and "failed the accuracy gate" in c.reason
    if "onnxruntime" in available_backends():
        c = choose(_fake_bundle(True, True), backend="onnxruntime")
        assert c.precision == "fp32" and "slower" in c.reason
    if set(available_backends()) >= {"openvino", "onnxruntime"}:
        timed = _fake_bundle(True, True)
        timed.meta.latency = {"fp32": {"openvino": {"p50_ms": 5.3}, "onnxruntime": {"p50_ms": 3.4}},
                              "int8": {"openvino": {"p50_ms": 5.6}, "onnxruntime": {"p50_ms": 6.4}}}
        c = choose(timed)
        assert (c.backend, c.precision) == ("onnxruntime", "fp32") and "fastest at export" in c.reason
        timed.meta.int8_gate_passed = False
        timed.meta.latency["int8"]["openvino"]["p50_ms"] = 1.0            # fast but failed the gate
        assert choose(timed).precision == "fp32"
    with pytest.raises(ConfigError, match="auto or one of"):
        choose(_fake_bundle(False, False), backend="coreml")
    with pytest.raises(ConfigError, match="only int8"):
        only = _fake_bundle(True, True)
        only.precisions = ["int8"]
        choose(only, backend="openvino", refused={"openvino": "its int8 check fails"})
    with pytest.raises(ConfigError, match="precision"):
        choose(_fake_bundle(False, False), precision="int4")


def test_eval_on_a_bundle_goes_through_the_predictor_and_matches_the_bare_path(bundle_dir, predictor, tmp_path):
    from click.testing import CliRunner

    from usedge.cli.main import cli
    from usedge.data.fmcuia import load_split
    from usedge.metrics.scoring import evaluate_predictor
    from usedge.runtime.evaluate import evaluate_with_predictor

    samples = load_split(bundle_dir.parent / "data", "val", list(predictor.model_tasks))
    via_predictor = evaluate_with_predictor(predictor, samples).results()
    bare = evaluate_predictor(lambda x, t: predictor.backend.infer(x), predictor.spec, samples,
                              list(predictor.model_tasks)).results()
    assert set(via_predictor) == set(bare) == set(predictor.model_tasks)
    for t in bare:
        for metric, value in bare[t].items():
            assert via_predictor[t][metric] == pytest.approx(value, abs=1e-6, nan_ok=True), (t, metric)
    res = CliRunner().invoke(cli, ["eval", "--data", str(bundle_dir.parent / "data"), "--bundle", str(bundle_dir),
                                    "--backend", "onnxruntime" if "onnxruntime" in available_backends()
                                    else "openvino", "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    assert "bundle on" in res.output and (tmp_path / "ev" / "eval.json").is_file()
    assert (tmp_path / "ev" / "classification_predictions.json").is_file()


def test_verify_runs_one_frame_through_the_predictor(bundle_dir, tmp_path):
    """Metadata that passes checksums and parity but cannot serve a frame (preprocess size 32 for a 64² model)
    fails `usedge verify`, which says which precision × backend failed and why."""
    import json
    import shutil

    from usedge.runtime.verify import verify_bundle

    good = verify_bundle(bundle_dir)
    assert good["passed"] and all(r["ok"] and r["tasks"] == 5 for by in good["frame"].values() for r in by.values())
    bad = tmp_path / "bad"
    shutil.copytree(bundle_dir, bad)
    meta = json.loads((bad / "metadata.json").read_text())
    meta["input"]["preprocess"]["size"] = 32
    (bad / "metadata.json").write_text(json.dumps(meta))
    result = verify_bundle(bad)
    assert not result["passed"]
    errors = [r["error"] for by in result["frame"].values() for r in by.values()]
    assert errors and all("64" in e and "32" in e for e in errors)


def test_masks_decode_on_first_read_and_equal_eager_decoding(bundle_dir, phantom_frames):
    """Deferred masks are the same masks, decoded from a private copy of the logits: reading the first frame's
    masks after a second frame went through the backend still gives the first frame's answer."""
    import usedge

    frames = [im for im, _ in phantom_frames[:2]]
    region = (3, 2, frames[0].shape[1] - 4, frames[0].shape[0] - 1)
    lazy = usedge.load(bundle_dir)
    eager = usedge.load(bundle_dir)
    eager.lazy_masks = False
    try:
        first = lazy.predict(frames[0], region=region)
        seg = [t for t, r in first.tasks.items() if hasattr(r, "decoded")]
        assert seg and not any(first[t].decoded for t in seg)
        lazy.predict(frames[1])                       # the backend runs again before the masks are read
        want = eager.predict(frames[0], region=region)
        for t in seg:
            np.testing.assert_array_equal(first[t].mask, want[t].mask)
            assert first[t].decoded and first[t].mask is first[t].mask     # decoded once, then kept
    finally:
        lazy.close()
        eager.close()


@pytest.mark.parametrize("backend", available_backends())
def test_one_predictor_shared_by_threads_answers_each_frame_as_alone(bundle_dir, phantom_frames, backend):
    """Issue 26, class 4: one Predictor called from several threads (a server pool, a UI and a stream) gives each
    frame the answer it gets alone, on every backend, with no "busy" errors."""
    from concurrent.futures import ThreadPoolExecutor

    frames = [image for image, _ in phantom_frames]
    with usedge.load(bundle_dir, backend=backend) as p:
        alone = [p(f)["organ_cls"].probs for f in frames]
        with ThreadPoolExecutor(3) as pool:
            shared = list(pool.map(lambda i: (i, p(frames[i % len(frames)])["organ_cls"].probs), range(60)))
    wrong = [i for i, probs in shared if not np.allclose(probs, alone[i % len(frames)], atol=1e-6)]
    assert not wrong, f"{len(wrong)} of 60 concurrent frames got another frame's answer"


def test_load_tasks_restricts_what_every_call_returns(bundle_dir, phantom_frames):
    """Issue 26, class 3: usedge.load(tasks=[...]) was ignored (every task came back)."""
    image = phantom_frames[0][0]
    with usedge.load(bundle_dir, tasks=["organ_cls", "FUGC"]) as p:
        assert p.tasks == ("organ_cls", "FUGC") and set(p(image).tasks) == {"organ_cls", "FUGC"}
        assert set(p(image, tasks="fetal_head").tasks) == {"fetal_head"}        # a call may still choose
        assert set(p(image, tasks="all").tasks) == set(p.model_tasks)
        for bad in (5, ["organ_cls", 3], "organ_cls,,FUGC"):
            with pytest.raises(ConfigError, match="task"):
                p(image, tasks=bad)
    with pytest.raises(ConfigError, match="task names"):
        usedge.load(bundle_dir, tasks=5)


def _edited_copy(bundle_dir, tmp_path, edit):
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(bundle_dir, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    edit(meta)
    (copy / "metadata.json").write_text(json.dumps(meta))
    return copy


def test_a_bundle_whose_model_and_metadata_disagree_fails_at_load_not_per_frame(bundle_dir, tmp_path):
    """Issue 26, classes 6 and 8: outputs the ONNX lacks loaded and then raised a bare KeyError per frame; a
    preprocess size the ONNX does not take failed per frame; std 0 blamed the frame source."""
    ghost = _edited_copy(bundle_dir, tmp_path / "a", lambda m: m["outputs"].append({"name": "ghost.logits"}))
    with pytest.raises(DataError, match="lacks 1 output.*ghost.logits"):
        usedge.load(ghost)

    def size(m):
        m["input"]["preprocess"]["size"] = 96
        m["input"]["shape"][2:] = [96, 96]
    with pytest.raises(DataError, match="takes 64×64 images, but the metadata's preprocess size is 96"):
        usedge.load(_edited_copy(bundle_dir, tmp_path / "b", size))
    zero = _edited_copy(bundle_dir, tmp_path / "c", lambda m: m["input"]["preprocess"].update(std=[0.2, 0.0, 0.2]))
    with pytest.raises(DataError, match="std .* has a value <= 0"):
        usedge.load(zero)


def test_a_region_of_infinities_is_a_clear_error(predictor, phantom_frames):
    """Issue 26, class 6: region=(0, 0, inf, 100) raised a bare OverflowError."""
    for region in ((0, 0, float("inf"), 100), (0, 0, float("nan"), 100)):
        with pytest.raises(DataError, match="is not \\(x0, y0, x1, y1\\)"):
            predictor(phantom_frames[0][0], region=region)


def test_decode_all_decodes_every_deferred_mask_once():
    from usedge.runtime.results import FrameResult, SegmentationResult

    calls = []

    def decode():
        calls.append(1)
        return np.ones((4, 4), np.uint8)

    r = FrameResult(4, 4, {"a": SegmentationResult("a", decode=decode, class_names=("bg", "x")),
                           "b": SegmentationResult("b", np.zeros((4, 4), np.uint8), ("bg", "x"))})
    assert not r["a"].decoded and r.decode_all() is r and r["a"].decoded and len(calls) == 1
    r.decode_all()
    assert len(calls) == 1 and r["a"].areas == {"x": 16}


def test_a_crop_is_padded_to_the_training_images_shape_and_maps_back(bundle_dir, phantom_frames):
    image = phantom_frames[0][0]
    h, w = image.shape[:2]
    tall = image[:, w // 4: w // 4 + w // 2]               # a linear probe's tall rectangle
    ch, cw = tall.shape[:2]
    big = np.zeros((h + 40, w + 60) + image.shape[2:], image.dtype)
    big[30:30 + ch, 50:50 + cw] = tall
    box = (50, 30, 50 + cw, 30 + ch)
    with usedge.load(bundle_dir) as p:
        assert p.framing.aspect == 1.0                      # fitted at export on the phantom's square images
        canvas, (px, py) = p.framing.pad(tall)
        assert canvas.shape[:2] == (ch, ch) and (px, py) == ((ch - cw) // 2, 0)
        r, alone = p(big, region=box), p(canvas)
        stretched = dataclasses.replace(p.framing, aspect=None)
        p.framing = stretched
        plain = p(big, region=box)
    mask = r["fetal_head"].mask
    assert mask.shape == big.shape[:2] and mask[:30].sum() == 0 and mask[:, :50].sum() == 0 and mask[:, 50 + cw:].sum() == 0
    np.testing.assert_array_equal(mask[30:30 + ch, 50:50 + cw], alone["fetal_head"].mask[:, px:px + cw])
    np.testing.assert_allclose(r["FUGC"].points, alone["FUGC"].points + [50 - px, 30], atol=1e-6)
    np.testing.assert_allclose(r["thyroid_nodule_det"].box, alone["thyroid_nodule_det"].box + [50 - px, 30] * 2, atol=1e-6)
    np.testing.assert_allclose(r["organ_cls"].probs, alone["organ_cls"].probs, atol=1e-6)
    assert not np.allclose(plain["organ_cls"].probs, r["organ_cls"].probs, atol=1e-4)   # stretched: another input
