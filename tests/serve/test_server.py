"""``usedge serve`` end to end: a real uvicorn server on a free loopback port (background thread) with the tiny
real bundle; every network wait is bounded."""
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from usedge.serve import protocol as p  # noqa: E402

TOKEN = "test-token-0123456789"
WAIT_S = 30.0
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def predictor(bundle_dir):
    import usedge

    pred = usedge.load(bundle_dir)
    yield pred
    pred.close()


@contextlib.contextmanager
def running(predictor, **overrides):
    """A served app on 127.0.0.1:<free port>; yields "127.0.0.1:port"."""
    import uvicorn

    from usedge.serve import ServeConfig, create_app, uvicorn_config

    config = ServeConfig(token=TOKEN, port=0, warmup=0, **overrides)
    server = uvicorn.Server(uvicorn_config(create_app(predictor, config), config, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield "127.0.0.1:%d" % server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(WAIT_S)


@pytest.fixture(scope="module")
def addr(predictor):
    with running(predictor, max_clients=3, max_message_bytes=256 * 1024) as a:
        yield a


def client(addr, headers=AUTH, query=""):
    return connect(f"ws://{addr}/ws{query}", additional_headers=headers, open_timeout=WAIT_S, close_timeout=5,
                   max_size=16 * 1024 * 1024)


def frame(seed=0, size=64):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (size, size), dtype=np.uint8), (7, 7), 0)
    cv2.circle(img, (size // 2, size // 2), size // 4, 200, -1)
    return img


def jpeg(img):
    return cv2.imencode(".jpg", img)[1].tobytes()


def recv_json(ws):
    msg = ws.recv(timeout=WAIT_S)
    assert isinstance(msg, str), f"expected a JSON text message, got {len(msg)} binary bytes"
    return json.loads(msg)


def close_code(ws):
    """Read until the server closes; its close code."""
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(10):
            ws.recv(timeout=WAIT_S)
    return info.value.rcvd.code if info.value.rcvd is not None else None


def http(addr, path, headers=None):
    req = urllib.request.Request(f"http://{addr}{path}", headers=headers or {})
    with urllib.request.urlopen(req, timeout=WAIT_S) as resp:
        return resp.status, json.loads(resp.read())


def check_result(msg, seq, w=64, h=64):
    assert "error" not in msg, msg
    assert msg["frame"] == seq
    assert msg["result"]["width"] == w and msg["result"]["height"] == h
    assert set(msg["result"]["tasks"]) == {"fetal_head", "cardiac_multi", "organ_cls", "thyroid_nodule_det", "FUGC"}
    assert "contours" not in msg["result"]["tasks"]["fetal_head"]
    assert msg["latency_ms"]["server"] > 0 and msg["latency_ms"]["infer"] > 0
    assert msg["dropped"] >= 0


# -- auth and limits ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers,query", [({}, ""), ({"Authorization": "Bearer wrong"}, ""), ({}, "?token=nope"),
                                           ({"Authorization": f"Basic {TOKEN}"}, "")])
def test_refuses_missing_or_wrong_token(addr, headers, query):
    with client(addr, headers, query) as ws:
        assert close_code(ws) == p.CLOSE_POLICY


def test_token_in_query_parameter_and_raw_frames(addr):
    img = frame(1)
    with client(addr, headers={}, query=f"?token={TOKEN}") as ws:
        ws.send(p.encode_raw(img))
        check_result(recv_json(ws), 0)
        ws.send(p.encode_raw(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)))          # BGR raw
        check_result(recv_json(ws), 1)
        ws.send(p.encode_raw(img.astype(np.uint16) * 256))                     # 16-bit raw
        check_result(recv_json(ws), 2)


def test_jpeg_and_png_frames(addr):
    with client(addr) as ws:
        ws.send(jpeg(frame(2)))
        check_result(recv_json(ws), 0)
        ws.send(cv2.imencode(".png", frame(3, 80))[1].tobytes())
        check_result(recv_json(ws), 1, 80, 80)


def test_oversized_message_gets_an_error_and_1009(addr):
    with client(addr) as ws:
        ws.send(b"USR1" + bytes(300 * 1024))
        msg = recv_json(ws)
        assert "above the 262144-byte limit" in msg["error"] and "--max-message-mb" in msg["fix"]
        assert close_code(ws) == p.CLOSE_TOO_BIG


def test_survives_garbage(addr):
    with client(addr) as ws:
        bad = [b"\x00garbage", p.JPEG_MAGIC + b"\x00" * 40, b"USR1\x01", p.encode_raw(frame())[:-5],
               jpeg(frame())[:200]]
        for seq, data in enumerate(bad):
            ws.send(data)
            msg = recv_json(ws)
            assert msg["frame"] == seq and msg["error"], msg
        ws.send("{not json")
        assert "not JSON" in recv_json(ws)["error"]
        ws.send('{"tasks": ["no_such_task"]}')
        assert "not in this model" in recv_json(ws)["error"]
        ws.send(jpeg(frame(4)))
        check_result(recv_json(ws), len(bad))


def test_client_cap_refuses_with_1013(predictor):
    with running(predictor, max_clients=1) as a:
        with client(a) as first:
            first.send(jpeg(frame()))
            check_result(recv_json(first), 0)
            with client(a) as second:
                assert close_code(second) == p.CLOSE_TRY_LATER
        deadline = time.monotonic() + WAIT_S                   # the slot frees once the server sees the close
        while True:
            with client(a) as third:
                third.send(jpeg(frame()))
                try:
                    check_result(recv_json(third), 0)
                    break
                except ConnectionClosed:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        assert http(a, "/metrics", AUTH)[1]["clients"]["refused_busy"] == 1


# -- behaviour ----------------------------------------------------------------------------------------------
def test_two_clients_concurrently(addr):
    n, out, errors = 6, {}, []

    def one(name, seed):
        try:
            with client(addr) as ws:
                ws.send('{"tasks": ["organ_cls"]}')
                assert recv_json(ws)["options"]["tasks"] == ["organ_cls"]
                got = []
                for i in range(n):
                    ws.send(jpeg(frame(seed + i)))
                    msg = recv_json(ws)
                    assert list(msg["result"]["tasks"]) == ["organ_cls"]
                    got.append(msg["frame"])
                out[name] = got
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(k, 10 * k)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * WAIT_S)
    assert not errors, errors
    assert out == {0: list(range(n)), 1: list(range(n))}


def test_burst_drops_old_frames_and_keeps_the_newest(addr):
    n = 25
    with client(addr) as ws:
        for i in range(n):
            ws.send(p.encode_raw(frame(i)))
        seen = []
        while not seen or seen[-1]["frame"] != n - 1:
            seen.append(recv_json(ws))
        frames = [m["frame"] for m in seen]
        assert frames == sorted(frames) and all("error" not in m for m in seen)
        assert len(seen) + seen[-1]["dropped"] == n


def test_overlay_and_contours_on_request(addr):
    with client(addr) as ws:
        ws.send('{"overlay": true, "contours": true, "tasks": ["fetal_head"]}')
        assert recv_json(ws)["options"] == {"tasks": ["fetal_head"], "overlay": True, "contours": True,
                                            "measure": False, "mm_per_pixel": None}
        ws.send(jpeg(frame(5)))
        msg = recv_json(ws)
        assert "contours" in msg["result"]["tasks"]["fetal_head"]
        overlay = ws.recv(timeout=WAIT_S)
        assert isinstance(overlay, bytes) and overlay[:3] == p.JPEG_MAGIC
        assert cv2.imdecode(np.frombuffer(overlay, np.uint8), cv2.IMREAD_COLOR).shape == (64, 64, 3)


def test_measurements_on_request_in_mm_and_tracked_over_the_connection(addr):
    with client(addr) as ws:
        ws.send('{"measure": true, "mm_per_pixel": 0.25, "tasks": ["fetal_head"]}')
        assert recv_json(ws)["options"]["mm_per_pixel"] == [0.25, 0.25]
        for seq in range(3):
            ws.send(jpeg(frame(seq)))
            msg = recv_json(ws)
        got = {m["name"]: m for m in msg["result"]["measurements"]}
        assert set(got) >= {"HC", "BPD", "OFD", "CI", "GA_HC"}
        assert got["HC"]["unit"] == "mm" and got["HC"]["calibration"] == {"source": "user", "mm_per_px": [0.25, 0.25]}
        assert msg["result"]["tracked"]["HC"]["seen"] == 3
        ws.send('{"mm_per_pixel": [0.5, 1.0]}')
        recv_json(ws)
        ws.send('{"mm_per_pixel": "wide"}')
        assert "mm_per_pixel" in recv_json(ws)["error"]


def test_each_frame_carries_the_gate_and_a_frozen_screen_is_rejected(addr):
    with client(addr) as ws:
        ws.send('{"tasks": ["fetal_head"]}')
        recv_json(ws)
        still = jpeg(frame(7))
        gates = []
        for _ in range(7):
            ws.send(still)
            gates.append(recv_json(ws)["result"]["gate"])
    assert all("accepted" in g and "scores" in g for g in gates)
    frozen = [any("frozen screen" in r for r in g["reasons"]) for g in gates]
    assert frozen == [False] * 5 + [True] * 2 and not gates[-1]["accepted"]


def test_health_and_metrics(addr, predictor):
    status, health = http(addr, "/health")
    assert status == 200 and health == {"status": "ok", "backend": predictor.choice.backend,
                                        "precision": predictor.choice.precision, "tasks": list(predictor.tasks)}
    with client(addr) as ws:
        ws.send(jpeg(frame()))
        recv_json(ws)
        _, m = http(addr, "/metrics", AUTH)
        assert m["clients"]["connected"] >= 1
    assert m["frames_in"] >= 1 and m["frames_out"] >= 1 and "dropped" in m
    assert {"p50", "p95", "p99"} <= set(m["latency_ms"]["end_to_end"])
    assert m["clients"]["max"] == 3
    _, m2 = http(addr, f"/metrics?token={TOKEN}")
    assert m2["frames_out"] >= m["frames_out"]
    with pytest.raises(urllib.error.HTTPError) as info:
        http(addr, "/metrics")
    assert info.value.code == 401


# -- the example client and the CLI -------------------------------------------------------------------------
def test_example_client(addr, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "stream_client.py"
    spec = importlib.util.spec_from_file_location("stream_client", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for extra in ([], ["--raw", "--tasks", "organ_cls"]):
        assert mod.main(["phantom", "--url", f"ws://{addr}/ws", "--token", TOKEN, "--frames", "3", *extra]) == 0
        out = capsys.readouterr().out
        assert "frame 2: rtt" in out and "3 frames; round trip p50" in out and "error" not in out


def test_cli_help_and_bad_options():
    from click.testing import CliRunner

    from usedge.cli.serve import serve

    runner = CliRunner()
    res = runner.invoke(serve, ["--help"])
    assert res.exit_code == 0 and "--max-message-mb" in res.output and "USEDGE_TOKEN" in res.output
    assert runner.invoke(serve, ["--max-clients", "0"]).exit_code == 2
    assert runner.invoke(serve, ["--port", "70000"]).exit_code == 2


def test_a_huge_frame_is_analysed_downscaled_and_answered_in_its_own_pixels(predictor):
    """max_side bounds what one frame costs: the Predictor never sees more than max_side per side, and the
    answer is in the pixels of the frame as sent (boxes, points, mask shape), with the analysed size stated."""
    seen = []

    class Spy:
        tasks, choice = predictor.tasks, predictor.choice

        def select(self, tasks):
            return predictor.select(tasks)

        def __call__(self, image, tasks=None):
            seen.append(image.shape)
            return predictor(image, tasks=tasks)

    big = cv2.resize(frame(7, 64), (3000, 1800), interpolation=cv2.INTER_LINEAR)
    with running(Spy(), max_side=300) as a, client(a) as ws:
        ws.send(jpeg(big))
        msg = recv_json(ws)
        small = predictor(cv2.resize(big, (300, 180), interpolation=cv2.INTER_AREA)).to_json(contours=False)
    check_result(msg, 0, 3000, 1800)
    assert max(seen[0][:2]) <= 300 and msg["result"]["analysed"] == {"width": 300, "height": 180}
    res = msg["result"]["tasks"]
    assert res["fetal_head"]["mask_shape"] == [1800, 3000]
    x0, y0, x1, y1 = res["thyroid_nodule_det"]["bbox_pixels"]
    assert 0 <= x0 <= x1 <= 3000 and 0 <= y0 <= y1 <= 1800
    # the same frame analysed at 300 px gives the same normalised answer
    np.testing.assert_allclose(res["thyroid_nodule_det"]["bbox_normalized"],
                               small["tasks"]["thyroid_nodule_det"]["bbox_normalized"], atol=0.02)


def test_a_downscaled_frame_is_measured_in_the_sent_frames_pixel_size():
    """The packaged default on a phantom head sent at 2560 px and analysed at 256: lengths in the sent frame's
    pixel size (mm) or pixels, not the analysed copy's."""
    import usedge
    from usedge.data.phantom import generate_sample, sample_rng
    from usedge.measure import measure

    predictor = usedge.load(tasks="fetal_head")
    head = generate_sample("fetal_head", sample_rng(4242, "val", "fetal_head", 0)).image
    big = cv2.resize(head, (2560, 2560), interpolation=cv2.INTER_LINEAR)
    with predictor, running(predictor, max_side=256) as a, client(a) as ws:
        ws.send('{"measure": true, "mm_per_pixel": 0.1, "tasks": ["fetal_head"]}')
        recv_json(ws)
        ws.send(jpeg(big))
        msg = recv_json(ws)
        ws.send('{"mm_per_pixel": null}')
        recv_json(ws)
        ws.send(jpeg(big))
        px = recv_json(ws)
        small = predictor(cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA), tasks=["fetal_head"])
    hc = {m["name"]: m for m in msg["result"]["measurements"]}["HC"]
    hc_px = {m["name"]: m for m in px["result"]["measurements"]}["HC"]
    want = measure(small, None, ["HC"])[0].value
    assert hc["calibration"]["mm_per_px"] == [1.0, 1.0]                   # 0.1 mm per sent px x 10
    assert hc["unit"] == "mm" and hc["value"] == pytest.approx(want, rel=0.01)
    assert hc_px["unit"] == "px" and hc_px["value"] == pytest.approx(want * 10, rel=0.01)   # the sent frame's px


# -- issue 26, class 7 ----------------------------------------------------------------------------------------
def test_an_idle_client_is_closed_and_its_slot_freed(predictor):
    """One token holder answering pings held every slot for as long as it liked."""
    with running(predictor, max_clients=1, idle_timeout_s=0.5) as a:
        with client(a) as idle:
            assert close_code(idle) == p.CLOSE_IDLE                  # sent nothing: closed after ~0.5 s
        with client(a) as next_one:                                  # and the one slot is free again
            next_one.send(jpeg(frame()))
            check_result(recv_json(next_one), 0)
        assert http(a, "/metrics", AUTH)[1]["clients"]["closed_idle"] >= 1


def test_a_token_in_the_query_never_reaches_the_log_in_clear(predictor):
    """uvicorn logged "GET /metrics?token=..." and "WebSocket /ws?token=..." with the token in clear."""
    import logging

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.lines = []

        def emit(self, record):
            self.lines.append(self.format(record))

    keep = Keep()
    with running(predictor) as a:
        loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:                       # uvicorn's own handlers do not propagate: listen on them directly
            lg.setLevel(logging.INFO)
            lg.addHandler(keep)
        try:
            assert http(a, f"/metrics?token={TOKEN}")[0] == 200
            with client(a, headers={}, query=f"?token={TOKEN}") as ws:
                ws.send(jpeg(frame()))
                check_result(recv_json(ws), 0)
            time.sleep(0.2)
        finally:
            for lg, level in zip(loggers, levels):
                lg.removeHandler(keep)
                lg.setLevel(level)
    assert any("token=***" in line for line in keep.lines), keep.lines     # the requests were logged ...
    assert not any(TOKEN in line for line in keep.lines), keep.lines       # ... without the token


def test_a_client_sending_its_headers_slowly_is_closed(predictor):
    """Issue 26, class 7: a client sending its request head at 1 byte/s was never closed (slowloris); every byte
    reset uvicorn's keep-alive timer. A normal request on the same server is unaffected."""
    import socket

    with running(predictor, head_timeout_s=0.6) as a:
        host, port = a.split(":")
        t0 = time.monotonic()
        with socket.create_connection((host, int(port)), timeout=5) as s:
            closed_after = None
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
                try:
                    s.sendall(bytes([byte]))
                    time.sleep(0.1)
                    s.setblocking(False)
                    try:
                        if s.recv(1) == b"":
                            closed_after = time.monotonic() - t0
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        s.setblocking(True)
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.monotonic() - t0
                    break
        assert closed_after is not None and 0.5 < closed_after < 2.5          # closed at the deadline, not served
        assert http(a, "/health")[0] == 200                                    # a whole head in time is served
    with pytest.raises(Exception, match="head_timeout_s must be a number of seconds"):
        running(predictor, head_timeout_s=-1).__enter__()
