"""Does the measurement grid cost accuracy? The packaged default's measurement errors (prediction vs truth) on a
phantom set with the grid at full resolution and at coarser sides (usedge.measure.geometry.GRID_SIDE), one run.

    usedge data phantom --out data/phantom-640 --size 640 --per-task 1 --val-per-task 30 --seed 4001 \
        --tasks fetal_head,fetal_abdomen_multi,thyroid_nodule,cardiac_multi,cervix_multi,head_symphysis_multi,breast_lesion
    python benchmarks/measure_grid.py --data data/phantom-640
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NAMES = ("HC", "BPD", "AC", "AoP_mask", "HSD", "CL_mask", "LV_area", "LV_length", "thyroid_nodule.long_axis",
         "thyroid_nodule.short_axis", "breast_lesion.long_axis")


def main(argv: list[str] | None = None) -> int:
    import usedge
    import usedge.measure.geometry as geometry
    from usedge.data.fmcuia import load_split
    from usedge.data.phantom.generator import phantom_scales
    from usedge.measure.agreement import agreement_on

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sides", type=int, nargs="+", default=[100000, 320, 160])
    args = ap.parse_args(argv)
    predictor = usedge.load()
    samples = list(load_split(args.data, "val", None))
    scales = phantom_scales(args.data)
    default, res = geometry.GRID_SIDE, {}
    try:
        for side in args.sides:
            geometry.GRID_SIDE = side
            res[side] = {a.name: a for a in agreement_on(predictor, samples, None, scales)}
    finally:
        geometry.GRID_SIDE = default
    label = {s: "full resolution" if s >= 10000 else f"grid {s} px" for s in args.sides}
    print("| measurement | " + " | ".join(f"MAE, {label[s]}" for s in args.sides) + " |")
    print("|---|" + "---|" * len(args.sides))
    for n in NAMES:
        cells = [f"{res[s][n].mae:.2f} ({res[s][n].withheld} withheld)" if n in res[s] and res[s][n].mae is not None
                 else "–" for s in args.sides]
        print(f"| {n} | " + " | ".join(cells) + " |")
    predictor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
