"""A minimal ``usedge serve`` client: read a video / DICOM cine / the phantom, send JPEG frames, print results.

    usedge serve --bundle out/bundle --token s3cret &              # in another terminal
    python examples/stream_client.py phantom --token s3cret --frames 100
    python examples/stream_client.py scan.dcm --url ws://127.0.0.1:8765/ws --raw

Needs ``usedge`` (for reading frames: usedge.stream.open_source) and ``websockets`` (the serve extra).
A scanner written in C/C++/C#/Java does the same: open a WebSocket with ``Authorization: Bearer <token>``,
send one binary message per frame, read one JSON text message per processed frame (docs/serve.md).

Each frame is sent and its answer awaited (stop-and-wait), so the printed round trip is one frame's
network + decode + inference time. A live scanner would rather send frames as they come and let the server
drop stale ones (latest frame wins; ``dropped`` in the answers says how many).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import cv2
import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from usedge.serve.protocol import encode_raw
from usedge.stream import open_source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="'phantom', 'echo', a video / DICOM / image-folder path or a camera index")
    ap.add_argument("--url", default="ws://127.0.0.1:8765/ws")
    ap.add_argument("--token", default=os.environ.get("USEDGE_TOKEN"), help="default: $USEDGE_TOKEN")
    ap.add_argument("--frames", type=int, default=50, help="frames to send (default 50)")
    ap.add_argument("--tasks", default=None, help="comma-separated tasks (default: all of the model's)")
    ap.add_argument("--raw", action="store_true", help="send raw pixels (b'USR1' header) instead of JPEG")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    args = ap.parse_args(argv)
    if not args.token:
        ap.error("pass --token or set USEDGE_TOKEN (usedge serve prints the token it generated).")

    source = open_source(args.source)
    source.open()
    rtts: list[float] = []
    try:
        _send_frames(args, source, rtts)
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        print(f"server closed the connection: {code} {reason}".rstrip(), file=sys.stderr)
        return 1
    finally:
        source.close()
    if rtts:
        p50, p95 = np.percentile(rtts, [50, 95])
        print(f"{len(rtts)} frames; round trip p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    return 0


def _send_frames(args: argparse.Namespace, source, rtts: list[float]) -> None:
    with connect(args.url, additional_headers={"Authorization": f"Bearer {args.token}"},
                 open_timeout=10, max_size=64 << 20) as ws:
        if args.tasks:
            ws.send(json.dumps({"tasks": args.tasks.split(",")}))
            print("options:", ws.recv(timeout=10))
        for n in range(args.frames):
            frame = source.read()
            if frame is None:
                break
            data = encode_raw(frame.image) if args.raw else _jpeg(frame.image, args.quality)
            t0 = time.perf_counter()
            ws.send(data)
            msg = json.loads(ws.recv(timeout=30))
            rtts.append((time.perf_counter() - t0) * 1e3)
            print(_line(n, msg, rtts[-1]))


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    if image.dtype != np.uint8:                          # JPEG is 8 bit: scale deeper pixels down
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _line(n: int, msg: dict, rtt_ms: float) -> str:
    if "error" in msg:
        return f"frame {n}: error: {msg['error']}"
    parts = []
    for name, task in msg["result"]["tasks"].items():
        if "label" in task:
            parts.append(f"{name}={task['label']} {max(task['predicted_probs']):.2f}")
        elif "area_pixels" in task:
            parts.append(f"{name} area={sum(task['area_pixels'].values())}")
        elif "score" in task:
            parts.append(f"{name} box score={task['score']:.2f}")
        else:
            parts.append(f"{name} {len(task.get('predicted_points_pixels', [])) // 2} points")
    server = msg["latency_ms"].get("server", float("nan"))
    head = f"frame {msg['frame']}: rtt {rtt_ms:.1f} ms (server {server:.1f} ms), dropped {msg['dropped']}"
    return head + ": " + "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
