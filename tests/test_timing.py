"""The one timing helper every latency figure goes through."""
import time

import numpy as np

from usedge._timing import summary, timed


def test_timed_warms_up_then_times_each_call():
    calls = []
    t = timed(lambda: (calls.append(1), time.sleep(0.002)), runs=5, warmup=3)
    assert len(calls) == 8 and t.shape == (5,) and (t >= 2.0).all() and (t < 500).all()


def test_summary_percentiles_are_ordered():
    s = summary(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert s["p50_ms"] == 3.0 and s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= 100.0
