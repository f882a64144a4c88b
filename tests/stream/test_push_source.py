"""PushSource: frames pushed from outside (a browser webcam, a scanner SDK callback) into a live stream."""
import threading
import time

import numpy as np
import pytest

from usedge.errors import ConfigError
from usedge.stream import PushSource, Stream


def test_only_the_newest_pushed_frame_is_read():
    src = PushSource(idle_timeout_s=1.0)
    for i in range(5):
        assert src.push(np.full((8, 8), i, np.uint8))
    frame = src.read()
    assert frame.image[0, 0] == 4 and frame.index == 4 and src.replaced == 4
    src.end()
    assert src.read() is None and not src.push(np.zeros((8, 8), np.uint8))


def test_idle_timeout_ends_the_source():
    src = PushSource(idle_timeout_s=0.1)
    t0 = time.monotonic()
    assert src.read() is None and src.ended
    assert time.monotonic() - t0 < 2.0


def test_read_wakes_on_push_from_another_thread():
    src = PushSource(idle_timeout_s=5.0)
    threading.Timer(0.05, lambda: src.push(np.ones((4, 4), np.uint8))).start()
    assert src.read().image.sum() == 16


def test_a_live_stream_over_pushes(fake_predictor):
    src = PushSource(idle_timeout_s=0.3)
    got = []
    s = Stream(src, fake_predictor, mode="auto", warmup=0)
    assert s.live
    runner = threading.Thread(target=lambda: got.extend(s))
    runner.start()
    for _ in range(10):
        src.push(np.zeros((16, 16), np.uint8))
        time.sleep(0.01)
    runner.join(timeout=5)
    assert not runner.is_alive() and 1 <= len(got) <= 10


def test_bad_timeout():
    with pytest.raises(ConfigError):
        PushSource(idle_timeout_s=0)
