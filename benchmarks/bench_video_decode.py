"""Video-file decoding: PyAV (what ``usedge.data.video`` uses for files, ``usedge[cpu]``) against OpenCV's reader
(the fallback without PyAV), frames per second on the same clips, rounds interleaved in one run (this VM's speed
drifts: only the ratio measured side by side means anything). Each reader is opened and closed per round.

    python benchmarks/bench_video_decode.py [--frames 300] [--rounds 3]
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def write_clip(path: Path, fourcc: str, size: tuple[int, int], frames: int) -> Path:
    w, h = size
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 30, (w, h))
    base = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.uint8), (0, 0), 3)
    for i in range(frames):
        img = np.roll(base, i, axis=1)
        writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def read_all(capture) -> int:
    n = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        n += 1
    capture.release()
    return n


def main() -> None:
    from usedge._cpu import cpu_isa
    from usedge.data.video import _AvCapture

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    readers = {"PyAV": _AvCapture, "OpenCV": lambda p: cv2.VideoCapture(p)}
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {cpu_isa()}")
    print("| clip | reader | fps (per round) | median fps | ratio to OpenCV |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        clips = {f"{fc} {w}x{h}": write_clip(Path(tmp) / f"{fc}-{w}.{ext}", fc, (w, h), args.frames)
                 for fc, ext in (("mp4v", "mp4"), ("MJPG", "avi")) for w, h in ((640, 480), (1024, 768))}
        for name, path in clips.items():
            fps = {r: [] for r in readers}
            for _ in range(args.rounds):
                for reader, make in readers.items():
                    start = time.perf_counter()
                    n = read_all(make(str(path)))
                    fps[reader].append(n / (time.perf_counter() - start))
                    assert n == args.frames, (reader, n)
            med = {r: float(np.median(v)) for r, v in fps.items()}
            for reader in readers:
                per = ", ".join(f"{v:.0f}" for v in fps[reader])
                print(f"| {name} | {reader} | {per} | {med[reader]:.0f} | {med[reader] / med['OpenCV']:.2f} |")


if __name__ == "__main__":
    main()
