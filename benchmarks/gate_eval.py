"""The frame gate and the scan-region finder against issue 29's targets, on data generated here or shipped by
packages (nothing downloaded):

- in distribution: every val image of held-out phantom seeds -> false rejection per seed (target <= 2 %);
- far out of distribution: scikit-image's data images (greyed) and synthetic frames (uniform, black, saturated,
  noise, gradients, blurred noise, checkerboards) -> AUROC of the distance against the phantom (>= 0.99) and the
  fraction the gate rejects (>= 98 %);
- domain shift: the real ultrasound frames of pydicom / pydicom-data (cropped to their DICOM regions) -> AUROC
  (>= 0.95);
- screen grabs: held-out phantom images pasted into a 640x480 scanner screen (usedge.data.phantom.screen) ->
  IoU of ``region="auto"`` with the sector's extent (>= 0.95) and the per-family score with the sector's true
  extent as the region (a perfect finder), ``region="auto"`` and ``region="none"`` against the images themselves
  (within 1 point; MRE within 5 %).

A PNG of the distance distributions with the threshold, and JSON of every figure.

    python benchmarks/gate_eval.py --data data/phantom-test-4001 data/phantom-test-4002 data/phantom-test-4003 \
        --out out/gate-eval
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside score > an inside score), ties half (Mann-Whitney)."""
    s = np.concatenate([inside, outside])
    ranks = np.empty(len(s))
    order = s.argsort(kind="mergesort")
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):                    # average ranks over ties
        m = s == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    n1, n0 = len(outside), len(inside)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def judge(predictor, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(distance, rejected, first reason) of each image through the Predictor (one frame at a time)."""
    d, rej, why = [], [], []
    for im in images:
        g = predictor.predict(im, tasks=[predictor.tasks[0]]).gate
        d.append(g.scores.get("ood", np.nan))
        rej.append(not g.accepted)
        why.append(g.reasons[0] if g.reasons else "")
    return np.array(d), np.array(rej), why


def far_images(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    import skimage.data as sk

    natural = []
    for name in sorted(sk.__all__):
        if name in ("download_all", "data_dir", "lfw_subset", "stereo_motorcycle", "file_hash"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = getattr(sk, name)()
        except Exception:  # noqa: BLE001 - images that need a download (pooch) are not shipped: skipped
            continue
        if not isinstance(im, np.ndarray) or im.ndim not in (2, 3) or min(im.shape[:2]) < 32:
            continue
        if im.ndim == 3 and im.shape[2] not in (3, 4):
            continue
        im = im.astype(np.float32) if im.dtype != np.uint8 else im
        if im.dtype != np.uint8:
            im = cv2.normalize(im, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        natural.append(cv2.cvtColor(im[..., :3], cv2.COLOR_RGB2GRAY) if im.ndim == 3 else im)
    h, w = 480, 640
    synth = []
    for i in range(12):
        synth += [np.full((h, w), int(rng.integers(0, 256)), np.uint8),
                  rng.integers(0, 256, (h, w), dtype=np.uint8),
                  np.clip(rng.normal(128, 10 + 10 * i, (h, w)), 0, 255).astype(np.uint8),
                  cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (0, 0), 1 + i),
                  np.tile(np.linspace(0, 255, w), (h, 1)).astype(np.uint8)[:, ::1 + i % 3],
                  ((np.indices((h, w)).sum(0) // (4 + 4 * i)) % 2 * 255).astype(np.uint8)]
    synth += [np.zeros((h, w), np.uint8), np.full((h, w), 255, np.uint8)]
    return {"natural (scikit-image)": natural, "synthetic frames": synth}


def real_frames(per_file: int = 4) -> list[np.ndarray]:
    import data_store
    import pydicom

    from usedge.data import open_frames

    roots = [os.path.dirname(data_store.__file__), os.path.join(os.path.dirname(pydicom.__file__), "data")]
    paths = sorted({p for r in roots for p in glob.glob(os.path.join(r, "**", "*.dcm"), recursive=True)})
    out = []
    for path in paths:
        try:
            if getattr(pydicom.dcmread(path, stop_before_pixels=True), "Modality", "") != "US":
                continue
            frames = list(open_frames(path))
        except Exception:  # noqa: BLE001 - files pydicom cannot decode here are left out (counted below)
            continue
        for f in frames[:: max(1, len(frames) // per_file)][:per_file]:
            r = f.region
            out.append(f.image if r is None else f.image[r.y0:r.y1, r.x0:r.x1])
    return out


def in_distribution(predictor, data: list[Path]) -> dict:
    from usedge.data.fmcuia import load_split

    rows = {}
    for d in data:
        images = [s.load_image() for s in load_split(d, "val", list(predictor.tasks))]
        dist, rej, why = judge(predictor, images)
        rows[d.name] = {"images": len(images), "false_rejection": float(rej.mean()), "distances": dist,
                        "reasons": sorted({w.split(" (")[0] for w in why if w})}
    return rows


def _in_image(result, x0: int, y0: int, h: int, w: int):
    """A task result from a screen grab as the metric reads it, in the pasted image's pixels (its labels')."""
    from usedge.runtime.evaluate import _as_metric_input
    from usedge.runtime.results import DetectionResult, LandmarkResult, SegmentationResult

    value = _as_metric_input(result)
    if isinstance(result, SegmentationResult):
        return value[y0:y0 + h, x0:x0 + w]
    if isinstance(result, DetectionResult):
        return np.asarray(value, np.float64) - np.array([x0, y0, x0, y0])
    if isinstance(result, LandmarkResult):
        return np.asarray(value, np.float64) - np.array([x0, y0])
    return value


def letterboxed(predictor, data: Path, per_task: int, rng: np.random.Generator) -> dict:
    """Per family: the score on the images, on their screen grabs with region auto and none; the found regions'
    IoU with the sector's extent."""
    from usedge.data.fmcuia import load_split
    from usedge.data.phantom.screen import screen_grab
    from usedge.metrics.evaluator import PRIMARY_METRIC, EvalReport
    from usedge.runtime.evaluate import _as_metric_input
    from usedge.tasks import get_task

    chosen: dict[str, list] = {}
    for s in load_split(data, "val", list(predictor.tasks)):
        if len(chosen.setdefault(s.task_id, [])) < per_task:
            chosen[s.task_id].append(s)
    reports = {m: EvalReport([get_task(t) for t in chosen]) for m in ("image", "sector", "auto", "none")}
    ious = []
    for task, samples in chosen.items():
        for s in samples:
            im = s.load_image()
            h, w = im.shape[:2]
            x0, y0 = int(rng.integers(40, 640 - 70 - w)), int(rng.integers(32, 480 - h))
            screen = screen_grab(im, x0, y0)
            reports["image"].update(task, _as_metric_input(predictor.predict(im, tasks=[task])[task]), s.target())
            ys, xs = np.nonzero(im if im.ndim == 2 else im.max(axis=2))
            true = (int(xs.min()) + x0, int(ys.min()) + y0, int(xs.max()) + 1 + x0, int(ys.max()) + 1 + y0)
            # sector: cropped to the sector's true extent (what a perfect finder returns)
            for mode, region in (("sector", true), ("auto", "auto"), ("none", "none")):
                r = predictor.predict(screen, region=region, tasks=[task])
                reports[mode].update(task, _in_image(r[task], x0, y0, h, w), s.target())
                if mode == "auto":
                    ious.append(_iou(r.region, true))
    primary = {k.value: m for k, m in PRIMARY_METRIC.items()}
    return {"families": {m: {f: v[primary[f]] for f, v in rep.family_summary().items()} for m, rep in reports.items()},
            "iou": ious}


def _iou(found, true) -> float:
    if found is None:
        return 0.0
    ix = max(0, min(found[2], true[2]) - max(found[0], true[0])) * max(0, min(found[3], true[3]) - max(found[1], true[1]))
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    return ix / (area(found) + area(true) - ix)


def plot(path: Path, inside: np.ndarray, outside: dict[str, np.ndarray], threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    top = np.nanpercentile(np.concatenate([inside, *outside.values()]), 99.5)
    bins = np.linspace(0, top, 80)
    ax.hist(inside, bins, density=True, alpha=0.6, label=f"phantom, held-out seeds ({len(inside)})")
    for name, v in outside.items():
        ax.hist(np.clip(v, 0, top), bins, density=True, alpha=0.5, label=f"{name} ({len(v)})")
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.2f} (1 % of the export's held-out)")
    ax.set_xlabel("frame-gate distance (sum over feature maps of k-NN cosine distance / its 99th percentile)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None, help="bundle (default: the packaged default)")
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="held-out phantom sets (val split)")
    ap.add_argument("--letterbox-per-task", type=int, default=10)
    ap.add_argument("--no-letterbox", action="store_true", help="skip the screen-grab part")
    ap.add_argument("--out", type=Path, default=Path("out/gate-eval"))
    args = ap.parse_args()
    import usedge
    from usedge._cpu import cpu_isa

    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(29)
    t0 = time.perf_counter()
    predictor = usedge.load(args.bundle)
    print(f"{predictor}  gate: {predictor.gate.thresholds}  CPU: {cpu_isa().label}")
    ind = in_distribution(predictor, args.data)
    inside = np.concatenate([r["distances"] for r in ind.values()])
    out = {"machine": cpu_isa().to_dict(), "bundle": str(args.bundle or "packaged default"),
           "threshold": predictor.gate.thresholds.ood, "in_distribution": {}, "out_of_distribution": {}}
    frr = []
    for name, r in ind.items():
        frr.append(r["false_rejection"])
        out["in_distribution"][name] = {k: v for k, v in r.items() if k != "distances"}
        print(f"in distribution {name}: {r['images']} images, false rejection {r['false_rejection']:.2%}")
    print(f"  mean {np.mean(frr):.2%} (range {min(frr):.2%}-{max(frr):.2%}); target <= 2 %")
    sets = far_images(rng)
    sets["real ultrasound (pydicom-data)"] = real_frames()
    dists = {}
    for name, images in sets.items():
        d, rej, why = judge(predictor, images)
        dists[name] = d
        out["out_of_distribution"][name] = {"images": len(images), "auroc": auroc(inside, np.nan_to_num(d, nan=0)),
                                            "rejected": float(rej.mean()),
                                            "reasons": sorted({w.split(" (")[0] for w in why if w})}
        o = out["out_of_distribution"][name]
        print(f"{name}: {len(images)} frames, AUROC {o['auroc']:.4f}, rejected {o['rejected']:.1%}")
    far = np.concatenate([dists["natural (scikit-image)"], dists["synthetic frames"]])
    far_rej = np.mean([v["rejected"] for k, v in out["out_of_distribution"].items() if "real" not in k])
    print(f"far OOD together: AUROC {auroc(inside, np.nan_to_num(far, nan=0)):.4f} (target >= 0.99), "
          f"rejected {far_rej:.1%} (>= 98 %)")
    plot(args.out / "gate_distances.png", inside, dists, predictor.gate.thresholds.ood)
    boxes = {}
    for d in [] if args.no_letterbox else args.data:
        boxes[d.name] = letterboxed(predictor, d, args.letterbox_per_task, rng)
        fam = boxes[d.name]["families"]
        iou = np.array(boxes[d.name]["iou"])
        print(f"screen grabs {d.name}: IoU mean {iou.mean():.3f}, >= 0.95: {np.mean(iou >= 0.95):.1%}; " + "; ".join(
            f"{f}: image {fam['image'][f]:.4f} sector {fam['sector'][f]:.4f} auto {fam['auto'][f]:.4f} "
            f"none {fam['none'][f]:.4f}"
            for f in fam["image"]))
    out["screen_grabs"] = {} if not boxes else {k: {"families": v["families"], "iou_mean": float(np.mean(v["iou"])),
                               "iou_ge_0.95": float(np.mean(np.array(v["iou"]) >= 0.95))} for k, v in boxes.items()}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    (args.out / "gate_eval.json").write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"wrote {args.out}/gate_eval.json, gate_distances.png ({out['seconds']} s)")


if __name__ == "__main__":
    main()
