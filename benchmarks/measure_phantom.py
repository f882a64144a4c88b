"""Fetal biometry of a bundle on held-out phantom images against the generator's truth (usedge.measure).

For every val image of ``fetal_head``, ``fetal_abdomen_multi`` and ``fetal_femur`` of each phantom seed: the
measurements of the bundle's prediction against the same measurements of the ground truth (the generator's
filled skull / abdomen ellipse and its femur end points), in pixels (the phantom has no DICOM calibration, so
errors are relative for circumferences and diameters, px for FL). Withheld answers are counted, never scored.
Writes a Markdown table and a PNG of predicted (green) vs true (red) ellipses.

    python benchmarks/measure_phantom.py --bundle usedge/assets/default_bundle \
        --data data/phantom-test-4001 data/phantom-test-4002 data/phantom-test-4003 --out out/measure-phantom
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

TASKS = ("fetal_head", "fetal_abdomen_multi", "fetal_femur")
NAMES = {"fetal_head": ("HC", "BPD", "OFD"), "fetal_abdomen_multi": ("AC",), "fetal_femur": ("FL",)}


def truth_result(sample):
    from usedge.runtime.results import FrameResult, LandmarkResult, SegmentationResult

    image = sample.load_image()
    h, w = image.shape[:2]
    target = sample.target()
    spec = sample.task
    if spec.kind.value == "segmentation":
        task = SegmentationResult(spec.id, np.asarray(target, np.uint8), spec.class_names)
    else:
        task = LandmarkResult(spec.id, np.asarray(target, np.float64), spec.point_names, w, h)
    return image, FrameResult(w, h, {spec.id: task})


def run_seed(predictor, data: Path) -> tuple[dict, list]:
    from usedge.data.fmcuia import load_split
    from usedge.measure import measure

    rows: dict[str, dict] = {}
    examples = []
    for s in load_split(data, "val", list(TASKS)):
        image, truth = truth_result(s)
        pred = predictor(image, tasks=[s.task_id])
        want = {m.name: m for m in measure(truth, None, names=NAMES[s.task_id])}
        got = {m.name: m for m in measure(pred, None, names=NAMES[s.task_id])}
        for name in NAMES[s.task_id]:
            r = rows.setdefault(name, {"n": 0, "truth_withheld": 0, "withheld": 0, "errors": []})
            r["n"] += 1
            if not want[name].ok:
                r["truth_withheld"] += 1
                continue
            if not got[name].ok:
                r["withheld"] += 1
                continue
            t, p = want[name].value, got[name].value
            r["errors"].append(abs(p - t) if name == "FL" else abs(p - t) / t)
        if s.task_id == "fetal_head" and len(examples) < 6 and want["HC"].ok and got["HC"].ok:
            examples.append((image, want["HC"].detail, got["HC"].detail))
    return rows, examples


def _draw(image: np.ndarray, truth: dict, pred: dict) -> np.ndarray:
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    for d, colour in ((truth, (0, 0, 255)), (pred, (0, 255, 0))):
        (cx, cy), (a, b) = d["centre"], d["semi_axes"]
        cv2.ellipse(out, (round(cx), round(cy)), (round(a), round(b)), d["angle_deg"], 0, 360, colour, 1, cv2.LINE_AA)
    return out


def main(argv: list[str] | None = None) -> int:
    import usedge
    from usedge._io import atomic_write_text, write_png

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args(argv)
    from usedge.assets import shipped_bundle

    predictor = usedge.load(args.bundle or str(shipped_bundle()), backend=args.backend)
    per_seed, examples = {}, []
    for data in args.data:
        per_seed[str(data)], ex = run_seed(predictor, data)
        examples += ex[:2]
    lines = [f"Bundle {args.bundle or 'packaged default'} ({predictor.choice.backend} {predictor.choice.precision}); "
             "prediction vs generator truth on the val images of each seed; mean over the seed's images, then mean "
             "(range) over seeds.", "",
             "| measurement | images per seed | withheld (prediction) | withheld (truth) | error | mean (range over seeds) |",
             "|---|---|---|---|---|---|"]
    summary = {}
    for name in ("HC", "BPD", "OFD", "AC", "FL"):
        seeds = [rows[name] for rows in per_seed.values() if name in rows]
        if not seeds:
            continue
        means = [float(np.mean(r["errors"])) for r in seeds if r["errors"]]
        scale, unit = (1.0, "px") if name == "FL" else (100.0, "%")
        what = "absolute px" if name == "FL" else "relative %"
        summary[name] = {"per_seed": means, "withheld": [r["withheld"] for r in seeds], "n": [r["n"] for r in seeds]}
        lines.append(f"| {name} | {seeds[0]['n']} | {', '.join(str(r['withheld']) for r in seeds)} | "
                     f"{', '.join(str(r['truth_withheld']) for r in seeds)} | {what} | "
                     f"{np.mean(means) * scale:.2f} {unit} ({min(means) * scale:.2f}–{max(means) * scale:.2f}) |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "measure.md", text)
    atomic_write_text(args.out / "measure.json", json.dumps(summary, indent=2) + "\n")
    if examples:
        tiles = [cv2.resize(_draw(*e), (256, 256)) for e in examples[:6]]
        write_png(args.out / "measure.png", np.hstack(tiles))
    predictor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
