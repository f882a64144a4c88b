"""usedge bench --stream: rows per source × fps, the missing echo cine explained (short runs, no timing assertions)."""
from __future__ import annotations

import json

import pytest

from usedge.errors import ConfigError, SourceError


def _no_echo():
    raise SourceError("the demo echo cine color3d_jpeg_baseline.dcm is not installed.", fix="pip install pydicom-data")


@pytest.fixture(scope="module")
def streamed(bundle_dir):
    from usedge.bench.streaming import run_stream_bench

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("usedge.stream.echo_cine_path", _no_echo)
        return run_stream_bench(bundle_dir, sources=("echo", "phantom"), fps=(30, 60), seconds=0.5, warmup_s=0.1,
                                backend="onnxruntime", precision="fp32", threads=1, command="test")


def test_one_row_per_source_and_fps(streamed):
    assert [(r.source.split()[0], r.fps) for r in streamed.rows] == [("echo", 30), ("echo", 60), ("phantom", 30),
                                                                      ("phantom", 60)]
    assert streamed.predictor.startswith("onnxruntime fp32") and streamed.settings["tasks"] == 5


def test_phantom_rows_have_latency_and_counts(streamed):
    for r in streamed.rows[2:]:
        assert r.ok, r.status
        assert r.frames_in >= r.frames_out > 0 and 0 <= r.dropped <= r.frames_in
        assert 0 < r.e2e_p50_ms <= r.e2e_p99_ms and r.infer_p50_ms > 0 and r.fps_out > 0
        assert r.within_interval in (True, False)


def test_missing_echo_cine_is_an_explained_row(streamed):
    for r in streamed.rows[:2]:
        assert not r.ok and r.status.startswith("not available here") and "pydicom-data" in r.status
        assert r.e2e_p50_ms is None and r.frames_in is None and r.within_interval is None


def test_writers(streamed, tmp_path):
    from usedge.bench.streaming import write_stream_reports

    paths = write_stream_reports(streamed, tmp_path)
    md = paths["stream_md"].read_text()
    assert "| source | fps | e2e p50 ms | e2e p99 ms |" in md and "not available here" in md
    assert "bench_serve.py" in md
    data = json.loads(paths["stream_json"].read_text())
    assert len(data["rows"]) == 4 and data["rows"][0]["within_interval"] is None


@pytest.mark.parametrize("kwargs", [{"sources": ("webcam",)}, {"fps": "0"}, {"seconds": 1.0, "warmup_s": 1.0}])
def test_bad_arguments_are_config_errors(bundle_dir, kwargs):
    from usedge.bench.streaming import run_stream_bench

    with pytest.raises(ConfigError):
        run_stream_bench(bundle_dir, **kwargs)
