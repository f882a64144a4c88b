"""Lossless throughput on the 120-frame SonoSite echo cine (pydicom-data): the frame-by-frame loop a user
writes first, against ``usedge.stream.Stream`` in lossless mode (decoding on the capture thread, inference and
mask decoding on the inference thread, sinks on the caller's), frame by frame and batched (``batch=N`` /
``usedge stream --lossless --batch N``).

Each row does the same work per frame: decode the DICOM frame, predict all 27 tasks with the packaged default
bundle, decode every mask; with ``overlay`` also draw every result and write it to a video. The timer starts
once the predictor is open (the first frame's decode is timed). One process per row, rows interleaved over
``--rounds`` rounds.

    python benchmarks/bench_stream_batch.py [--rounds 2] [--batches 1,4,8] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

ROW = r'''
import json, sys, tempfile, time
import usedge
from usedge.data.dicom import open_dicom
from usedge.stream import DicomSource, Stream, VideoSink, draw, echo_cine_path

mode, sink = sys.argv[1], sys.argv[2] == "overlay"
path = echo_cine_path()
with tempfile.TemporaryDirectory() as tmp:
    predictor = usedge.load()
    predictor(next(iter(open_dicom(path))))                     # warm-up, as Stream's first frames are
    if mode == "loop":
        import cv2
        writer = cv2.VideoWriter(tmp + "/o.avi", cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480)) if sink else None
        t, n = time.perf_counter(), 0
        for frame in open_dicom(path):
            result = predictor(frame)
            for r in result.tasks.values():
                getattr(r, "mask", None)
            if writer is not None:
                writer.write(draw(frame.image, result))
            n += 1
        dt = time.perf_counter() - t
        if writer is not None:
            writer.release()
    else:
        sinks = [VideoSink(tmp + "/o.avi", fps=30)] if sink else []
        s = Stream(DicomSource(path), predictor, mode="lossless", batch=int(mode), sinks=sinks, warmup=0)
        t = time.perf_counter()
        n = sum(1 for _ in s)
        dt = time.perf_counter() - t
        s.close()
    predictor.close()
print(json.dumps({"frames": n, "fps": n / dt}))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batches", default="1,4,8")
    ap.add_argument("--json")
    args = ap.parse_args()
    modes = ["loop"] + args.batches.split(",")
    res: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for sink in ("none", "overlay"):
            for mode in modes:
                out = subprocess.run([sys.executable, "-c", ROW, mode, sink], capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"row {mode} {sink} failed:\n{out.stderr[-2000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                res.setdefault((sink, mode), []).append(r["fps"])
                print(sink, mode, f"{r['fps']:.1f} frames/s ({r['frames']} frames)", flush=True)
    head = ["sinks", "frame-by-frame loop"] + [f"Stream batch {b}" for b in args.batches.split(",")]
    print("\n| " + " | ".join(head) + " | best Stream / loop |\n|" + "---|" * (len(head) + 1))
    for sink in ("none", "overlay"):
        loop = res[(sink, "loop")]
        cells = [", ".join(f"{v:.1f}" for v in res[(sink, m)]) for m in modes]
        ratios = [max(res[(sink, m)][i] for m in modes[1:]) / loop[i] for i in range(args.rounds)]
        print(f"| {sink} | " + " | ".join(cells) + f" | {min(ratios):.2f}–{max(ratios):.2f}× |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{k[0]}/{k[1]}": v for k, v in res.items()}, f, indent=2)


if __name__ == "__main__":
    main()
