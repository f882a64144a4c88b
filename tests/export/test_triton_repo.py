"""usedge triton-repo: every config.pbtxt parses as Triton's own ModelConfig and says exactly what the bundle
holds; batching and devices follow the target; a failed or refused write leaves nothing behind."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from usedge.errors import ConfigError
from usedge.export.triton import Enum, plan_repository, to_pbtxt, validate_config, write_repository

pytest.importorskip("tritonclient.grpc", reason="validating configs needs tritonclient (usedge[dev] / [triton])")


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    from usedge.bundle import load_bundle

    return load_bundle(bundle_dir)


def _target(name="cpu", **changes):
    from usedge.targets import load_target

    return replace(load_target(name), **changes)


def test_pbtxt_rendering_is_triton_text_format():
    text = to_pbtxt({"name": 'a "b"', "max_batch_size": 4, "input": [{"name": "x", "data_type": Enum("TYPE_FP32"),
                                                                    "dims": [3, -1]}], "dynamic_batching": {}})
    config = validate_config(text)
    assert config.name == 'a "b"' and config.input[0].dims == [3, -1] and config.HasField("dynamic_batching")
    with pytest.raises(ConfigError, match="not a valid Triton model config"):
        validate_config('name: "x"\nmax_batch: 3')                 # a field Triton does not have
    with pytest.raises(ConfigError, match="not a valid Triton model config"):
        validate_config('input { name: "x" data_type: TYPE_FLOAT }')  # an enum value it does not have


def test_every_config_is_valid_and_names_the_bundles_tensors(bundle):
    models = plan_repository(bundle, _target("cpu"))
    names = [m.name for m in models]
    assert names == ["usedge_fp32_onnxruntime", "usedge_fp32_openvino", "usedge"]
    meta = bundle.meta
    for m in models:
        config = validate_config(m.config_text(), m.name)
        assert config.name == m.name
        params = {k: v.string_value for k, v in config.parameters.items()}
        assert json.loads(params["usedge.tasks"]) == list(bundle.tasks)
        if m.name == "usedge":
            assert config.backend == "python" and [i.name for i in config.input] == ["frame", "tasks", "region", "mm_per_pixel"]
            assert config.input[1].optional and config.input[2].optional and config.output[0].name == "result"
            continue
        assert config.max_batch_size == 8                                     # the cpu profile's batch max
        assert config.dynamic_batching.max_queue_delay_microseconds > 0
        assert [(i.name, list(i.dims)) for i in config.input] == [(meta.input.name, list(meta.input.shape[1:]))]
        assert [o.name for o in config.output] == [o.name for o in meta.outputs]
        # symbolic dims of the ONNX graph (a dense head's h, w) are Triton's -1
        assert [list(o.dims) for o in config.output] == [[d if isinstance(d, int) else -1 for d in o.shape[1:]]
                                                         for o in meta.outputs]
        assert json.loads(params["usedge.classes"])["cardiac_multi"] == list(
            next(t for t in meta.tasks if t.id == "cardiac_multi").classes)
    onnx_rt, openvino = (validate_config(m.config_text()) for m in models[:2])
    assert onnx_rt.platform == "onnxruntime_onnx" and onnx_rt.instance_group[0].kind == onnx_rt.instance_group[0].KIND_CPU
    assert openvino.backend == "openvino" and openvino.default_model_filename == "model.onnx"


def test_batching_and_devices_follow_the_target(bundle):
    nano = validate_config(plan_repository(bundle, _target("jetson-orin-nano"), predictor=False)[0].config_text())
    assert nano.max_batch_size == 1 and not nano.HasField("dynamic_batching")
    gpu = _target("desktop-gpu", backends=("onnxruntime", "tensorrt"), dla_core=None)
    onnx = validate_config(plan_repository(bundle, gpu, predictor=False)[0].config_text())
    assert onnx.max_batch_size == 16 and list(onnx.dynamic_batching.preferred_batch_size) == [4, 16]
    assert onnx.instance_group[0].kind == onnx.instance_group[0].KIND_GPU


def test_built_engines_become_tensorrt_plan_models_of_their_own_batch_range_and_dla_core(bundle, tmp_path):
    """An engine is served on the GPU whatever the target, with the batch range and DLA core it was built with;
    two engines of one precision (two GPUs, or GPU and DLA) become two models."""
    import shutil

    from usedge.bundle import load_bundle
    from usedge.bundle.engines import ENGINE_DIR, EngineKey, Sidecar, sidecar_path

    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    (copy / ENGINE_DIR).mkdir()
    engines = []
    for dla in (0, None):
        key = EngineKey("Orin", "8.7", "10.3", "int8", "0" * 64, 1, 2, 4, 64, 64, dla_core=dla)
        engine = copy / ENGINE_DIR / f"{key.digest()}.engine"
        engine.write_bytes(b"plan")
        sidecar_path(engine).write_text(json.dumps(Sidecar(key, "0" * 64, 4, {"target": "x"}).to_dict()))
        engines.append(engine)
    models = plan_repository(load_bundle(copy, verify=False), _target("cpu"), predictor=False)   # a CPU target
    plans = {m.name: m for m in models if "tensorrt" in m.name}
    assert sorted(plans) == sorted(f"usedge_int8_tensorrt_{e.stem[:8]}" for e in engines)
    for name, plan in plans.items():
        config = validate_config(plan.config_text())
        group = config.instance_group[0]
        assert config.platform == "tensorrt_plan" and group.kind == group.KIND_GPU
        assert config.max_batch_size == 4 and list(config.dynamic_batching.preferred_batch_size) == [2, 4]
        dla = plan.files["model.plan"] == engines[0]
        assert [d.device_id for d in group.secondary_devices] == ([0] if dla else [])
        assert ("DLA core 0" in plan.note) == dla


def test_cli_writes_the_repository_and_refuses_a_non_empty_folder(bundle_dir, tmp_path):
    from usedge.cli.main import cli

    repo = tmp_path / "repo"
    res = CliRunner().invoke(cli, ["triton-repo", str(repo), "--bundle", str(bundle_dir)])
    assert res.exit_code == 0, res.output
    assert "checked against Triton's ModelConfig" in res.output
    assert (repo / "usedge_fp32_onnxruntime" / "1" / "model.onnx").stat().st_size > 0
    assert (repo / "usedge" / "1" / "bundle" / "metadata.json").is_file()
    assert "TritonPythonModel" in (repo / "usedge" / "1" / "model.py").read_text()
    again = CliRunner().invoke(cli, ["triton-repo", str(repo), "--bundle", str(bundle_dir)])
    assert again.exit_code != 0 and "pass --overwrite" in again.output
    assert CliRunner().invoke(cli, ["triton-repo", str(repo), "--bundle", str(bundle_dir), "--overwrite"]).exit_code == 0
    foreign = tmp_path / "models"
    (foreign / "someone_elses_model" / "1").mkdir(parents=True)
    refused = CliRunner().invoke(cli, ["triton-repo", str(foreign), "--bundle", str(bundle_dir), "--overwrite"])
    assert refused.exit_code != 0 and "was not written by usedge" in refused.output
    assert (foreign / "someone_elses_model" / "1").is_dir()                  # left alone
    root = CliRunner().invoke(cli, ["triton-repo", "/", "--bundle", str(bundle_dir)])
    assert root.exit_code != 0 and "cannot be a model repository" in root.output


def test_a_failed_write_leaves_no_partial_repository(bundle, tmp_path, monkeypatch):
    import shutil

    def broken_copy(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copy2", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        write_repository(bundle, tmp_path / "repo")
    assert not list(tmp_path.iterdir())


def test_the_python_model_batches_requests_and_isolates_a_bad_one(bundle_dir, tmp_path, monkeypatch):
    """The repository's model.py against a stand-in for Triton's ``triton_python_backend_utils``: three requests
    in one execute(), the middle one bad: the other two are answered (like the Predictor), only it gets an error."""
    import sys
    import types

    import numpy as np

    import usedge

    class Tensor:
        def __init__(self, name, array):
            self.name, self.array = name, array

        def as_numpy(self):
            return self.array

    class Response:
        def __init__(self, output_tensors, error=None):
            self.output_tensors, self.error = output_tensors, error

    pb = types.SimpleNamespace(Tensor=Tensor, InferenceResponse=Response, TritonError=lambda m: m,
                               get_input_tensor_by_name=lambda r, n: r.get(n))
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb)
    repo = tmp_path / "repo"
    write_repository(__import__("usedge.bundle", fromlist=["load_bundle"]).load_bundle(bundle_dir), repo)
    namespace: dict = {}
    exec(compile((repo / "usedge" / "1" / "model.py").read_text(), "model.py", "exec"), namespace)
    model = namespace["TritonPythonModel"]()
    config = validate_config((repo / "usedge" / "config.pbtxt").read_text())
    from google.protobuf.json_format import MessageToDict

    model.initialize({"model_config": json.dumps(MessageToDict(config, preserving_proto_field_name=True)),
                      "model_repository": str(repo / "usedge"), "model_version": "1"})
    try:
        rng = np.random.default_rng(7)
        good = rng.integers(0, 255, (1, 80, 100, 3), np.uint8)
        requests = [{"frame": Tensor("frame", good)}, {"frame": Tensor("frame", good[..., :2])},
                    {"frame": Tensor("frame", good), "tasks": Tensor("tasks", np.array([[b"organ_cls"]], dtype=object))}]
        first, bad, third = model.execute(requests)
        assert bad.error and "channels" in bad.error and not bad.output_tensors
        with usedge.load(bundle_dir) as predictor:
            want = json.loads(json.dumps(predictor(good[0]).to_json(), default=lambda v: v.tolist()))
        got = json.loads(first.output_tensors[0].array[0, 0])
        # the two good requests ran as one batch of 2: the same answers to float32 rounding
        got.pop("timings_ms"), want.pop("timings_ms")
        _similar(got, want)
        assert list(json.loads(third.output_tensors[0].array[0, 0])["tasks"]) == ["organ_cls"]
    finally:
        model.finalize()                        # the Predictor is closed even when an assertion fails


def test_export_writes_the_repository_after_the_bundle(bundle_dir, tmp_path, monkeypatch):
    import usedge.export.pipeline as pipeline
    from usedge.cli.main import cli

    ran = []
    monkeypatch.setattr(pipeline, "run_export", lambda cfg: ran.append(cfg.out))   # the bundle is already there
    repo = tmp_path / "repo"
    res = CliRunner().invoke(cli, ["export", "--out", str(bundle_dir), "--triton", str(repo), "--fp32-only"])
    assert res.exit_code == 0, res.output
    assert ran == [str(bundle_dir)]
    assert (repo / "usedge_fp32_openvino" / "config.pbtxt").is_file() and (repo / "usedge" / "1" / "model.py").is_file()


def _similar(a, b, key: str = "") -> None:
    """Results of a batch of 2 vs of 1: labels, classes and names equal; floats close; contours by class only
    (traced from masks that may differ by a pixel), areas within 2 %."""
    if key == "contours":
        assert a.keys() == b.keys()
    elif key == "area_pixels":
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=0.02, abs=2) for k in a)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), key
        for k in a:
            _similar(a[k], b[k], k)
    elif isinstance(a, list):
        assert len(a) == len(b), key
        for x, y in zip(a, b):
            _similar(x, y, key)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-3), key
    else:
        assert a == b, key
