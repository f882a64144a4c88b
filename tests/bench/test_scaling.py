"""usedge bench --scaling on the tiny bundle: well-formed curves, explained points, writers (no timing assertions)."""
from __future__ import annotations

import csv
import importlib.util
import json
import math

import pytest

from usedge.errors import ConfigError


@pytest.fixture(scope="module")
def scaling(bundle_dir):
    pytest.importorskip("torch")
    from usedge.bench.scaling import run_scaling

    return run_scaling(bundle_dir, sizes=(64, 96), batches=(1, 2), task_counts=(1, 3, 9), threads=1, runs=2,
                       warmup=1, rounds=2, command="test")


def _backends():
    from usedge.bench.scaling import scaling_backends

    return scaling_backends(None)


def test_every_point_has_a_row(scaling):
    keys = [(r.backend, r.axis, r.value) for r in scaling.rows]
    expected = [(b, axis, v) for b in _backends() for axis, values in
                (("size", (64, 96)), ("batch", (1, 2)), ("tasks", (1, 3, 9))) for v in values]
    assert keys == expected
    assert scaling.settings["fixed_size"] == 64 and scaling.settings["backends"] == _backends()
    assert "trained weights" in scaling.model


def test_points_are_well_formed(scaling):
    for r in scaling.rows:
        if r.axis == "tasks" and r.value == 9:
            continue
        assert r.ok, r.status
        for value in (r.p50_ms, r.p95_ms, r.per_frame_ms, r.predictor_p50_ms):
            assert value is not None and math.isfinite(value) and value > 0
        assert r.p50_ms <= r.p95_ms
        assert r.per_frame_ms == pytest.approx(r.p50_ms / r.batch)
        assert r.size == (r.value if r.axis == "size" else 64)
        assert r.batch == (r.value if r.axis == "batch" else 1)
        assert r.tasks == (r.value if r.axis == "tasks" else 5)
        assert (r.subset_net_p50_ms is not None) == (r.axis == "tasks")


def test_more_tasks_than_the_model_has_is_explained(scaling):
    for r in (r for r in scaling.rows if r.axis == "tasks" and r.value == 9):
        assert r.status == "the model has 5 tasks" and r.p50_ms is None and r.predictor_p50_ms is None


def test_task_subsets_mix_the_families(scaling):
    from usedge.tasks import get_task

    order = scaling.settings["task_order"]
    assert sorted(order) == sorted(["fetal_head", "cardiac_multi", "organ_cls", "thyroid_nodule_det", "FUGC"])
    assert [get_task(t).kind.value for t in order[:3]] == ["segmentation", "classification", "detection"]


def test_writers(scaling, tmp_path):
    from usedge.bench.scaling import SCALING_COLUMNS, write_scaling_reports

    paths = write_scaling_reports(scaling, tmp_path)
    md = paths["scaling_md"].read_text()
    for title in ("## Input size", "## Batch", "## Tasks decoded per frame"):
        assert title in md
    assert "per-frame ms" in md and "net with only these heads" in md and "the model has 5 tasks" in md
    with paths["scaling_csv"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(scaling.rows) and list(rows[0]) == list(SCALING_COLUMNS)
    data = json.loads(paths["scaling_json"].read_text())
    assert data["model"] == scaling.model and len(data["rows"]) == len(scaling.rows)
    if importlib.util.find_spec("matplotlib") is not None:
        assert paths["scaling_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_task_order_interleaves_families():
    from usedge.bench.scaling import task_order

    order = task_order(["fetal_head", "cardiac_multi", "organ_cls", "breast_2cls", "FUGC"])
    assert order == ["fetal_head", "organ_cls", "FUGC", "cardiac_multi", "breast_2cls"]


@pytest.mark.parametrize("kwargs", [{"sizes": "64,x"}, {"sizes": (16,)}, {"batches": "0"}, {"task_counts": ""},
                                    {"rounds": 0}, {"runs": 0}, {"backends": "tensorrt"}])
def test_bad_arguments_are_config_errors(bundle_dir, kwargs):
    from usedge.bench.scaling import run_scaling

    with pytest.raises(ConfigError):
        run_scaling(bundle_dir, **kwargs)
