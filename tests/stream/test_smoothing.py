"""Smoothing reduces jitter deterministically, follows real changes, resets on a new frame size."""
import numpy as np
import pytest

from usedge.errors import ConfigError
from usedge.runtime.results import (
    ClassificationResult,
    DetectionResult,
    FrameResult,
    LandmarkResult,
    SegmentationResult,
)
from usedge.stream import Smoother, SmoothingConfig, TaskSmoothing


def _frame(probs, points, box, mask, w=64, h=48):
    return FrameResult(w, h, {
        "organ_cls": ClassificationResult("organ_cls", probs, tuple("abcdef")),
        "FUGC": LandmarkResult("FUGC", points, ("l", "r"), w, h),
        "thyroid_nodule_det": DetectionResult("thyroid_nodule_det", box, 0.8, w, h),
        "fetal_head": SegmentationResult("fetal_head", mask, ("bg", "head")),
    })


def _noisy_stream(n=60, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 10:40] = 1
    for _ in range(n):
        probs = np.clip(np.array([0.6, 0.1, 0.1, 0.1, 0.05, 0.05]) + rng.normal(0, 0.08, 6), 0.01, None)
        yield _frame(probs / probs.sum(), np.array([[20.0, 20.0], [40.0, 25.0]]) + rng.normal(0, 2.0, (2, 2)),
                     np.array([5.0, 5.0, 30.0, 30.0]) + rng.normal(0, 2.0, 4), mask.copy())


def test_smoothing_reduces_jitter():
    raw = list(_noisy_stream())
    smoother = Smoother(SmoothingConfig(alpha=0.3))
    smooth = [smoother(r) for r in raw]

    def jitter(seq, get):
        return float(np.abs(np.diff(np.stack([get(r) for r in seq[10:]]), axis=0)).mean())

    for get in (lambda r: r["organ_cls"].probs, lambda r: r["FUGC"].points, lambda r: r["thyroid_nodule_det"].box):
        assert jitter(smooth, get) < 0.5 * jitter(raw, get)
    assert all(r["organ_cls"].label == "a" for r in smooth)
    assert np.isclose(smooth[-1]["organ_cls"].probs.sum(), 1.0)


def test_mask_hysteresis_ignores_one_frame_flicker_and_follows_real_change():
    smoother = Smoother(SmoothingConfig(alpha=0.3))
    base = np.zeros((48, 64), np.uint8)
    base[10:30, 10:40] = 1
    probs, pts, box = np.full(6, 1 / 6), np.zeros((2, 2)), np.zeros(4)
    smoother(_frame(probs, pts, box, base))
    flicker = base.copy()
    flicker[30:34, 10:40] = 1                            # one frame of spurious foreground
    out = smoother(_frame(probs, pts, box, flicker))["fetal_head"].mask
    assert np.array_equal(out, base)
    for _ in range(5):                                   # a persistent change wins after a few frames
        out = smoother(_frame(probs, pts, box, flicker))["fetal_head"].mask
    assert np.array_equal(out, flicker)


def test_reset_on_frame_size_change_and_per_task_off():
    cfg = SmoothingConfig(alpha=0.2, per_task={"FUGC": None, "organ_cls": TaskSmoothing(alpha=1.0)})
    smoother = Smoother(cfg)
    mask = np.zeros((48, 64), np.uint8)
    first = _frame(np.eye(6)[0], np.zeros((2, 2)), np.zeros(4), mask)
    second = _frame(np.eye(6)[1], np.ones((2, 2)) * 9, np.ones(4) * 9, mask)
    smoother(first)
    out = smoother(second)
    assert np.array_equal(out["FUGC"].points, second["FUGC"].points)          # disabled
    assert np.allclose(out["organ_cls"].probs, np.eye(6)[1])                    # alpha 1: raw
    assert not np.allclose(out["thyroid_nodule_det"].box, 9.0)                 # default alpha 0.2: smoothed
    bigger = _frame(np.eye(6)[1], np.ones((2, 2)) * 9, np.ones(4) * 50, np.zeros((96, 128), np.uint8), 128, 96)
    assert np.allclose(smoother(bigger)["thyroid_nodule_det"].box, 50.0)        # reset: no memory


@pytest.mark.parametrize("bad", [0, 1.5, float("nan"), "0.5"])
def test_bad_alpha_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="alpha"):
        SmoothingConfig(alpha=bad)
