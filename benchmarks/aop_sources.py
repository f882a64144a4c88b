"""Where the angle of progression's error comes from: each part of the AoP swapped for its truth, one at a time.

On the IUGC val images of each phantom seed (the same intrapartum scene as head_symphysis_multi, so both tasks are
asked of one frame), the packaged default's AoP error (mean absolute, bias; degrees) when the symphysis ends and
the head tangent come from the landmarks, the masks or the truth, and the per-point landmark error (px). It
names the part a better model must improve; it does not change the measurement.

    python benchmarks/aop_sources.py --data data/phantom-test-4001 data/phantom-test-4002 data/phantom-test-4003
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _direction(upper: np.ndarray, lower: np.ndarray) -> float:
    v = lower - upper
    return math.degrees(math.atan2(v[1], v[0]))


def errors_of(predictor, data: Path) -> dict[str, list[float]]:
    """Per variant, the signed AoP (or axis-direction) errors in degrees; "points": per-point landmark errors."""
    from usedge.data.fmcuia import load_split
    from usedge.measure.base import Scale
    from usedge.measure.geometry import angle_at
    from usedge.measure.intrapartum import _from_masks, leading_tangent

    out: dict[str, list] = {}
    for s in load_split(data, "val", ["IUGC"]):
        t = np.asarray(s.target(), float)
        r = predictor(s.load_image(), tasks=["IUGC", "head_symphysis_multi"])
        p = np.asarray(r.tasks["IUGC"].points, float)
        truth = angle_at(t[1], t[0], t[2])
        add = lambda k, v: out.setdefault(k, []).append(v)   # noqa: E731
        add("points", np.linalg.norm(p - t, axis=1))
        add("landmarks (as shipped)", angle_at(p[1], p[0], p[2]) - truth)
        add("true symphysis + landmark tangent point", angle_at(t[1], t[0], p[2]) - truth)
        add("landmark symphysis + true tangent point", angle_at(p[1], p[0], t[2]) - truth)
        add("symphysis axis direction, landmarks", _direction(p[0], p[1]) - _direction(t[0], t[1]))
        got, _ = _from_masks(r, Scale())
        if got is None:
            continue
        upper, lower, _, head, _ = got
        add("symphysis axis direction, mask", _direction(upper, lower) - _direction(t[0], t[1]))
        for name, (u, lo) in (("masks (AoP_mask, no tangent-gap rule)", (upper, lower)),
                              ("landmark symphysis + mask tangent", (p[0], p[1])),
                              ("true symphysis + mask tangent", (t[0], t[1]))):
            found = leading_tangent(u, lo, head)
            if found is not None:
                add(name, angle_at(lo, u, found[0]) - truth)
    return out


def main(argv: list[str] | None = None) -> int:
    import usedge
    from usedge.assets import shipped_bundle

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    args = ap.parse_args(argv)
    predictor = usedge.load(args.bundle or str(shipped_bundle()))
    per_seed = [errors_of(predictor, d) for d in args.data]
    pts = [np.mean(e["points"], axis=0) for e in per_seed]
    print("landmark error per point (px; upper, lower, tangent), per seed:",
          "; ".join(", ".join(f"{v:.1f}" for v in p) for p in pts))
    print("| variant | n | MAE deg, mean (range over seeds) | bias |\n|---|---|---|---|")
    for k in per_seed[0]:
        if k == "points":
            continue
        v = [np.asarray(e.get(k, []), float) for e in per_seed]
        mae = [float(np.abs(x).mean()) for x in v if len(x)]
        print(f"| {k} | {sum(len(x) for x in v)} | {np.mean(mae):.2f} ({min(mae):.2f}-{max(mae):.2f}) | "
              f"{np.mean([x.mean() for x in v if len(x)]):+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
