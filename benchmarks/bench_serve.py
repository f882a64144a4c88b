"""Concurrent `usedge serve` clients on loopback: N clients each sending 30 frames/s (JPEG, 256² phantom),
round-trip p50/p99 and answered fraction per N, side by side in one run. How many clients fit before p99
exceeds one frame interval (33 ms)?

Usage:
    python benchmarks/bench_serve.py [--bundle out/bundle] [--clients 1,2,3,4] [--seconds 6] [--fps 30]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time

import cv2
import numpy as np

TOKEN = "bench-token"


def start(bundle: str, max_clients: int):
    import uvicorn

    import usedge
    from usedge.serve import ServeConfig, create_app, uvicorn_config

    predictor = usedge.load(bundle)
    config = ServeConfig(token=TOKEN, port=0, warmup=3, max_clients=max_clients)
    server = uvicorn.Server(uvicorn_config(create_app(predictor, config), config, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, "127.0.0.1:%d" % server.servers[0].sockets[0].getsockname()[1], repr(predictor)


def frames(n: int = 60) -> list[bytes]:
    from usedge.data.phantom.cine import iter_cine

    return [cv2.imencode(".jpg", s.image)[1].tobytes() for s in iter_cine("fetal_head", n, 0, 256)]


def client(addr: str, data: list[bytes], fps: float, seconds: float, out: dict) -> None:
    """Send at ``fps`` (never more than one frame in flight beyond the pace); record round trips."""
    from websockets.sync.client import connect

    rtts, sent, answered = [], 0, 0
    with connect(f"ws://{addr}/ws", additional_headers={"Authorization": f"Bearer {TOKEN}"}, max_size=1 << 24) as ws:
        t_end = time.monotonic() + seconds
        next_t = time.monotonic()
        while time.monotonic() < t_end:
            time.sleep(max(0.0, next_t - time.monotonic()))
            next_t += 1.0 / fps
            t0 = time.perf_counter()
            ws.send(data[sent % len(data)])
            sent += 1
            msg = json.loads(ws.recv(timeout=5))
            if "result" in msg:
                answered += 1
                rtts.append((time.perf_counter() - t0) * 1e3)
    out.update(sent=sent, answered=answered, rtts=rtts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="out/bundle")
    ap.add_argument("--clients", default="1,2,3,4")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--fps", type=float, default=30.0)
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    server, addr, desc = start(args.bundle, max(counts))
    data = frames()
    print(f"{desc}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores; loopback; "
          f"{args.fps:g} frames/s per client, {args.seconds:g} s per row, JPEG 256² phantom")
    print("| clients | round trip p50 ms | p99 ms | answered / sent | p99 within one frame interval |")
    print("|---|---|---|---|---|")
    try:
        for n in counts:
            results = [{} for _ in range(n)]
            threads = [threading.Thread(target=client, args=(addr, data, args.fps, args.seconds, r)) for r in results]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rtts = np.concatenate([np.asarray(r["rtts"][3:]) for r in results])
            p50, p99 = np.percentile(rtts, [50, 99])
            sent, answered = sum(r["sent"] for r in results), sum(r["answered"] for r in results)
            print(f"| {n} | {p50:.1f} | {p99:.1f} | {answered} / {sent} | {'yes' if p99 <= 1000 / args.fps else 'no'} |",
                  flush=True)
    finally:
        server.should_exit = True


if __name__ == "__main__":
    main()
