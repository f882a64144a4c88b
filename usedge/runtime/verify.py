"""``usedge verify BUNDLE``: the static checks (:func:`usedge.bundle.verify.check_bundle`: metadata, checksums,
onnx.checker, Q/DQ placement), then one frame through the Predictor users run (every precision × backend
here: opens, preprocesses, infers and decodes every task), and per-task parity of every backend against the
torch reference outputs stored in the bundle. Needs no torch."""
from __future__ import annotations

import numpy as np

from usedge.bundle import MODEL_FILES
from usedge.bundle.verify import check_bundle
from usedge.runtime.backends import available_backends
from usedge.runtime.parity import parity_by_backend
from usedge.tasks import get_task


def one_frame(bundle, precision: str, backend: str) -> dict:
    """Open the bundle as users do and run one synthetic frame through every task: {"ok", "tasks", "ms"} or
    {"ok": False, "error"}."""
    from usedge.runtime.predictor import load

    frame = np.random.default_rng(0).integers(0, 255, (300, 400), np.uint8)  # not square, not model-sized
    try:
        with load(bundle.path, backend=backend, precision=precision, verify=False) as predictor:
            res = predictor.predict(frame)
        missing = [t for t in bundle.tasks if t not in res.tasks]
        if missing:
            return {"ok": False, "error": f"no result for {missing}"}
        return {"ok": True, "tasks": len(res.tasks), "ms": round(float(res.timings_ms["total"]), 2)}
    except Exception as exc:  # noqa: BLE001 - any failure is the verdict on this bundle
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def verify_bundle(path) -> dict:
    """Returns {"checksums": True, "checker": {...}, "placement": {...} (int8, with onnx), "frame": {precision:
    {backend: {...}}}, "parity": {precision: {backend: {...}}}, "passed": bool}."""
    bundle, result = check_bundle(path)   # raises on a tampered / truncated bundle or invalid metadata
    result.update({"frame": {}, "parity": {}})

    for p in bundle.precisions:
        for name in available_backends():
            result["frame"].setdefault(p, {})[name] = one_frame(bundle, p, name)
    frames_ok = all(r["ok"] for by in result["frame"].values() for r in by.values())
    if not (bundle.path / "parity_inputs.npz").is_file():  # a slim bundle (slim_bundle) ships without them
        result["parity_skipped"] = "no parity_inputs.npz in this (slim) bundle; verify the full export instead"
        result["passed"] = frames_ok
        return result
    with np.load(bundle.path / "parity_inputs.npz") as z:
        x = z["images"]
        ref = {k.removeprefix("ref::"): z[k] for k in z.files if k.startswith("ref::")}
    specs = [get_task(t) for t in bundle.tasks]
    size = bundle.preprocess.size
    for p in bundle.precisions:
        result["parity"][p] = parity_by_backend(bundle.model_path(p), x, ref, specs, size, p)
    judged = [r["passed"] for by in result["parity"].values() for r in by.values() if r["passed"] is not None]
    result["passed"] = frames_ok and all(judged)
    return result


__all__ = ["verify_bundle", "MODEL_FILES"]
