"""Head circumference over phantom cines (issue 28 target: a stable HC, spread <= 1 mm over the accepted frames,
and a best frame picked). Each cine is one scene under smooth probe motion (pan, rotation, zoom), each frame
calibrated with its own scale (the phantom's depth and the zoom of that frame), streamed through the packaged
default with ``Stream(measure=...)``; the truth is the same measurement of the generator's own masks.

    python benchmarks/measure_cine.py --seeds 0 1 2 3 4 5 --frames 60
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import usedge
    from usedge._cpu import native_isa
    from usedge.data.phantom.cine import iter_cine
    from usedge.data.phantom.generator import mm_per_pixel
    from usedge.measure import Measurer, measure
    from usedge.runtime.results import FrameResult, SegmentationResult
    from usedge.stream import Stream
    from usedge.stream.sources import PhantomSource

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args(argv)
    predictor = usedge.load(tasks="fetal_head")
    print(f"packaged default ({predictor.choice.backend} {predictor.choice.precision}), fetal_head cines of "
          f"{args.frames} frames, tracker window = the whole cine; CPU {native_isa().label}\n")
    print("| seed | mm/px | tracked HC mm | SD mm | range mm | accepted | best frame | truth HC mm (median) | "
          "truth SD mm | tracked - truth mm |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        measurer = Measurer(["HC"], window=args.frames, min_accepted=5)
        with Stream(PhantomSource(fps=1000.0, task="fetal_head", frames=args.frames, seed=seed), predictor,
                    measure=measurer, mode="lossless") as s:
            for _ in s:
                pass
        truth = []
        for sample in iter_cine("fetal_head", args.frames, seed=seed):
            mask = np.asarray(sample.label, np.uint8)
            r = FrameResult(mask.shape[1], mask.shape[0], {"fetal_head": SegmentationResult("fetal_head", mask)})
            truth.append(measure(r, mm_per_pixel(sample.meta), ["HC"])[0].value)
        t = measurer.tracker.summary()["HC"]
        tv = np.array([v for v in truth if v is not None])
        mm = mm_per_pixel(next(iter_cine("fetal_head", 1, seed=seed)).meta)
        if t.value is None:
            print(f"| {seed} | {mm:.3f} | withheld: {t.withheld} | | | {t.accepted}/{t.seen} | | "
                  f"{np.median(tv):.1f} | {tv.std():.2f} | |")
            continue
        print(f"| {seed} | {mm:.3f} | {t.value:.1f} | {t.spread:.2f} | {t.range:.2f} | {t.accepted}/{t.seen} | "
              f"{t.best_frame} | {np.median(tv):.1f} | {tv.std():.2f} | {t.value - np.median(tv):+.1f} |")
    predictor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
