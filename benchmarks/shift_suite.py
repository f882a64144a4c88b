"""Shift suite: how much each model loses when the scanner's settings leave the default phantom's ranges, each
shift separately, paired with the clean set (same seeds, same anatomy: only the shifted setting differs).

    python benchmarks/shift_suite.py --model usedge/assets/default_student --model runs/robust-ft/best \
        [--seeds 4001,4002,4003] [--per-task 30] [--out runs/shift]

Shifts (the physics of usedge.data.phantom with one range replaced, or an artefact drawn onto the clean
images): a noise floor 4-10 dB above the default's top, weak TGC, gain -10/+10 dB, narrow / wide dynamic range,
a broader PSF, speckle 1.5x coarser (outside even the wide training ranges), an acoustic shadow band and a
near-field haze. A model is a usedge checkpoint folder (torch fp32) or a bundle (its runtime, as shipped).
Writes OUT/shift.md / .json (per model, shift and family: the change from clean, mean and range over the
seeds, in points; MRE in px) and OUT/shift.png (one image under every shift).
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from usedge.data.phantom.physics import AcquisitionRanges

BASE = AcquisitionRanges()
#: name -> AcquisitionRanges of the shifted set (physics shifts) or None (an artefact drawn on the clean set)
SHIFTS: dict[str, AcquisitionRanges | None] = {
    "clean": BASE,
    "noise floor +4..10 dB": replace(BASE, noise_db=(-18.0, -12.0)),
    "weak TGC (0.45-0.6)": replace(BASE, tgc_compensation=(0.45, 0.6)),
    "gain -10 dB": replace(BASE, gain_db=(-11.0, -9.0)),
    "gain +10 dB": replace(BASE, gain_db=(9.0, 11.0)),
    "dynamic range 38-44 dB": replace(BASE, dynamic_range_db=(38.0, 44.0)),
    "dynamic range 68-74 dB": replace(BASE, dynamic_range_db=(68.0, 74.0)),
    "broad PSF": replace(BASE, sigma_axial_px=(1.3, 1.6), sigma_lateral_lines=(1.5, 1.8)),
    "coarse speckle x1.5": replace(BASE, speckle_scale=1.5),
    "acoustic shadow": None,
    "near-field haze": None,
}
FAMILIES = {"segmentation": ("dice", 100.0), "classification": ("accuracy", 100.0), "detection": ("iou", 100.0),
            "regression": ("mre", 1.0)}


def _draw(name: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The artefact shifts, on a stored image (sector pixels only; labels untouched)."""
    x = image.astype(np.float32)
    h, w = x.shape[:2]
    inside = (image if image.ndim == 2 else image.max(axis=2)) > 0
    depth = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    if name == "acoustic shadow":        # one band, 60 % darker, from a third of the depth down
        band = np.zeros((h, w), np.float32)
        cx = rng.uniform(0.3, 0.7) * w
        band[h // 3:, int(cx - 0.06 * w):int(cx + 0.06 * w)] = 1
        factor = 1 - 0.6 * cv2.GaussianBlur(band, (0, 0), 0.015 * w)
    else:                                # haze: a 45-grey-level veil fading over a fifth of the depth
        factor, veil = 1.0, 45.0 * np.exp(-depth / 0.2)
        x = x + (veil if x.ndim == 2 else veil[..., None])
    x = x * (factor if np.ndim(factor) == 0 or x.ndim == 2 else factor[..., None])
    return np.where(inside if x.ndim == 2 else inside[..., None], np.clip(x + 0.5, 0, 255), image).astype(image.dtype)


def make_sets(root: Path, seed: int, per_task: int) -> dict[str, Path]:
    from usedge.data.fmcuia import load_split
    from usedge.data.phantom import generate_dataset

    out = {}
    for name, ranges in SHIFTS.items():
        path = root / str(seed) / name.replace(" ", "_").replace("/", "-")
        if not (path / "phantom.json").is_file():
            if ranges is not None:
                generate_dataset(path, per_task=1, val_per_task=per_task, seed=seed, progress=False,
                                 acquisition=None if name == "clean" else ranges)
            else:
                tmp = path.with_name(path.name + ".partial")
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(out["clean"], tmp)
                rng = np.random.default_rng([seed, len(out)])
                for s in load_split(tmp, "val"):
                    im = cv2.imread(str(s.image_path), cv2.IMREAD_UNCHANGED)
                    cv2.imwrite(str(s.image_path), _draw(name, im, rng))
                tmp.rename(path)
        out[name] = path
    return out


def score(model: str, data: Path) -> dict[str, float]:
    """Per family: the primary metric of ``model`` on ``data``'s val split."""
    from usedge.data.fmcuia import load_split

    if (Path(model) / "metadata.json").is_file():
        import usedge
        from usedge.runtime.evaluate import evaluate_with_predictor

        with usedge.load(model) as predictor:
            report = evaluate_with_predictor(predictor, load_split(data, "val", list(predictor.tasks)))
    else:
        from usedge.models.checkpoint import load_checkpoint
        from usedge.train.evaluate import evaluate_model

        net, config, _ = load_checkpoint(model)
        report = evaluate_model(net, config, load_split(data, "val", list(config.tasks)))
    fam = report.family_summary()
    return {f: fam[f][m] * k for f, (m, k) in FAMILIES.items() if f in fam}


def table(results: dict) -> str:
    lines = []
    for model, per_shift in results.items():
        lines += [f"### {model}", "", "| shift | " + " | ".join(f"{f} (Δ {'px' if f == 'regression' else 'points'})"
                                                            for f in FAMILIES) + " |",
                  "|---|" + "---|" * len(FAMILIES)]
        clean = per_shift["clean"]
        for name, seeds in per_shift.items():
            cells = []
            for f in FAMILIES:
                if name == "clean":
                    v = np.array([s[f] for s in seeds])
                    cells.append(f"{v.mean():.2f} [{v.min():.2f}, {v.max():.2f}]")
                else:
                    d = np.array([s[f] - c[f] for s, c in zip(seeds, clean)])
                    cells.append(f"{d.mean():+.2f} [{d.min():+.2f}, {d.max():+.2f}]")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def montage(sets: dict[str, Path], path: Path) -> None:
    from usedge.data.fmcuia import load_split

    tiles = []
    for name, root in sets.items():
        s = next(x for x in load_split(root, "val") if x.task_id == "fetal_head")
        im = cv2.imread(str(s.image_path), cv2.IMREAD_GRAYSCALE)
        im = cv2.resize(im, (200, 200), interpolation=cv2.INTER_AREA)
        cv2.putText(im, name[:24], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_AA)
        tiles.append(im)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + 4], 1) for i in range(0, len(tiles), 4)]
    cv2.imwrite(str(path), np.concatenate(rows, 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="checkpoint folder or bundle; repeatable")
    ap.add_argument("--seeds", default="4001,4002,4003")
    ap.add_argument("--per-task", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("runs/shift"))
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    a.out.mkdir(parents=True, exist_ok=True)
    sets = {seed: make_sets(a.out / "data", seed, a.per_task) for seed in seeds}
    montage(sets[seeds[0]], a.out / "shift.png")
    results = {m: {name: [score(m, sets[seed][name]) for seed in seeds] for name in SHIFTS} for m in a.model}
    (a.out / "shift.json").write_text(json.dumps({"seeds": seeds, "per_task": a.per_task, "results": results}, indent=1))
    text = f"Seeds {seeds}, {a.per_task} images per task each; clean row: the score (mean [min, max]); others: " \
           f"the change from clean.\n\n" + table(results)
    (a.out / "shift.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
