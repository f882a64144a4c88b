"""Live streaming latency: the real SonoSite echo cine (pydicom-data) replayed as a live probe, and a live
phantom cine, at 30 and 60 frames/s through the Predictor (latest frame wins), all in one run.

Target (issue 7): end-to-end p99 <= one frame interval at 60 fps with the default student, no unbounded growth.

With ``--overlay`` every result is drawn on its frame (``usedge.stream.draw``, all tasks, as a display sink
does) and the table adds the sink's time and "delivered" (captured -> overlay drawn).

Usage:
    python benchmarks/bench_stream.py [--bundle out/bundle] [--seconds 8] [--tasks all] [--overlay] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path


def run(source, bundle: str, tasks, seconds: float, fps: float, backend: str, precision: str,
        overlay: bool = False) -> dict:
    from usedge.stream import CallbackSink, Stream, draw

    sinks = [CallbackSink(lambda ev: draw(ev.frame.image, ev.result, hud=ev.hud))] if overlay else []
    s = Stream(source, bundle, tasks=tasks, mode="live", warmup=int(fps), backend=backend, precision=precision,
               max_frames=int(seconds * fps), sinks=sinks)
    s.run()
    out = s.tracker.summary()
    out["predictor"] = repr(s.predictor)
    return out


def _overlay_cells(lat: dict, overlay: bool) -> str:
    if not overlay:
        return ""
    return "".join(f" {lat[stage][q]:.1f} |" for stage in ("sinks", "delivered") for q in ("p50", "p99"))


def main() -> None:
    from usedge.stream import PacedReplay, PhantomSource, echo_cine_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="out/bundle")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--tasks", default="all")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--overlay", action="store_true", help="draw every result on its frame in a sink")
    ap.add_argument("--fps", default="30,60")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tasks = None if args.tasks == "all" else args.tasks.split(",")
    echo = str(echo_cine_path())
    print(f"{args.bundle}; tasks {args.tasks}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.seconds:g} s per row, first second excluded as warm-up")
    extra = " overlay p50 ms | overlay p99 ms | delivered p50 ms | delivered p99 ms |" if args.overlay else ""
    print("| source | fps | predictor | e2e p50 ms | e2e p99 ms | infer p50 ms | fps out | dropped | frame interval ms |"
          + extra)
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * (4 if args.overlay else 0))
    rows = []
    for name, make in (("echo cine (replayed live)", lambda f: PacedReplay(echo, fps=f, loops=None)),
                       ("phantom fetal_head 256²", lambda f: PhantomSource(fps=f, task="fetal_head", size=256))):
        for fps in (float(f) for f in args.fps.split(",")):
            s = run(make(fps), args.bundle, tasks, args.seconds, fps, args.backend, args.precision, args.overlay)
            lat = s["latency_ms"]
            rows.append({"source": name, "fps": fps, **s})
            print(f"| {name} | {fps:g} | {s['predictor']} | {lat['end_to_end']['p50']:.1f} | "
                  f"{lat['end_to_end']['p99']:.1f} | {lat['infer']['p50']:.1f} | {s['fps_out']:.1f} | "
                  f"{s['dropped']} / {s['frames_in']} | {1000 / fps:.1f} |" + _overlay_cells(lat, args.overlay), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
