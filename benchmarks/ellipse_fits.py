"""Plain vs robust ellipse fits of the model's fetal head and abdomen masks, against the phantom's exact HC / AC.

Per seed and measurement: the share withheld and the MAE (mm) of ``usedge.measure`` with ``ellipse_fit="plain"``
(least squares on every outline point; residual <= 0.04) and with the default ``"robust"``
(``usedge.measure.ellipse.fit_ellipse_robust``; its inliers cover >= 70 % of the circumference), and a PNG of
the abdomen frames the plain fit withheld: the true outline (red), the predicted mask's outline (green) and the
robust ellipse (yellow; none where the robust fit withholds it too).

    python benchmarks/ellipse_fits.py --data data/phantom-test-4001 --out out/ellipse-fits
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

TASKS = {"fetal_head": "HC", "fetal_abdomen_multi": "AC"}


def tile(image: np.ndarray, truth: np.ndarray, mask: np.ndarray, robust, mm: float) -> np.ndarray:
    """The image with the true outline (red), the predicted one (green) and the robust ellipse (yellow, if any)."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3].copy()
    for m, colour in ((truth, (0, 0, 255)), (mask, (0, 255, 0))):
        contours, _ = cv2.findContours((np.asarray(m) > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, colour, 1)
    if robust.ok:
        (cx, cy), (a, b) = robust.detail["centre"], robust.detail["semi_axes"]
        cv2.ellipse(out, (round(cx / mm), round(cy / mm)), (round(a / mm), round(b / mm)), robust.detail["angle_deg"],
                    0, 360, (0, 255, 255), 1, cv2.LINE_AA)
    return cv2.resize(out, (256, 256))


def main(argv: list[str] | None = None) -> int:
    import usedge
    from usedge._cpu import native_isa
    from usedge._io import atomic_write_text, write_png
    from usedge.data.fmcuia import load_split
    from usedge.data.phantom.generator import phantom_scales, phantom_truth
    from usedge.measure import Scale, measure

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, default=Path("out/ellipse-fits"))
    ap.add_argument("--tiles", type=int, default=8)
    args = ap.parse_args(argv)
    predictor = usedge.load(args.bundle)
    print(f"{predictor}  CPU: {native_isa().label}")
    rows, tiles = {}, []
    for data in args.data:
        scales, exact = phantom_scales(data)["val"], phantom_truth(data)["val"]
        for task, name in TASKS.items():
            err = {"plain": [], "robust": []}
            n = 0
            for s in load_split(data, "val", [task]):
                stem = Path(s.image_path).stem
                image, mm, true = s.load_image(), scales[stem], exact[stem][name]
                result = predictor(image, tasks=[task])
                got = {how: measure(result, Scale(mm, mm, "phantom"), [name], ellipse_fit=how)[0] for how in err}
                n += 1
                for how, m in got.items():
                    if m.ok:
                        err[how].append(m.value - true)
                if task == "fetal_abdomen_multi" and not got["plain"].ok and len(tiles) < args.tiles:
                    tiles.append(tile(image, s.target(), result[task].mask, got["robust"], mm))
            rows[f"{data.name} {name}"] = {k: {"withheld": 1 - len(v) / n, "mae_mm": float(np.mean(np.abs(v)))}
                                           for k, v in err.items()}
            r = rows[f"{data.name} {name}"]
            print(f"{data.name} {name}: plain withheld {r['plain']['withheld']:.0%} MAE {r['plain']['mae_mm']:.2f} mm; "
                  f"robust withheld {r['robust']['withheld']:.0%} MAE {r['robust']['mae_mm']:.2f} mm ({n} images)")
    atomic_write_text(args.out / "ellipse_fits.json", json.dumps({"machine": native_isa().label, "rows": rows},
                                                                 indent=2) + "\n")
    if tiles:
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 4)
        write_png(args.out / "ellipse_fits.png", np.vstack([np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)]))
    print(f"wrote {args.out}/ellipse_fits.json, ellipse_fits.png")
    predictor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
