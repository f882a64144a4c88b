"""usedge bench: rows, explained skips, writers, CLI (fast: few runs, no timing assertions)."""
from __future__ import annotations

import csv
import importlib.util
import json

import pytest

from usedge.bench import COLUMNS, BenchRow, run_bench, write_reports
from usedge.bench.harness import parse_backends, parse_batches, parse_precisions
from usedge.errors import ConfigError

NUMBERS = ("size_mb", "p50_ms", "p95_ms", "p99_ms", "fps", "predictor_p50_ms", "peak_rss_mb")
NO_TRT = importlib.util.find_spec("tensorrt") is None


@pytest.fixture(scope="module")
def result(bundle_dir):
    return run_bench(bundle_dir, backends="all", precisions="all", batches=(1, 2), runs=5, warmup=1,
                     data=bundle_dir.parent / "data", max_eval_per_task=2, command="test")


def _row(result, backend, precision, batch=1) -> BenchRow:
    return next(r for r in result.rows if (r.backend, r.precision, r.batch) == (backend, precision, batch))


def test_every_combination_has_a_row(result):
    keys = [(r.backend, r.precision, r.batch) for r in result.rows]
    own = {"openvino": ("fp32", "int8"), "onnxruntime": ("fp32", "int8"), "tensorrt": ("fp32", "fp16", "int8"),
           "torch": ("fp32", "fp16")}
    assert keys == [(b, p, n) for b, precs in own.items() for p in precs for n in (1, 2)]


def test_explicit_precisions_go_to_every_backend(bundle_dir):
    result = run_bench(bundle_dir, backends="onnxruntime,torch", precisions="int8", runs=1, warmup=0)
    assert [(r.backend, r.precision) for r in result.rows] == [("onnxruntime", "int8"), ("torch", "int8")]
    assert "not in this bundle" in result.rows[0].status
    assert result.rows[1].status.startswith("torch: int8 is not benchmarked")


def test_runnable_rows_are_well_formed(result):
    ok = [r for r in result.rows if r.ok]
    assert ok, [r.status for r in result.rows]
    for r in ok:
        for name in NUMBERS:
            assert getattr(r, name) is not None and getattr(r, name) > 0, (r, name)
        assert r.p50_ms <= r.p95_ms <= r.p99_ms
        assert r.device
        assert r.dice is not None and r.accuracy is not None and r.iou is not None and r.mre_px is not None
    for backend in ("openvino", "onnxruntime"):
        if _row(result, backend, "fp32").ok:
            assert _row(result, backend, "fp32").device == "CPU"


def test_skipped_rows_explain_and_have_no_numbers(result):
    for r in result.rows:
        if not r.ok:
            assert r.status and all(getattr(r, n) is None for n in NUMBERS)
    int8 = _row(result, "onnxruntime", "int8")
    assert not int8.ok and "int8" in int8.status and "not in this bundle" in int8.status


@pytest.mark.skipif(not NO_TRT, reason="TensorRT installed")
def test_tensorrt_row_explains_missing_library(result):
    for batch in (1, 2):
        row = _row(result, "tensorrt", "fp32", batch)
        assert row.status == "tensorrt: library not installed (pip install 'usedge[trt]')"


@pytest.mark.skipif(not NO_TRT, reason="TensorRT installed")
def test_gpu_rows_are_present_and_explained(result):
    from usedge.bench.harness import cuda_available

    for batch in (1, 2):
        assert _row(result, "tensorrt", "fp16", batch).status.startswith("tensorrt: library not installed")
        torch_fp16 = _row(result, "torch", "fp16", batch)
        if not cuda_available():
            assert torch_fp16.status == "torch fp16 on CUDA: no CUDA device here"
            assert all(getattr(torch_fp16, n) is None for n in NUMBERS)


def test_machine_and_command(result):
    assert result.command == "test"
    for key in ("cpu", "processor", "cores", "os", "python"):
        assert result.machine[key]


def test_writers_parse_back(result, tmp_path):
    paths = write_reports(result, tmp_path / "out")
    md = paths["md"].read_text()
    assert "| backend | device | precision |" in md and "tensorrt" in md
    assert md.count("\n|") >= len(result.rows) + 2
    with paths["csv"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(result.rows) and list(rows[0]) == list(COLUMNS)
    data = json.loads(paths["json"].read_text())
    assert len(data["rows"]) == len(result.rows) and data["machine"]["cores"] == result.machine["cores"]
    assert set(data["rows"][0]) == set(COLUMNS)
    if importlib.util.find_spec("matplotlib") is not None:
        assert paths["png"].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_scatter_is_a_png_of_the_scored_rows(result, tmp_path):
    from usedge.bench.report import scatter_rows, write_scatter

    rows = scatter_rows(result)
    assert rows and {r.batch for r in rows} == {1} and all(r.ok and r.dice is not None for r in rows)
    path = write_reports(result, tmp_path)["scatter"]
    assert path.name == "bench_scatter.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > height > 100
    unscored = type(result)(result.bundle, tuple(r for r in result.rows if not r.ok), result.machine, "x")
    assert write_scatter(unscored, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_cli(bundle_dir, tmp_path):
    from click.testing import CliRunner

    from usedge.cli.bench import bench

    out = tmp_path / "bench"
    res = CliRunner().invoke(bench, ["--bundle", str(bundle_dir), "--runs", "3", "--warmup", "1",
                                     "--backends", "onnxruntime,tensorrt", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "| onnxruntime | CPU | fp32 |" in res.output and "tensorrt" in res.output
    assert {p.name for p in out.iterdir()} >= {"bench.md", "bench.csv", "bench.json"}
    data = json.loads((out / "bench.json").read_text())
    assert [r["backend"] for r in data["rows"]] == ["onnxruntime"] * 2 + ["tensorrt"] * 3
    assert data["command"].startswith("usedge bench --bundle")


def test_cli_profile_scaling_stream(bundle_dir, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from click.testing import CliRunner

    from usedge.cli.bench import bench

    out = tmp_path / "bench"
    args = ["--bundle", str(bundle_dir), "--backends", "onnxruntime", "--precisions", "fp32", "--runs", "2",
            "--warmup", "1", "--threads", "1", "--profile", "--scaling", "--scaling-sizes", "64",
            "--scaling-batches", "1,2", "--scaling-tasks", "1", "--scaling-rounds", "1", "--stream",
            "--stream-fps", "30", "--stream-seconds", "0.5", "--out", str(out)]
    res = CliRunner().invoke(bench, args)
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {"bench.md", "profile.md", "profile.json", "scaling.md", "scaling.csv", "scaling.json", "stream.md",
            "stream.json"} <= names
    command = json.loads((out / "scaling.json").read_text())["command"]
    assert command.startswith("usedge bench --bundle") and "--scaling --scaling-sizes 64" in command
    assert "--stream-seconds 0.5" in command and "--teacher" not in command
    stream = json.loads((out / "stream.json").read_text())["rows"]
    assert [r["fps"] for r in stream] == [30, 30] and stream[1]["status"] == "ok"
    assert "| 64 | onnxruntime |" in res.output


def test_cli_without_bundle_says_to_export(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from usedge.cli.bench import bench

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(bench, ["--runs", "1"])
    assert res.exit_code != 0 and isinstance(res.exception, ConfigError)
    assert "usedge export" in str(res.exception)


@pytest.mark.parametrize("fn, bad", [(parse_backends, "openvino,foo"), (parse_precisions, "int4"),
                                     (parse_batches, "1,0"), (parse_batches, "x")])
def test_bad_arguments_are_config_errors(fn, bad):
    with pytest.raises(ConfigError):
        fn(bad)


@pytest.mark.slow
def test_teacher_side_by_side_reports_every_way_and_ratios():
    pytest.importorskip("torch")
    import os
    from types import SimpleNamespace

    from usedge.bench.teacher import TEACHER_ROWS, bench_teacher, side_by_side

    assert TEACHER_ROWS == {"baseline-b4": ("per-task", "one-pass", "cpu-one-pass"),
                            "teacher-vit-s": ("one-pass", "cpu-one-pass")}
    rows = bench_teacher(64, runs=1, warmup=0, threads=2, teachers=("baseline-b4",))   # (ViT rows: the next test)
    hows = [r["teacher"] for r in rows]
    assert hows[0].startswith("baseline-b4 as shipped") and "(27)" in hows[0] and "one pass" in hows[1]
    assert [r["model"] for r in rows] == ["baseline-b4"] * 3
    assert all(r["p50_ms"] > 0 and r["size"] == 64 and r["weights"] == "random" for r in rows)
    assert rows[0]["params_m"] > 20      # EfficientNet-B4 + FPN + 27 heads
    # each row was timed in its own fresh process, none in this one (where earlier rows' threads linger)
    pids = [r["pid"] for r in rows]
    assert len(set(pids)) == len(pids) and os.getpid() not in pids
    student = [SimpleNamespace(status="ok", batch=1, p50_ms=2.0, backend="openvino", precision="int8"),
               SimpleNamespace(status="tensorrt: library not installed", batch=1, p50_ms=None, backend="tensorrt",
                               precision="fp32")]
    text = side_by_side(rows, student, 64)
    assert f"{rows[0]['p50_ms'] / 2.0:.1f}×" in text and "openvino int8, p50 2.00 ms" in text
    assert "No student row ran" in side_by_side(rows, student[1:], 64)
    isolated = {"teacher": "student: openvino int8", "p50_ms": 4.0, "p95_ms": 4.0, "runs": 1, "pid": 1}
    fp32 = {"teacher": "student: openvino fp32", "p50_ms": 5.0, "p95_ms": 5.0, "runs": 1, "pid": 2}
    text = side_by_side(rows, student, 64, isolated, fp32)
    assert f"{rows[0]['p50_ms'] / 4.0:.1f}×" in text and "re-timed in its own process" in text
    assert f"{rows[0]['p50_ms'] / 5.0:.1f}× |" in text and "openvino fp32, p50 5.00 ms" in text


def test_a_teacher_row_times_a_trained_checkpoint(tmp_path):
    pytest.importorskip("torch")
    from dataclasses import replace

    from usedge.bench.teacher import bench_teacher
    from usedge.models import build_model
    from usedge.models.checkpoint import save_checkpoint
    from usedge.models.presets import resolve_config

    # a tiny ViT saved under the preset's name: the rows build what the checkpoint holds, not the preset
    config = replace(resolve_config("timm/vit_tiny_patch16_224", "organ_cls,fetal_head"), name="teacher-vit-s",
                     input_size=64)
    path = save_checkpoint(tmp_path / "vit", build_model(config), config)
    (row,) = bench_teacher(None, runs=1, warmup=0, threads=1, checkpoints={"teacher-vit-s": str(path)},
                           teachers=("teacher-vit-s",), rows=("one-pass",))
    assert row["weights"] == str(path) and row["size"] == 64 and row["model"] == "teacher-vit-s"
    assert row["params_m"] < 10


def test_student_row_is_re_timed_in_a_fresh_process(bundle_dir):
    import os

    from usedge.bench.teacher import bench_student

    row = bench_student(bundle_dir, "onnxruntime", "fp32", runs=2, warmup=0, threads=1)
    assert row["p50_ms"] > 0 and row["runs"] == 2 and row["pid"] != os.getpid()
    from usedge.errors import UsedgeError

    with pytest.raises(UsedgeError, match="failed in its process"):
        bench_student(bundle_dir, "onnxruntime", "int8", runs=1, warmup=0)
