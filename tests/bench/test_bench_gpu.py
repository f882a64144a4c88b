"""benchmarks/bench_gpu.py (run by scripts/gpu_check.sh on a GPU machine): its code path, on the CPU."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_and_reasons_are_written_and_tensorrt_is_never_faked(tmp_path, monkeypatch):
    bench = _module()

    def no_smp(*a, **k):
        raise ModuleNotFoundError("No module named 'segmentation_models_pytorch'")

    monkeypatch.setattr(bench, "teacher_rows", no_smp)
    rc = bench.main(["--out", str(tmp_path), "--device", "cpu", "--runs", "3", "--batches", "1,2",
                     "--only", "student,teacher"])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert rc == 0 and [(r["variant"], r["batch"]) for r in report["rows"]] == [("fp32", 1), ("fp32", 2)]
    assert all(r["p50_ms"] > 0 and r["runs"] == 3 for r in report["rows"])
    assert report["skipped"] == [{"rows": "teacher", "reason": "ModuleNotFoundError: No module named "
                                                              "'segmentation_models_pytorch'"}]
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| teacher | | not run: ModuleNotFoundError" in md and "TensorRT: " in md.splitlines()[0]
    if importlib.util.find_spec("tensorrt") is None:
        assert report["environment"]["tensorrt"].startswith("absent")


def test_asking_for_cuda_where_there_is_none_measures_nothing(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert _module().main(["--out", str(tmp_path)]) == 3
    assert "no CUDA device here" in capsys.readouterr().err and not list(tmp_path.iterdir())
