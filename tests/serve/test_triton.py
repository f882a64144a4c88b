"""The Predictor behind Triton: the frame handler (in this process), and a real Triton server (PyTriton's
tritonserver) started by `usedge serve --triton` from the Triton venv, answered over HTTP and gRPC exactly as
the in-process Predictor answers, refusing bad input with a clear error and serving on; and the repository's own
Python-backend model run on the same tritonserver binary."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from usedge.backends import available_backends
from usedge.errors import ConfigError, DataError
from usedge.export.triton import RESULT_OUTPUT

needs_backend = pytest.mark.skipif(not available_backends(), reason="needs OpenVINO or ONNX Runtime (usedge[cpu])")


def _json(result) -> dict:
    """A result's JSON without its timings (they differ from call to call)."""
    out = json.loads(json.dumps(result.to_json(), default=lambda v: v.tolist() if hasattr(v, "tolist") else v.item()))
    return _untimed(out)


def _untimed(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k != "timings_ms"}


def _same(a, b) -> bool:
    """Equal JSON answers, floats to one step of their 4th decimal: a batch of frames runs other kernels than one frame, and the
    gate's distance can differ in its fourth decimal (9.9528 vs 9.9529, 2026-12-04); every label, mask and count
    must be identical."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-5, abs=1.5e-4)      # the JSON rounds to 4 decimals: one flip of the last
    return a == b


@pytest.fixture(scope="module")
def predictor():
    import usedge

    if not available_backends():
        pytest.skip("needs OpenVINO or ONNX Runtime (usedge[cpu])")
    with usedge.load() as p:
        yield p


# -- the handler, in this process --------------------------------------------------------------------------


@needs_backend
def test_handler_answers_what_the_predictor_answers(predictor):
    from usedge.serve.triton import FrameHandler

    rng = np.random.default_rng(1)
    bgr, grey = rng.integers(0, 255, (2, 120, 160, 3), np.uint8), rng.integers(0, 255, (90, 70, 1), np.uint8)
    handler = FrameHandler(predictor)
    texts = handler.answer(bgr)
    assert _same([_untimed(json.loads(t)) for t in texts], [_json(predictor(f)) for f in bgr])
    one = _untimed(json.loads(handler.answer(grey[None], np.array([[b"organ_cls, fetal_head"]], dtype=object))[0]))
    assert sorted(one["tasks"]) == ["fetal_head", "organ_cls"] and one["width"] == 70 and one["height"] == 90
    assert one == _json(predictor(grey[..., 0], tasks=["fetal_head", "organ_cls"]))


@needs_backend
def test_tasks_are_chosen_per_frame_in_the_order_given(predictor):
    from usedge.serve.triton import FrameHandler

    frames = np.random.default_rng(3).integers(0, 255, (3, 60, 80, 3), np.uint8)
    rows = np.array([[b"organ_cls,fetal_head"], [b"cardiac_multi"], [b""]], dtype=object)
    answers = [json.loads(t) for t in FrameHandler(predictor).answer(frames, rows)]
    assert [list(a["tasks"]) for a in answers[:2]] == [["organ_cls", "fetal_head"], ["cardiac_multi"]]
    assert len(answers[2]["tasks"]) == len(predictor.model_tasks)                  # an empty row: every task
    assert _untimed(answers[1]) == _json(predictor(frames[1], tasks=["cardiac_multi"]))
    with pytest.raises(DataError, match="2 task lists for 3 frames"):
        FrameHandler(predictor).answer(frames, rows[:2])


@needs_backend
def test_a_scan_region_is_cropped_as_the_predictor_crops_it(predictor):
    from usedge.serve.triton import FrameHandler

    frames = np.random.default_rng(4).integers(0, 255, (2, 120, 160, 3), np.uint8)
    handler = FrameHandler(predictor)
    got = [json.loads(t) for t in handler.answer(frames, None, np.array([[10, 20, 150, 110], [0, 0, 160, 120]]))]
    assert _untimed(got[0]) == _json(predictor(frames[0], region=(10, 20, 150, 110)))
    assert got[0]["region"] == [10, 20, 150, 110] and got[1]["region"] is None          # the whole frame: no crop
    big = FrameHandler(predictor, max_side=80).answer(frames[:1], None, np.array([[10, 20, 150, 110]]))
    assert json.loads(big[0])["region"] == [10, 20, 150, 110]          # analysed at 80×60, answered in sent pixels
    for bad in (np.array([[0, 0, 170, 120]]), np.array([[5.0, 5, 50, 50]]), np.array([[1, 2, 3]])):
        with pytest.raises(DataError, match="region"):
            handler.answer(frames, None, bad)


@needs_backend
def test_a_pixel_size_makes_the_answer_carry_the_frames_measurements(predictor):
    """mm_per_pixel present: the frame's measurements in mm (downscaled frames: in the sent frame's pixel size);
    absent: none; a bad one is refused with what to send."""
    import cv2

    from usedge.measure import measure
    from usedge.serve.triton import FrameHandler

    frame = np.full((1, 200, 200, 1), 30, np.uint8)
    cv2.ellipse(frame[0], (100, 100), (60, 45), 10, 0, 360, 220, -1)
    handler = FrameHandler(predictor)
    plain = json.loads(handler.answer(frame, None, None)[0])
    assert "measurements" not in plain
    got = json.loads(handler.answer(frame, None, None, np.array([[0.2, 0.2]], np.float32))[0])
    want = {m.name: m for m in measure(predictor(frame[0, :, :, 0]), (0.2, 0.2))}
    names = {m["name"]: m for m in got["measurements"]}
    assert set(names) == set(want) and {m["calibration"]["source"] for m in got["measurements"]} == {"user"}
    for name, m in names.items():
        assert m["value"] == (None if want[name].value is None else pytest.approx(want[name].value, abs=1e-3))
    big = FrameHandler(predictor, max_side=100).answer(frame, None, None, np.array([[0.2, 0.2]], np.float32))
    assert {m["calibration"]["mm_per_px"][0] for m in json.loads(big[0])["measurements"]} == {0.4}
    for bad in (np.array([[0.2]]), np.array([[0.2, -1.0]]), np.array([[np.nan, 0.2]])):
        with pytest.raises(DataError, match="mm_per_pixel"):
            handler.answer(frame, None, None, bad)


@needs_backend
def test_a_frame_above_max_side_is_analysed_downscaled_and_answered_in_its_own_pixels(predictor):
    from usedge.serve.protocol import rescale_result
    from usedge.serve.triton import FrameHandler

    frame = np.random.default_rng(2).integers(0, 255, (1, 300, 400, 3), np.uint8)
    got = _untimed(json.loads(FrameHandler(predictor, max_side=200).answer(frame)[0]))
    small = predictor(__import__("cv2").resize(frame[0], (200, 150), interpolation=__import__("cv2").INTER_AREA))
    assert got["width"] == 400 and got["analysed"] == {"width": 200, "height": 150}
    assert got == json.loads(json.dumps(rescale_result(_json(small), 400, 300)))


@needs_backend
@pytest.mark.parametrize("frames, tasks, message", [
    (np.zeros((1, 40, 40, 3), np.float32), None, "frame dtype is float32"),
    (np.zeros((1, 40, 40, 2), np.uint8), None, "with 1 (grey), 3 (BGR) or 4 (BGRA) channels"),
    (np.zeros((40, 40, 3), np.uint8), None, "expected [batch, height, width, channels]"),
    (np.zeros((1, 1, 40, 3), np.uint8), None, "too small"),
    (np.zeros((1, 40, 40, 3), np.uint8), np.array([[b"\xff\xfenot_a_task"]], dtype=object), "not in this model"),
])
def test_bad_requests_get_a_clear_error(predictor, frames, tasks, message):
    from usedge.serve.triton import FrameHandler

    with pytest.raises((DataError, ConfigError), match=re.escape(message)):
        FrameHandler(predictor).answer(frames, tasks)


@needs_backend
def test_oversized_frames_and_a_bad_request_in_a_batch_are_named(predictor):
    from usedge.serve.triton import FrameHandler

    handler = FrameHandler(predictor, max_pixels=100 * 100)
    good = np.zeros((1, 40, 40, 3), np.uint8)
    with pytest.raises(DataError, match="above the 0.01 MP limit"):
        handler.answer(np.zeros((1, 101, 100, 3), np.uint8))
    with pytest.raises(DataError, match=r"request 2 of 3: frame dtype is int16") as err:
        handler.answer_requests([(good, None), (good.astype(np.int16), None), (good, None)])
    assert "resend them" in err.value.fix
    assert len(handler.answer_requests([(good, None), (good, None)])) == 2        # and it still answers


def test_environment_problem_names_what_is_missing():
    from usedge.serve.triton import environment_problem

    problem = environment_problem()
    if int(np.__version__.split(".")[0]) >= 2:
        assert "numpy" in problem and "own virtual environment" in problem
    try:
        import pytriton  # noqa: F401
    except ImportError:
        assert problem is not None


def test_environment_problem_names_the_architecture_python_and_glibc(monkeypatch):
    import platform
    import sys
    import types

    import usedge.serve.triton as triton

    monkeypatch.setattr(platform, "machine", lambda: "armv7l")
    assert "x86-64 and aarch64 only" in triton.environment_problem()
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(triton, "sys", types.SimpleNamespace(platform="linux", version_info=(3, 14, 0),
                                                            executable=sys.executable))
    assert "Python 3.8-3.13" in triton.environment_problem()
    monkeypatch.setattr(triton, "sys", sys)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.31"))
    assert "glibc >= 2.35" in triton.environment_problem() and "2.31" in triton.environment_problem()


def test_serve_triton_refuses_to_start_where_pytriton_cannot_run(monkeypatch):
    from click.testing import CliRunner

    import usedge.serve.triton as triton
    from usedge.cli.main import cli

    monkeypatch.setattr(triton, "environment_problem", lambda: "PyTriton is not installed: pip install 'usedge[triton]'.")
    res = CliRunner().invoke(cli, ["serve", "--triton"])
    assert res.exit_code != 0 and "cannot start Triton: PyTriton is not installed" in res.output


# -- a real Triton server, from the Triton venv --------------------------------------------------------------


def _triton_python() -> str:
    path = os.environ.get("USEDGE_TRITON_PYTHON") or str(Path(__file__).resolve().parents[2] / ".venv-triton/bin/python")
    if not Path(path).is_file():
        pytest.skip("the Triton venv is missing: `make triton` (usedge[triton] pins numpy < 2, so it has its own venv; "
                    "`make test` makes it)")
    return path


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _wait_ready(url: str, proc: subprocess.Popen, model: str, timeout_s: float = 120.0) -> None:
    import tritonclient.http as http

    client = http.InferenceServerClient(url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}")
        try:
            if client.is_server_ready() and client.is_model_ready(model):
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.5)
    raise AssertionError(f"Triton not ready within {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen) -> str:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stdout.read()


def _close(a, b, path="") -> None:
    """JSON results from two environments (numpy 1 / OpenCV 4.11 in the Triton venv, numpy 2 here): the same
    structure, labels, classes and integers; floats within 1e-6 relative (the gate's distance 1e-4)."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        # the gate's distance sums 2400 features: a batch of other clients' frames moves it in the 6th digit
        rel = 1e-4 if ".gate.scores" in path else 1e-6
        assert a == pytest.approx(b, rel=rel, abs=1e-9), path
    else:
        assert a == b, path


@pytest.fixture(scope="module")
def triton_server():
    """`usedge serve --triton` on 127.0.0.1 and free ports, from the Triton venv."""
    pytest.importorskip("tritonclient.http")
    python = _triton_python()
    http_port, grpc_port, metrics_port = _free_ports(3)
    proc = subprocess.Popen([python, "-m", "usedge.cli.main", "serve", "--triton", "--http-port", str(http_port),
                             "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port), "--max-side", "512"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_ready(f"127.0.0.1:{http_port}", proc, "usedge")
        yield {"http": f"127.0.0.1:{http_port}", "grpc": f"127.0.0.1:{grpc_port}",
               "metrics": f"http://127.0.0.1:{metrics_port}/metrics", "proc": proc}
    finally:
        output = _stop(proc)
    # SIGTERM is a requested stop: exit status 0, said, and no tritonserver left behind
    assert proc.returncode == 0 and "stopped" in output, output[-2000:]


def _infer(client_module, url: str, frame: np.ndarray, tasks: bytes | None = None, dtype: str = "UINT8",
           region: tuple[int, int, int, int] | None = None, mm: tuple[float, float] | None = None) -> dict:
    client = client_module.InferenceServerClient(url)
    inputs = [client_module.InferInput("frame", list(frame.shape), dtype)]
    inputs[0].set_data_from_numpy(frame)
    if tasks is not None:
        inputs.append(client_module.InferInput("tasks", [frame.shape[0], 1], "BYTES"))
        inputs[-1].set_data_from_numpy(np.array([[tasks]] * frame.shape[0], dtype=object))
    if region is not None:
        inputs.append(client_module.InferInput("region", [frame.shape[0], 4], "INT32"))
        inputs[-1].set_data_from_numpy(np.array([region] * frame.shape[0], dtype=np.int32))
    if mm is not None:
        inputs.append(client_module.InferInput("mm_per_pixel", [frame.shape[0], 2], "FP32"))
        inputs[-1].set_data_from_numpy(np.array([mm] * frame.shape[0], dtype=np.float32))
    out = client.infer("usedge", inputs, outputs=[client_module.InferRequestedOutput("result")])
    return [_untimed(json.loads(t)) for t in out.as_numpy("result")[:, 0]]


@needs_backend
@pytest.mark.timeout(300)
def test_triton_answers_over_http_and_grpc_as_the_predictor_does(triton_server, predictor):
    import tritonclient.grpc as grpc
    import tritonclient.http as http

    rng = np.random.default_rng(5)
    frames = rng.integers(0, 255, (2, 240, 320, 3), np.uint8)
    want = [_json(predictor(f)) for f in frames]
    _close(_infer(http, triton_server["http"], frames), want)
    _close(_infer(grpc, triton_server["grpc"], frames), want)
    one = _infer(grpc, triton_server["grpc"], frames[:1, :, :, :1], tasks=b"cardiac_multi")[0]
    _close(one, _json(predictor(frames[0, :, :, 0], tasks=["cardiac_multi"])))
    cropped = _infer(http, triton_server["http"], frames[:1], region=(20, 10, 300, 230))[0]
    _close(cropped, _json(predictor(frames[0], region=(20, 10, 300, 230))))
    measured = _infer(grpc, triton_server["grpc"], frames[:1], tasks=b"fetal_head", mm=(0.3, 0.3))[0]
    assert {m["name"] for m in measured["measurements"]} >= {"HC", "BPD"}
    assert {m["calibration"]["source"] for m in measured["measurements"]} == {"user"}
    big = rng.integers(0, 255, (1, 600, 800, 3), np.uint8)          # above --max-side 512: analysed at 512×384
    answered = _infer(http, triton_server["http"], big)[0]
    assert answered["width"] == 800 and answered["analysed"] == {"width": 512, "height": 384}
    import urllib.request

    metrics = urllib.request.urlopen(triton_server["metrics"], timeout=10).read().decode()
    assert 'nv_inference_request_success{model="usedge",version="1"}' in metrics


@needs_backend
@pytest.mark.timeout(300)
def test_bad_input_over_triton_gets_an_error_and_the_server_serves_on(triton_server):
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    url, good = triton_server["http"], np.zeros((1, 64, 64, 3), np.uint8)
    cases = [(np.zeros((1, 64, 64, 3), np.float32), None, "FP32", "expects 'UINT8'"),      # Triton's own check
             (np.zeros((1, 64, 64, 2), np.uint8), None, "UINT8", "3 (BGR) or 4 (BGRA) channels"),
             (np.zeros((1, 9000, 8000, 1), np.uint8), None, "UINT8", "MP limit"),
             (np.array([[b"\x89PNG garbage"]], dtype=object), None, "BYTES", "expects 'UINT8'"),  # bytes as frame
             (good, b"\xff\xfe\x00garbage", "UINT8", "not in this model")]
    for frame, tasks, dtype, message in cases:
        with pytest.raises(InferenceServerException, match=re.escape(message)):
            _infer(http, url, frame, tasks, dtype)
        assert len(_infer(http, url, good)) == 1                      # and the next request is answered
    assert triton_server["proc"].poll() is None


@needs_backend
@pytest.mark.timeout(300)
def test_the_repositorys_python_model_runs_on_a_real_tritonserver(tmp_path, predictor):
    """`usedge triton-repo` -> PyTriton's own tritonserver binary loads the pre/post model (the tensor models need
    the onnxruntime / openvino backends, which that build does not ship) and answers like the Predictor."""
    pytest.importorskip("tritonclient.http")
    import tritonclient.http as http

    python = _triton_python()
    repo = tmp_path / "repo"
    subprocess.run([python, "-m", "usedge.cli.main", "triton-repo", str(repo)], check=True, capture_output=True)
    site = subprocess.run([python, "-c", "import pytriton, os; print(os.path.dirname(pytriton.__file__))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    server = tmp_path / "tritonserver"
    shutil.copytree(Path(site) / "tritonserver", server, ignore=shutil.ignore_patterns("python_backend_stubs"))
    version = subprocess.run([python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                             check=True, capture_output=True, text=True).stdout.strip()
    shutil.copy(Path(site) / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub",
                server / "backends" / "python")
    libdir = subprocess.run([python, "-c", "from usedge.serve.triton import stub_library_dir as d; print(d() or '')"],
                            check=True, capture_output=True, text=True).stdout.strip()
    libs = [p for p in (libdir, str(Path(site).parent / "nvidia_pytriton.libs")) if p]
    env = {**os.environ, "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}",
           "LD_LIBRARY_PATH": os.pathsep.join(libs)}
    http_port, grpc_port, metrics_port = _free_ports(3)
    proc = subprocess.Popen([str(server / "bin" / "tritonserver"), "--model-repository", str(repo),
                             "--backend-directory", str(server / "backends"), "--model-control-mode", "explicit",
                             "--load-model", "usedge", "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1",
                             "--http-port", str(http_port), "--grpc-port", str(grpc_port),
                             "--metrics-port", str(metrics_port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_ready(f"127.0.0.1:{http_port}", proc, "usedge")
        frame = np.random.default_rng(6).integers(0, 255, (1, 200, 260, 3), np.uint8)
        _close(_infer(http, f"127.0.0.1:{http_port}", frame)[0], _json(predictor(frame[0])))
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException, match="channels"):
            _infer(http, f"127.0.0.1:{http_port}", np.zeros((1, 20, 20, 2), np.uint8))
    finally:
        _stop(proc)


def test_a_busy_port_is_refused_at_once():
    from usedge.serve.triton import TritonServeConfig, _check_ports

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        free = _free_ports(2)
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port} \\(--grpc-port\\)"):
            _check_ports(TritonServeConfig(http_port=free[0], grpc_port=port, metrics_port=free[1]))
    with pytest.raises(ConfigError, match="must differ"):
        _check_ports(TritonServeConfig(http_port=free[0], grpc_port=free[0], metrics_port=free[1]))


def test_ready_means_the_model_answers():
    """Issue 26, class 7: /v2/health/ready answered 200 before the model existed (the first request then got
    "unknown model 'usedge'"; 3 of 3 starts when polled every 10 ms). An orchestrator routes traffic on ready."""
    import json
    import urllib.error
    import urllib.request

    python = _triton_python()
    http_port, grpc_port, metrics_port = _free_ports(3)
    proc = subprocess.Popen([python, "-m", "usedge.cli.main", "serve", "--triton", "--http-port", str(http_port),
                             "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "Triton did not become ready"
            try:
                with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.01)
        frame = np.zeros((1, 64, 64, 3), np.uint8)                      # at once, on the first ready
        body = {"inputs": [{"name": "frame", "shape": list(frame.shape), "datatype": "UINT8",
                            "data": frame.ravel().tolist()}]}
        req = urllib.request.Request(f"{base}/v2/models/usedge/infer", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            out = json.loads(r.read())
        assert r.status == 200 and out["outputs"][0]["name"] == RESULT_OUTPUT
    finally:
        _stop(proc)
