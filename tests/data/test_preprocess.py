"""The declared processing spec: usedge's own (area resize, logit upsampling) and the official baseline's
(bilinear resize; argmax at the input size, then nearest), reproduced step for step from its docker/model.py."""
import json

import cv2
import numpy as np
import pytest

from usedge.data.decode import segmentation_map
from usedge.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, Framing, PreprocessSpec, preprocess
from usedge.errors import ConfigError

BASELINE = PreprocessSpec(size=256, resize="bilinear", seg_decode="argmax-nearest")


def _ultrasound_like(h=480, w=640, seed=0):
    """A BGR uint8 frame with fine speckle, where the choice of interpolation changes the resized pixels."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 6)
    speckle = rng.rayleigh(40, (h, w))
    grey = np.clip(base * 0.6 + speckle, 0, 255).astype(np.uint8)
    return cv2.merge([grey, grey, np.clip(grey.astype(int) + 7, 0, 255).astype(np.uint8)])


def _baseline_input(bgr):
    """The baseline's inference transform: cv2.imread (BGR) -> RGB -> A.Resize(256, 256) (cv2.INTER_LINEAR)
    -> A.Normalize (float32, (x - mean*255) / (std*255)) -> ToTensorV2 (HWC -> CHW)."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_LINEAR)
    mean = np.asarray(IMAGENET_MEAN, np.float32) * 255
    std = np.asarray(IMAGENET_STD, np.float32) * 255
    return ((resized.astype(np.float32) - mean) * np.reciprocal(std)).transpose(2, 0, 1)


def test_baseline_resize_reproduces_the_baseline_input():
    bgr = _ultrasound_like()
    ours = preprocess(bgr, BASELINE)
    assert ours.shape == (3, 256, 256) and ours.dtype == np.float32
    assert np.abs(ours - _baseline_input(bgr)).max() < 1e-5
    # usedge's own "area" resize is a different input for the same frame (why the spec must be declared)
    assert np.abs(preprocess(bgr, PreprocessSpec(size=256)) - _baseline_input(bgr)).max() > 0.2


def test_baseline_segmentation_decode_is_argmax_then_nearest():
    rng = np.random.default_rng(1)
    logits = cv2.GaussianBlur(rng.normal(0, 1, (256, 256, 4)).astype(np.float32), (0, 0), 3).transpose(2, 0, 1)
    want = cv2.resize(np.argmax(logits, axis=0).astype(np.uint8), (640, 480), interpolation=cv2.INTER_NEAREST)
    got = segmentation_map(np.ascontiguousarray(logits), 640, 480, "argmax-nearest")
    np.testing.assert_array_equal(got, want)
    # logit upsampling (usedge's default) gives a different mask on class borders
    assert (segmentation_map(np.ascontiguousarray(logits), 640, 480, "logits") != want).sum() > 100


def test_presets_declare_their_processing():
    from usedge.models.presets import resolve_config

    baseline = PreprocessSpec.from_config(resolve_config("baseline-b4"))
    assert (baseline.size, baseline.resize, baseline.seg_decode) == (256, "bilinear", "argmax-nearest")
    student = PreprocessSpec.from_config(resolve_config("student-s"))
    assert (student.resize, student.seg_decode) == ("area", "logits")


def test_spec_round_trips_reads_old_bundles_and_refuses_unknown_modes():
    assert PreprocessSpec.from_dict(json.loads(json.dumps(BASELINE.to_dict()))) == BASELINE
    old = {"size": 128, "mean": [0.5] * 3, "std": [0.5] * 3,
           "resize": "square stretch; INTER_AREA when shrinking, else INTER_LINEAR"}
    assert PreprocessSpec.from_dict(old).resize == "area"
    with pytest.raises(ConfigError, match="resize 'lanczos'"):
        PreprocessSpec.from_dict({**old, "resize": "lanczos"})
    with pytest.raises(ConfigError, match="segmentation decode"):
        PreprocessSpec(seg_decode="softmax")


def test_predictor_decodes_with_its_bundles_declared_spec():
    """A Predictor built with the baseline spec returns the baseline's mask, not the logit-upsampled one."""
    from usedge.backends.base import InputSpec
    from usedge.runtime.predictor import Predictor
    from usedge.tasks import get_task

    spec = get_task("fetal_head")
    rng = np.random.default_rng(2)
    logits = cv2.GaussianBlur(rng.normal(0, 1, (32, 32, 2)).astype(np.float32), (0, 0), 2).transpose(2, 0, 1)

    class Fixed:
        """Stands in for a backend: returns the same logits for any input."""
        name = "fixed"
        input = InputSpec(name="image", channels=3, height=32, width=32, batch_min=1, batch_max=1)

        def infer(self, x):
            assert x.shape == (1, 3, 32, 32)
            return {spec.output_names[0]: logits[None].copy()}

    frame = _ultrasound_like(90, 110)
    for pre, want in [(PreprocessSpec(size=32, resize="bilinear", seg_decode="argmax-nearest"),
                       cv2.resize(np.argmax(logits, 0).astype(np.uint8), (110, 90), interpolation=cv2.INTER_NEAREST)),
                      (PreprocessSpec(size=32), segmentation_map(np.ascontiguousarray(logits), 110, 90, "logits"))]:
        mask = Predictor(Fixed(), pre, ["fetal_head"]).predict(frame)["fetal_head"].mask
        np.testing.assert_array_equal(mask, want)


def test_resize_square_gives_opencvs_uint8_pixels_exactly():
    """The float32 route for non-integer area downscales equals cv2.resize on uint8, pixel for pixel, whatever
    the ratio (non-integer, integer, one side enlarging), grey or BGR."""
    import cv2

    from usedge.data.preprocess import resize_square
    from usedge.data.transforms import resize_interpolation

    rng = np.random.default_rng(11)
    shapes = [(400, 512), (384, 512), (256, 256), (129, 700), (100, 300), (131, 131), (640, 480), (257, 1000)]
    shapes += [tuple(int(v) for v in rng.integers(128, 900, 2)) for _ in range(40)]
    for i, (h, w) in enumerate(shapes):
        img = rng.integers(0, 256, (h, w, 3) if i % 2 else (h, w), np.uint8)
        for size in (128, 256):
            interp = resize_interpolation("area", h, w, size)
            want = cv2.resize(img, (size, size), interpolation=interp)
            got = resize_square(img, size, interp)
            assert got.dtype == np.uint8 and np.array_equal(got, want), (h, w, size)
    view = rng.integers(0, 256, (480, 640, 3), np.uint8)[40:440, 64:576]       # a scan-region crop (a view)
    assert np.array_equal(resize_square(view, 128, cv2.INTER_AREA),
                          cv2.resize(view, (128, 128), interpolation=cv2.INTER_AREA))


def test_framing_fits_the_training_images_common_shape_or_none():
    assert Framing.fit([(256, 256)] * 50).aspect == 1.0
    assert Framing.fit([(480, 640)] * 19 + [(300, 300)]).aspect == pytest.approx(4 / 3, abs=1e-4)
    assert Framing.fit([(256, 256), (200, 300), (300, 200), (100, 400)]).aspect is None   # no common shape
    assert Framing.fit([]).aspect is None
    with pytest.raises(ConfigError, match="framing"):
        Framing(float("nan"))
    assert Framing.from_dict(None) == Framing() and Framing.from_dict(Framing(0.75).to_dict()) == Framing(0.75)


def test_framing_pads_narrow_crops_on_both_sides_and_wide_ones_below():
    crop = np.full((100, 40, 3), 200, np.uint8)
    canvas, (px, py) = Framing(1.0).pad(crop)
    assert canvas.shape == (100, 100, 3) and (px, py) == (30, 0)
    np.testing.assert_array_equal(canvas[:, 30:70], crop)
    assert canvas[:, :30].max() == 0 and canvas[:, 70:].max() == 0
    wide, (px, py) = Framing(1.0).pad(np.full((40, 100), 9, np.uint8))
    assert wide.shape == (100, 100) and (px, py) == (0, 0) and wide[:40].min() == 9 and wide[40:].max() == 0
    same, offset = Framing(1.0).pad(np.ones((100, 101), np.uint8))
    assert same.shape == (100, 101) and offset == (0, 0)                     # within a pixel: left as it is
    assert Framing(None).pad(crop)[0] is crop                                   # no framing: stretched as before
