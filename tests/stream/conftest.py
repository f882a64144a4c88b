"""Stream test fixtures: fake predictors / sources for the timing-sensitive pipeline tests (the tiny real bundle
is tests/conftest.py::bundle_dir)."""
import threading
import time

import numpy as np
import pytest

from usedge.data.frames import Frame
from usedge.errors import SourceError
from usedge.runtime.results import ClassificationResult, FrameResult, LandmarkResult


class FakePredictor:
    """Deterministic, fast: organ_cls probs and two FUGC points from the frame's mean; optional delay / failures."""

    tasks = ("organ_cls", "FUGC")

    def __init__(self, delay_s=0.0, fail_on=()):
        self.delay_s = delay_s
        self.fail_on = set(fail_on)
        self.seen = []
        self.lock = threading.Lock()

    def __call__(self, frame, tasks=None):
        with self.lock:
            self.seen.append(frame.index)
        if frame.index in self.fail_on:
            raise RuntimeError(f"synthetic failure on frame {frame.index}")
        if self.delay_s:
            time.sleep(self.delay_s)
        h, w = frame.image.shape[:2]
        probs = np.full(6, 0.1)
        probs[frame.index % 6] = 0.5
        pts = np.array([[w / 3, h / 2], [2 * w / 3, h / 2]])
        r = FrameResult(w, h, {"organ_cls": ClassificationResult("organ_cls", probs, tuple("abcdef")),
                               "FUGC": LandmarkResult("FUGC", pts, ("left", "right"), w, h)},
                        index=frame.index, timestamp_s=frame.timestamp_s)
        r.timings_ms = {"preprocess": 0.1, "infer": 0.2, "postprocess": 0.1, "total": 0.4}
        return r


class FakeLive:
    """A live source producing ``frames`` frames every ``period_s``; ``fail_at``: read numbers that raise once;
    ``open_failures``: how many opens fail after the first fault."""

    live = True

    def __init__(self, frames=100, period_s=0.0, fail_at=(), open_failures=0, size=32, fail_forever=False):
        self.name = "fake-live"
        self.frames, self.period_s = frames, period_s
        self.fail_at = set(fail_at)
        self.open_failures = open_failures
        self.fail_forever = fail_forever
        self.size = size
        self.opens = 0
        self.reads = 0
        self.index = 0
        self.is_open = False

    def open(self):
        self.opens += 1
        if self.fail_forever and self.opens > 1:
            raise SourceError("device unplugged")
        if self.opens > 1 and self.open_failures > 0:
            self.open_failures -= 1
            raise SourceError("still unplugged")
        self.is_open = True

    def read(self):
        if not self.is_open:
            raise SourceError("not open")
        self.reads += 1
        if self.reads in self.fail_at or (self.fail_forever and self.reads > 3):
            self.fail_at.discard(self.reads)
            self.is_open = False
            raise SourceError("cable pulled")
        if self.index >= self.frames:
            return None
        if self.period_s:
            time.sleep(self.period_s)
        image = np.full((self.size, self.size), self.index % 256, np.uint8)
        frame = Frame(image, self.index, self.index * 0.01, self.name)
        self.index += 1
        return frame

    def close(self):
        self.is_open = False


@pytest.fixture
def fake_predictor():
    return FakePredictor()


@pytest.fixture
def image_folder(tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((40, 48), 10 * i, np.uint8))
    return folder


@pytest.fixture
def make_predictor():
    return FakePredictor


@pytest.fixture
def make_live():
    return FakeLive
