"""The export job: its gate-failure path, the CLI's report, hostile bundles, the FP16 ONNX, a full disk."""
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from usedge.bundle import load_bundle, write_bundle  # noqa: E402
from usedge.errors import DataError  # noqa: E402

TASKS = "fetal_head,cardiac_multi,organ_cls,thyroid_nodule_det,FUGC"


@pytest.mark.slow
def test_export_job_writes_a_verified_bundle_and_fails_a_forced_gate(exported, tmp_path):
    """A gate no model can pass (every limit below zero) -> PTQ fails, QAT runs and fails, the sensitivity
    search tries 1, 2, 3 float activations, then GateFailed after the bundle and its report are written."""
    from usedge.data.phantom import generate_dataset
    from usedge.export.pipeline import ExportConfig, GateFailed, run_export
    from usedge.models.checkpoint import save_checkpoint
    from usedge.quantize.gate import GateConfig
    from usedge.runtime.verify import verify_bundle

    model, config, _ = exported
    ckpt = save_checkpoint(tmp_path / "ck", model, config)
    data = tmp_path / "data"
    generate_dataset(data, per_task=12, seed=5, size=96, tasks=TASKS.split(","), progress=False)
    never = GateConfig(max_drop_points=-1.0, max_mre_increase=-1.0, hard_drop_points=-1.0, hard_mre_increase=-1.0)
    cfg = ExportConfig(model=str(ckpt), data=str(data), out=str(tmp_path / "bundle"), per_task=10, gate=never,
                       latency_runs=5, max_float=3, qat="auto", qat_steps=2)
    with pytest.raises(GateFailed, match="INT8 gate failed"):
        run_export(cfg)
    bundle = load_bundle(tmp_path / "bundle")
    meta = bundle.metadata
    assert meta["precisions"] == ["fp32", "int8"] and meta["int8"]["passed"] is False
    assert meta["int8"]["method"] == "qat" and meta["int8"]["qat"]["steps"] == 2
    # PTQ, QAT, then the sensitivity search with 1, 2 and 3 float activations
    assert meta["int8"]["attempts"] == 5 and len(meta["int8"]["float_activations"]) == 3
    assert "/FUGC/(?!block(_obj)?/).*" in meta["int8"]["float_layers"] and meta["int8"]["gate_samples"]["organ_cls"] > 0
    assert all(np.isfinite(r["p_value"]) for r in meta["int8"]["gate"])   # paired per-image comparison
    assert meta["int8"]["placement"]["weighted_ops"] > 10 and "Q/DQ placement" in (bundle.path / "report.md").read_text()
    assert meta["calibration"]["per_task"] == {t: 10 for t in TASKS.split(",")}
    report = (bundle.path / "report.md").read_text()
    assert "FAIL" in report and "quantization-aware fine-tuning" in report and "Gate resolution" in report
    result = verify_bundle(bundle.path)
    assert result["checksums"] and result["checker"] == {"fp32": "ok", "int8": "ok"}
    assert all(r["passed"] for r in result["parity"]["fp32"].values())


@pytest.mark.slow
def test_cli_export_with_a_forced_gate_exits_nonzero_and_prints_the_per_task_report(exported, tmp_path):
    from click.testing import CliRunner

    from usedge.cli.main import cli
    from usedge.data.phantom import generate_dataset
    from usedge.models.checkpoint import save_checkpoint

    model, config, _ = exported
    ckpt = save_checkpoint(tmp_path / "ck", model, config)
    generate_dataset(tmp_path / "data", per_task=12, seed=6, size=96, tasks=TASKS.split(","), progress=False)
    result = CliRunner().invoke(cli, ["export", "--model", str(ckpt), "--data", str(tmp_path / "data"),
                                      "--per-task", "10", "--max-drop", "-1", "--max-mre-increase", "-1",
                                      "--hard-drop", "-1", "--hard-mre-increase", "-1", "--qat", "never",
                                      "--max-float", "0", "--out", str(tmp_path / "bundle")])
    assert result.exit_code != 0
    assert "INT8 gate failed" in result.output
    for task in TASKS.split(","):
        assert f"| {task} |" in result.output          # the per-task table, printed
    assert (tmp_path / "bundle" / "report.md").is_file()


def test_hostile_bundles_get_clear_errors_not_tracebacks(exported, tmp_path, monkeypatch):
    """metadata that is a list or lacks files, a .zip that is not a zip, a files entry outside the bundle,
    unknown task ids, input size 0, a zip bomb: each a DataError naming the problem; zips extract once."""
    import usedge.bundle.files as B

    _, _, info = exported
    good = {"tasks": [{"id": "FUGC"}], "input": {"shape": ["N", 3, 64, 64], "preprocess": {"size": 64}}}
    out = write_bundle(tmp_path / "b", {"model.fp32.onnx": info.path}, good, make_zip=True)
    meta = json.loads((out / "metadata.json").read_text())

    def rewrite(m) -> None:
        (out / "metadata.json").write_text(json.dumps(m))

    cases = {
        "holds a JSON list, not an object": [meta],
        "has no 'files' listing": {k: v for k, v in meta.items() if k != "files"},
        "points outside the bundle": {**meta, "files": {**meta["files"], "../../etc/hostname": {"sha256": "0" * 64,
                                                                                                   "bytes": 1}}},
        "names task 'FUGX'": {**meta, "tasks": [{"id": "FUGX"}]},
        "preprocess size 0 is not a positive": {**meta, "input": {**meta["input"], "preprocess": {"size": 0}}},
        r"input shape \['N', 3, 0, 0\]": {**meta, "input": {**meta["input"], "shape": ["N", 3, 0, 0]}},
    }
    for message, bad_meta in cases.items():
        rewrite(bad_meta)
        with pytest.raises(DataError, match=message):
            load_bundle(out)
    rewrite(meta)
    assert load_bundle(out).tasks == ["FUGC"]
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(DataError, match="a file but not a zip bundle"):
        load_bundle(tmp_path / "fake.zip")
    # a zip is extracted once, into the cache, and reused (no new temporary folder per load)
    monkeypatch.setattr(B, "ZIP_CACHE", tmp_path / "cache")
    first, second = load_bundle(tmp_path / "b.zip"), load_bundle(tmp_path / "b.zip")
    assert first.path == second.path and first.path.parent == tmp_path / "cache"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.path.name]
    monkeypatch.setattr(B, "MAX_ZIP_BYTES", 100)    # this bundle expands beyond it: refused as a bomb would be
    monkeypatch.setattr(B, "ZIP_CACHE", tmp_path / "cache2")
    with pytest.raises(DataError, match="would expand to"):
        load_bundle(tmp_path / "b.zip")
    assert not [p for p in (tmp_path / "cache2").iterdir()]   # nothing left behind


def test_tensorrt_targets_get_an_fp16_onnx_checked_on_every_cpu_runtime_trt11(tmp_path, bundle_dir):
    """TensorRT 11 builds fp16 only strongly typed, from an FP16 graph: the exporter writes one for targets that
    run TensorRT (head arithmetic fp32 behind Casts, float32 outputs under their names) and judges its parity."""
    import onnx
    from click.testing import CliRunner
    from onnx import TensorProto, shape_inference

    from tests.conftest import export_tiny_bundle
    from usedge.cli.build import build

    assert not (bundle_dir / "model.fp16.onnx").exists()          # the cpu target: no TensorRT, no FP16 graph
    out = export_tiny_bundle(tmp_path, int8=False, latency_runs=2, target="desktop-gpu")
    meta = json.loads((out / "metadata.json").read_text())
    assert "model.fp16.onnx" in meta["files"] and "/FUGC/(?!block(_obj)?/).*" in meta["fp16"]["fp32_scopes"]
    assert meta["parity"]["fp16"] and all(r["passed"] is True for r in meta["parity"]["fp16"].values())
    fp32, fp16 = (onnx.load(str(out / f"model.{p}.onnx")) for p in ("fp32", "fp16"))
    assert [(o.name, o.type.tensor_type.elem_type) for o in fp16.graph.output] == \
        [(o.name, TensorProto.FLOAT) for o in fp32.graph.output]
    assert any(t.data_type == TensorProto.FLOAT16 for t in fp16.graph.initializer)
    types = {v.name: v.type.tensor_type.elem_type for v in shape_inference.infer_shapes(fp16).graph.value_info}
    softmax = [n for n in fp16.graph.node if n.op_type == "Softmax" and n.name.startswith("/FUGC/")]
    assert softmax and all(types[n.input[0]] == TensorProto.FLOAT for n in softmax)   # the soft-argmax stays fp32
    plan = CliRunner().invoke(build, [str(out), "--target", "desktop-gpu", "--dry-run", "--trt-version", "11.4.0",
                                      "--precision", "fp16"])
    assert plan.exit_code == 0 and "fp16 from model.fp16.onnx (strongly typed" in plan.output, plan.output


def test_a_full_disk_during_export_is_a_storage_error_that_leaves_nothing(tmp_path, monkeypatch):
    """Issue 26, class 6: disk full during export gave a raw OSError traceback (and left the work folder)."""
    import errno

    from click.testing import CliRunner

    from usedge.cli.main import cli
    from usedge.errors import StorageError
    from usedge.export import pipeline

    seen: list[Path] = []

    def fill_disk(run):
        seen.append(run.tmp)
        (run.tmp / "model.fp32.onnx").write_bytes(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device", str(run.tmp / "model.fp32.onnx"))

    monkeypatch.setattr(pipeline.ExportRun, "resolve", lambda run: None)
    monkeypatch.setattr(pipeline.ExportRun, "export_fp32", fill_disk)
    with pytest.raises(StorageError, match="the export stopped: No space left on device") as err:
        pipeline.run_export(pipeline.ExportConfig(out=str(tmp_path / "bundle")))
    assert "free space" in str(err.value) and not seen[0].exists() and not (tmp_path / "bundle").exists()
    def full(cfg):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "run_export", full)
    res = CliRunner().invoke(cli, ["export", "--out", str(tmp_path / "b2")])
    assert res.exit_code == 2 and "usedge export stopped: No space left on device" in res.output
    assert "Traceback" not in res.output
