"""``usedge verify BUNDLE``: checksums, onnx.checker, and per-task parity of every backend here against the
torch reference outputs stored in the bundle. Needs no torch."""
from __future__ import annotations

import numpy as np

from usedge.export.bundle import MODEL_FILES, load_bundle
from usedge.runtime.parity import agreement, judge
from usedge.tasks import get_task


def verify_bundle(path) -> dict:
    """Returns {"checksums": True, "checker": {...}, "placement": {...} (int8, with onnx), "parity": {precision:
    {backend: {...}}}, "passed": bool}."""
    bundle = load_bundle(path, verify=True)  # raises on a tampered / truncated bundle
    result: dict = {"bundle": str(bundle.path), "checksums": True, "checker": {}, "parity": {}}
    try:
        from usedge.export.onnx import check

        for p in bundle.precisions:
            check(bundle.model_path(p))
            result["checker"][p] = "ok"
        if "int8" in bundle.precisions:  # informational: where the Q/DQ pairs sit (docs/export.md rules)
            from usedge.quantize.placement import check_placement

            pl = check_placement(bundle.model_path("int8"))
            result["placement"] = {"ok": pl.ok, "summary": pl.summary(), "float_inputs": len(pl.float_inputs)}
    except ImportError:
        result["checker"] = {"skipped": "onnx is not installed"}
    if not (bundle.path / "parity_inputs.npz").is_file():  # a slim bundle (slim_bundle) ships without them
        result["parity_skipped"] = "no parity_inputs.npz in this (slim) bundle; verify the full export instead"
        result["passed"] = True
        return result
    with np.load(bundle.path / "parity_inputs.npz") as z:
        x = z["images"]
        ref = {k.removeprefix("ref::"): z[k] for k in z.files if k.startswith("ref::")}
    specs = [get_task(t) for t in bundle.tasks]
    size = bundle.preprocess.size
    from usedge.runtime.backends import available_backends, open_backend

    for p in bundle.precisions:
        for name in available_backends():
            got = open_backend(name, bundle.model_path(p)).infer(x)
            result["parity"].setdefault(p, {})[name] = judge({s.id: agreement(s, ref, got, size) for s in specs}, p)
    judged = [r["passed"] for by in result["parity"].values() for r in by.values() if r["passed"] is not None]
    result["passed"] = all(judged)
    return result


__all__ = ["verify_bundle", "MODEL_FILES"]
