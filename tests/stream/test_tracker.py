"""Tracker: warm-up excluded, percentiles, table and plot."""
import pytest

from usedge.stream import Tracker


def test_tracker_summary_table_and_plot(tmp_path):
    t = Tracker(warmup=2)
    for i in range(12):
        t.frame_in(float(i) * 0.1)
        counted = t.frame_out({"infer": 1000.0 if i < 2 else float(i), "end_to_end": 2.0 * i}, float(i) * 0.1 + 0.05)
        assert counted == (i >= 2)
    t.count("dropped", 3)
    t.count("errors")
    s = t.summary()
    assert s["frames_in"] == 12 and s["frames_out"] == 12 and s["dropped"] == 3 and s["errors"] == 1
    assert s["latency_ms"]["infer"]["n"] == 10 and s["latency_ms"]["infer"]["max"] == 11.0   # warm-up left out
    assert set(s["latency_ms"]["infer"]) >= {"p50", "p95", "p99", "p99.9"}
    assert s["fps_in"] == pytest.approx(12 / 1.15, rel=1e-3)
    table = t.table()
    assert table.startswith("| stage |") and "| infer |" in table and "dropped 3" in table
    pytest.importorskip("matplotlib")
    assert t.plot(tmp_path / "lat.png").stat().st_size > 0
