"""Check usedge against the official FMC-UIA baseline code, as docs/official-baseline.md describes.

Four steps, each runnable alone; ``scripts/official_check.sh`` runs them all. The official code is never
copied into usedge: it is imported from YOUR checkout of
https://github.com/lijiake2408/Foundation-Model-Challenge-for-Ultrasound-Image-Analysis.

    # 1. a baseline teacher saved as the official train.py saves it, built by the official model_factory
    python scripts/official_check.py teacher --repo REPO --data DATA/val --out best_model.pth [--from CKPT]
    # 2. (the official inference, docker/model.py, and `usedge eval --model best_model.pth` write predictions)
    # 3. the two prediction folders, file by file
    python scripts/official_check.py predictions PRED_OFFICIAL PRED_USEDGE
    # 4. the official evaluate.py on a prediction folder, against usedge's eval.json, metric by metric
    python scripts/official_check.py metrics --repo REPO --data DATA/val --pred PRED_USEDGE

Step 1 needs torch + segmentation-models-pytorch (usedge[train]); step 4 the official evaluator's
requirements (pandas, SimpleITK, scikit-learn; the baseline pins scikit-learn 1.2.2).
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import io
import json
import math
import os
import sys

import numpy as np

#: official result key -> usedge eval.json key, per official task group
METRIC_KEYS = {"segmentation": {"DSC": "dice", "HD": "hd"},
               "classification": {"AUC": "auc", "Accuracy": "accuracy", "F1_macro": "f1_macro",
                                  "F1_weighted": "f1_weighted", "MCC": "mcc"},
               "detection": {"IoU": "iou"}, "regression": {"MRE": "mre"}}
JSON_FILES = {"classification_predictions.json": "predicted_probs", "detection_predictions.json": "bbox_pixels",
              "regression_predictions.json": "predicted_points_pixels"}


def _import(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def teacher(repo: str, data: str, out: str, source: str | None) -> None:
    """The official MultiTaskModelFactory for the tasks in DATA's CSVs, saved with torch.save(state_dict).
    ``source``: a usedge baseline-b4 checkpoint whose weights it takes (strict: same names); else random
    weights with non-trivial BatchNorm statistics."""
    import pandas as pd
    import torch

    sys.path.insert(0, os.path.join(repo, "docker"))
    factory = _import(os.path.join(repo, "docker", "model_factory.py"), "official_model_factory")
    df = pd.concat([pd.read_csv(f) for f in glob.glob(os.path.join(data, "csv_files", "*.csv"))])
    configs = [{"task_id": t, "task_name": n, "num_classes": int(c)}
               for t, n, c in df[["task_id", "task_name", "num_classes"]].drop_duplicates("task_id").values]
    torch.manual_seed(0)
    model = factory.MultiTaskModelFactory(encoder_name="efficientnet-b4", encoder_weights=None,
                                          task_configs=configs).eval()
    if source:
        from usedge.models.checkpoint import load_checkpoint

        trained, _, _ = load_checkpoint(source)
        model.load_state_dict(trained.state_dict(), strict=True)
    else:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), out)
    print(f"{out}: official factory, {len(configs)} tasks, weights {'from ' + source if source else 'random'}")


def predictions(a: str, b: str) -> bool:
    """Compare two submission folders; True when they agree (masks identical up to 1e-4 of the pixels,
    numbers within 1e-3 px / 1e-5 probability)."""
    import cv2

    ok = True
    for name, key in JSON_FILES.items():
        ra = {(r["task_id"], r["image_path"]): r for r in json.load(open(os.path.join(a, name)))}
        rb = {(r["task_id"], r["image_path"]): r for r in json.load(open(os.path.join(b, name)))}
        if set(ra) != set(rb):
            print(f"{name}: different images ({len(ra)} vs {len(rb)})")
            ok = False
            continue
        diff = max((float(np.abs(np.subtract(ra[k][key], rb[k][key])).max()) for k in ra), default=0.0)
        same = sum(ra[k].get("predicted_class") == rb[k].get("predicted_class") for k in ra)
        cls = name.startswith("classification")
        print(f"{name}: {len(ra)} records, max |diff| of {key} {diff:.3g}"
              + (f", predicted_class equal {same}/{len(ra)}" if cls else ""))
        ok &= diff <= (1e-5 if name.startswith("classification") else 1e-3)
    masks = sorted(glob.glob(os.path.join(a, "Segmentation", "**", "*.png"), recursive=True))
    same = differing = total = 0
    for p in masks:
        x = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
        y = cv2.imread(os.path.join(b, os.path.relpath(p, a)), cv2.IMREAD_GRAYSCALE)
        if y is None or x.shape != y.shape:
            print(f"mask {os.path.relpath(p, a)} missing or of another size in {b}")
            ok = False
            continue
        same += bool((x == y).all())
        differing += int((x != y).sum())
        total += x.size
    print(f"masks: {len(masks)} files, identical {same}/{len(masks)}, differing pixels {differing} of {total}")
    return ok and differing <= 1e-4 * max(total, 1)


def metrics(repo: str, data: str, pred: str) -> bool:
    """The official Evaluator on ``pred``, against ``pred/eval.json``; True when every value agrees to 1e-9."""
    evaluate = _import(os.path.join(repo, "evaluate.py"), "official_evaluate")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        official = evaluate.Evaluator(data, pred).evaluate_all()
    ours = json.load(open(os.path.join(pred, "eval.json")))["tasks"]
    rows, bad = 0, []
    for group, keys in METRIC_KEYS.items():
        for task, row in sorted(official.get(group, {}).items()):
            for off_key, our_key in keys.items():
                rows += 1
                a, b = row[off_key], ours[task][our_key]
                if b is None or not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
                    bad.append(f"  {task} {off_key}: official {a!r}, usedge {b!r}")
    print(f"official evaluate.py vs usedge eval.json: {rows - len(bad)}/{rows} values equal (rel 1e-9)")
    print("\n".join(bad))
    return not bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    t = sub.add_parser("teacher")
    t.add_argument("--repo", required=True)
    t.add_argument("--data", required=True, help="a split folder holding csv_files/")
    t.add_argument("--out", default="best_model.pth")
    t.add_argument("--from", dest="source", default=None, help="a usedge baseline-b4 checkpoint folder")
    p = sub.add_parser("predictions")
    p.add_argument("a")
    p.add_argument("b")
    m = sub.add_parser("metrics")
    m.add_argument("--repo", required=True)
    m.add_argument("--data", required=True, help="a split folder holding csv_files/")
    m.add_argument("--pred", required=True, help="a `usedge eval --out` folder (submission files + eval.json)")
    a = ap.parse_args()
    if a.step == "teacher":
        teacher(a.repo, a.data, a.out, a.source)
    elif a.step == "predictions":
        sys.exit(0 if predictions(a.a, a.b) else 1)
    else:
        sys.exit(0 if metrics(a.repo, a.data, a.pred) else 1)


if __name__ == "__main__":
    main()
