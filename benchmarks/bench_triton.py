"""Concurrent clients against `usedge serve` (WebSocket) and `usedge serve --triton` (Triton over gRPC and HTTP),
side by side in one run: N clients each sending the real echo cine's 640×480 BGR frames (raw pixels, the same
bytes to both servers) at a fixed rate for a bounded time, one frame in flight per client; a tick that comes while
the previous frame is still in flight is dropped (counted). Each server runs in its own process, one at a time
(Triton from the Triton venv: `make triton`); the packaged default bundle, all 27 tasks, every mask's contours in
the JSON.

    python benchmarks/bench_triton.py [--clients 4] [--fps 30] [--seconds 8] [--rounds 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def echo_frames(n: int = 60) -> list[np.ndarray]:
    from usedge.data.dicom import open_dicom
    from usedge.stream import echo_cine_path

    return [f.image for _, f in zip(range(n), open_dicom(echo_cine_path()))]


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited: {proc.stdout.read()[-2000:]}")
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"{url} not ready in {timeout_s} s")


def start_websocket(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "usedge.cli.main", "serve", "--port", str(port), "--token", TOKEN,
                             "--max-clients", "16", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return proc


def start_triton(python: str, http_port: int, grpc_port: int, metrics_port: int) -> subprocess.Popen:
    proc = subprocess.Popen([python, "-m", "usedge.cli.main", "serve", "--triton", "--http-port", str(http_port),
                             "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_http(f"http://127.0.0.1:{http_port}/v2/models/usedge/ready", proc)
    return proc


def paced(send, fps: float, seconds: float, warmup_s: float, out: dict) -> None:
    """Call ``send(i)`` at ``fps``; one in flight; late ticks are dropped, not bunched."""
    rtts, sent, dropped = [], 0, 0
    t_start = time.monotonic()
    next_t, period = t_start, 1.0 / fps
    while (now := time.monotonic()) < t_start + seconds:
        if now < next_t:
            time.sleep(next_t - now)
        late = int((time.monotonic() - next_t) // period)
        if late > 0:
            dropped += late
            next_t += late * period
        next_t += period
        t0 = time.perf_counter()
        send(sent)
        if time.monotonic() - t_start >= warmup_s:
            rtts.append((time.perf_counter() - t0) * 1e3)
        sent += 1
    out.update(sent=sent, dropped=dropped, rtts=rtts)


def websocket_client(port: int, frames: list[bytes], fps: float, seconds: float, warmup_s: float, out: dict) -> None:
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {TOKEN}"},
                 max_size=1 << 26) as ws:
        def send(i: int) -> None:
            ws.send(frames[i % len(frames)])
            msg = json.loads(ws.recv(timeout=10))
            if "result" not in msg:
                raise RuntimeError(msg)
        paced(send, fps, seconds, warmup_s, out)


def triton_client(kind: str, url: str, frames: list[np.ndarray], fps: float, seconds: float, warmup_s: float,
                  out: dict) -> None:
    if kind == "grpc":
        import tritonclient.grpc as tc
    else:
        import tritonclient.http as tc
    client = tc.InferenceServerClient(url)

    def send(i: int) -> None:
        frame = frames[i % len(frames)][None]
        inp = tc.InferInput("frame", list(frame.shape), "UINT8")
        inp.set_data_from_numpy(frame)
        result = client.infer("usedge", [inp], outputs=[tc.InferRequestedOutput("result")])
        json.loads(result.as_numpy("result")[0, 0])

    paced(send, fps, seconds, warmup_s, out)


def run_row(target, n: int, args) -> dict:
    results = [{} for _ in range(n)]
    threads = [threading.Thread(target=target, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rtts = np.concatenate([np.asarray(r["rtts"]) for r in results])
    measured = args.seconds - args.warmup
    return {"p50_ms": float(np.percentile(rtts, 50)), "p99_ms": float(np.percentile(rtts, 99)),
            "answered_per_s": len(rtts) / measured, "sent": sum(r["sent"] for r in results),
            "dropped": sum(r["dropped"] for r in results)}


def main() -> None:
    from usedge.serve.protocol import encode_raw

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--triton-python", default=os.environ.get("USEDGE_TRITON_PYTHON",
                                                               str(ROOT / ".venv-triton/bin/python")))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    frames = echo_frames()
    raw = [encode_raw(f) for f in frames]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.clients} clients × "
          f"{args.fps:g} frames/s, {args.seconds:g} s per row (first {args.warmup:g} s not timed); echo cine 640×480 "
          f"BGR raw; packaged default bundle, 27 tasks")
    print("| server | protocol | round | round trip p50 ms | p99 ms | answered frames/s | sent | dropped ticks |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for rnd in range(1, args.rounds + 1):
        port, = free_ports(1)
        proc = start_websocket(port)
        try:
            row = run_row(lambda r, p=port: websocket_client(p, raw, args.fps, args.seconds, args.warmup, r),
                          args.clients, args)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        rows.append({"server": "usedge serve", "protocol": "WebSocket", "round": rnd, **row})
        print(_line(rows[-1]), flush=True)
        http_port, grpc_port, metrics_port = free_ports(3)
        proc = start_triton(args.triton_python, http_port, grpc_port, metrics_port)
        try:
            for kind, url in (("grpc", f"127.0.0.1:{grpc_port}"), ("http", f"127.0.0.1:{http_port}")):
                row = run_row(lambda r, k=kind, u=url: triton_client(k, u, frames, args.fps, args.seconds,
                                                                     args.warmup, r), args.clients, args)
                rows.append({"server": "usedge serve --triton", "protocol": kind.upper(), "round": rnd, **row})
                print(_line(rows[-1]), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def _line(r: dict) -> str:
    return (f"| {r['server']} | {r['protocol']} | {r['round']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['answered_per_s']:.1f} | {r['sent']} | {r['dropped']} |")


if __name__ == "__main__":
    main()
