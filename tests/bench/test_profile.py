"""usedge bench --profile: the Predictor's pre / infer / post split per backend × precision (no timing assertions)."""
from __future__ import annotations

import json
import math

import pytest

from usedge.bench.profile import STAGES


@pytest.fixture(scope="module")
def profiled(bundle_dir):
    from usedge.bench.profile import run_profile

    return run_profile(bundle_dir, backends="onnxruntime,openvino,tensorrt", precisions="fp32", threads=1, runs=3,
                       warmup=1, command="test")


def test_rows_per_backend_and_frame(profiled):
    keys = [(r.backend, r.precision, r.frame) for r in profiled.rows]
    frames = ["64² grey", "640×480 BGR, 512×400 region"]
    runnable = [(b, "fp32", f, sel) for b in ("onnxruntime", "openvino") for f in frames for sel in ("all", "one")]
    assert keys == [k[:3] for k in runnable] + [("tensorrt", "fp32", f) for f in frames]
    # each runnable frame is profiled for every task and for one, the first segmentation task of the model
    ran = [r for r in profiled.rows if r.backend != "tensorrt"]
    assert [(r.tasks, r.task) for r in ran] == [(5, ""), (1, "fetal_head")] * 4


def test_stage_times_are_finite_and_positive(profiled):
    ran = [r for r in profiled.rows if r.ok]
    assert ran, [r.status for r in profiled.rows]
    for r in ran:
        assert r.tasks in (5, 1)
        for name in ("preprocess_ms", "infer_ms", "postprocess_ms", "stages_ms", "predictor_p50_ms", "bare_p50_ms"):
            value = getattr(r, name)
            assert value is not None and math.isfinite(value) and value > 0, (r, name)
        shares = [r.share(s) for s in STAGES]
        assert all(0 < s < 1 for s in shares) and sum(shares) == pytest.approx(1.0)


def test_unrunnable_backend_is_explained(profiled):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT installed")
    for r in (r for r in profiled.rows if r.backend == "tensorrt"):
        assert r.status.startswith("tensorrt: library not installed (pip install")
        assert r.infer_ms is None and r.share("infer") is None


def test_writers(profiled, tmp_path):
    from usedge.bench.profile import write_profile_reports

    paths = write_profile_reports(profiled, tmp_path)
    md = paths["profile_md"].read_text()
    assert "| backend | precision | frame | tasks | pre ms | infer ms | post ms |" in md
    assert md.count("\n| onnxruntime | fp32 |") == 4 and "| 1 (fetal_head) |" in md
    data = json.loads(paths["profile_json"].read_text())
    assert len(data["rows"]) == len(profiled.rows)
    ok = next(r for r in data["rows"] if r["status"] == "ok")
    assert {f"{s}_share" for s in STAGES} <= set(ok)
