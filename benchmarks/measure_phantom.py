"""Clinical measurements of a bundle against the phantom's truth on held-out seeds (usedge.measure).

For every val image of every measured task of each phantom seed: the measurements of the bundle's prediction
against the truth, in mm with the image's recorded physical scale (phantom-truth.json). The truth is the
generator's exact value from its own geometry where it records one (HC, BPD, OFD, AC, FL, AoP, CL, lesion axes),
else the same measurement of the ground-truth masks / points / boxes. Per measurement and seed: mean absolute
error, bias, 95 % limits of agreement, withheld fraction; then mean (range) over the seeds, beside the issue-28
targets. A second table: the method itself, the measurement of the exact masks against the exact geometry. Also
a PNG of predicted (green) vs true (red) head ellipses.

    python benchmarks/measure_phantom.py --data data/phantom-test-4001 data/phantom-test-4002 \
        data/phantom-test-4003 --out out/measure-phantom
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: issue 28's targets (mean absolute error, mm / deg / weeks)
TARGETS = {"HC": 2.0, "AC": 3.0, "FL": 1.5, "BPD": 1.5, "CL": 2.0, "AoP": 4.0, "GA_HC": 4 / 7,
           "thyroid_nodule.long_axis": 1.5, "breast_lesion.long_axis": 1.5, "ovary_tumor.long_axis": 1.5}
ORDER = ("HC", "BPD", "OFD", "CI", "AC", "FL", "GA_HC", "GA_FL", "AoP", "AoP_mask", "HSD", "CL", "CL_mask",
         "LV_area", "LV_length", "LV_volume", "thyroid_nodule.long_axis", "thyroid_nodule.short_axis",
         "breast_lesion.long_axis", "breast_lesion.short_axis", "ovary_tumor.long_axis", "ovary_tumor.short_axis",
         "thyroid_nodule_det.long_axis", "uterine_fibroid_det.long_axis", "thyroid_nodule.taller_than_wide",
         "breast_lesion.taller_than_wide")


def head_examples(predictor, data: Path, n: int = 2) -> list[np.ndarray]:
    from usedge.data.fmcuia import load_split
    from usedge.measure import measure
    from usedge.measure.agreement import truth_result

    tiles = []
    for s in load_split(data, "val", ["fetal_head"]):
        image = s.load_image()
        want, got = measure(truth_result(s), None, ["HC"])[0], measure(predictor(image, tasks=["fetal_head"]),
                                                                        None, ["HC"])[0]
        if not (want.ok and got.ok):
            continue
        out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
        for d, colour in ((want.detail, (0, 0, 255)), (got.detail, (0, 255, 0))):
            (cx, cy), (a, b) = d["centre"], d["semi_axes"]
            cv2.ellipse(out, (round(cx), round(cy)), (round(a), round(b)), d["angle_deg"], 0, 360, colour, 1,
                        cv2.LINE_AA)
        tiles.append(cv2.resize(out, (256, 256)))
        if len(tiles) == n:
            break
    return tiles


def main(argv: list[str] | None = None) -> int:
    import usedge
    from usedge._cpu import native_isa
    from usedge._io import atomic_write_text, write_png
    from usedge.assets import shipped_bundle
    from usedge.data.fmcuia import load_split
    from usedge.data.phantom.generator import phantom_scales, phantom_truth
    from usedge.measure.agreement import agreement_on, to_markdown, truth_result, write_agreement

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args(argv)
    predictor = usedge.load(args.bundle or str(shipped_bundle()), backend=args.backend)
    per_seed, tiles, method = {}, [], []
    for data in args.data:
        samples = list(load_split(data, "val", None))
        results = agreement_on(predictor, samples, None, phantom_scales(data), "val", phantom_truth(data))
        write_agreement(results, args.out / data.name)
        per_seed[data.name] = {a.name: a for a in results}
        tiles += head_examples(predictor, data)
        if not method:           # the method on the first seed: the exact masks measured, against the geometry
            method = agreement_on(None, samples, None, phantom_scales(data), "val", phantom_truth(data),
                                  answer=truth_result)
    lines = [f"Bundle {args.bundle or 'packaged default'} ({predictor.choice.backend} {predictor.choice.precision}, "
             f"CPU {native_isa().label}); prediction vs truth on the val images of {len(per_seed)} seeds "
             f"({', '.join(per_seed)}); per seed, then mean (range) over seeds.", "",
             "| measurement | unit | images per seed | withheld (mean, range) | MAE mean (range) | bias mean | "
             "95 % limits (mean) | target MAE |", "|---|---|---|---|---|---|---|---|"]
    summary = {}
    for name in ORDER:
        rows = [seed[name] for seed in per_seed.values() if name in seed and seed[name].mae is not None]
        if not rows:
            continue
        a0 = rows[0]
        w = [r.withheld_fraction for r in rows]
        mae = [r.mae for r in rows]
        unit = "yes/no" if a0.unit == "bool" else a0.unit
        err = (f"agrees {1 - np.mean(mae):.0%} ({1 - max(mae):.0%}–{1 - min(mae):.0%})" if a0.unit == "bool" else
               f"{np.mean(mae):.2f} ({min(mae):.2f}–{max(mae):.2f})")
        bias = "–" if a0.unit == "bool" else f"{np.mean([r.bias for r in rows]):+.2f}"
        loa = "–" if a0.unit == "bool" else (f"{np.mean([r.loa[0] for r in rows]):+.2f} to "
                                             f"{np.mean([r.loa[1] for r in rows]):+.2f}")
        target = TARGETS.get(name)
        verdict = "" if target is None else (f"≤ {target:.2f}: " + ("met" if np.mean(mae) <= target else
                                                                     f"missed by {np.mean(mae) - target:.2f}"))
        lines.append(f"| {name} | {unit} | {a0.images} | {np.mean(w):.0%} ({min(w):.0%}–{max(w):.0%}) | {err} | "
                     f"{bias} | {loa} | {verdict} |")
        summary[name] = {"unit": a0.unit, "mae": mae, "withheld_fraction": w, "bias": [r.bias for r in rows]}
    geometry = [a for a in method if a.truth_source == "geometry"]
    lines += ["", f"The method on exact masks ({next(iter(per_seed))}): the ground-truth masks and points measured by "
              "usedge.measure against the generator's exact geometry.", "", to_markdown(geometry)]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out / "measure.md", text)
    atomic_write_text(args.out / "measure.json", json.dumps(summary, indent=2) + "\n")
    if tiles:
        write_png(args.out / "measure.png", np.hstack(tiles[:6]))
    predictor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
