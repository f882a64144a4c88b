"""``usedge verify BUNDLE [--data DIR]``: the static checks (:func:`usedge.bundle.verify.check_bundle`: metadata,
checksums, onnx.checker, Q/DQ placement), then one frame through the Predictor users run (every precision ×
backend here: opens, preprocesses, infers and decodes every task), the int8 check *on this machine* (every
backend here against the int8 graph's exact outputs, usedge.backends.int8_check; also for slim bundles; on a
VNNI CPU also OpenVINO without VNNI, emulated), per-task parity of every backend against the torch reference
outputs stored in the bundle (full bundles), and with ``data`` the paired fp32-vs-int8 gate on its held-out
split, run here. Needs no torch."""
from __future__ import annotations

import numpy as np

from usedge.backends import available_backends
from usedge.backends.parity import parity_by_backend
from usedge.bundle import FP16_FILE, MODEL_FILES
from usedge.bundle.verify import check_bundle
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


def int8_here(bundle, emulate: bool = True) -> dict:
    """{"backends": {name: verdict}, "emulated_avx2": verdict (VNNI machines, OpenVINO), "passed": bool | None}:
    None when the bundle has no check file (exported before the check existed). The emulated verdict counts
    only for 7-bit weights, the bundles that promise every x86 CPU."""
    from usedge._cpu import cpu_isa
    from usedge.backends.int8_check import CHECK_FILE, check_backend, check_emulated, load_check

    check = load_check(bundle.path)
    out: dict = {"backends": {b: check_backend(bundle, b, check, use_cache=False) for b in available_backends()}}
    if check is not None and emulate and cpu_isa().vnni and "openvino" in out["backends"]:
        out["emulated_avx2"] = check_emulated(bundle.model_path("int8"), bundle.path / CHECK_FILE, bundle.preprocess)
    bits = (bundle.metadata.get("int8") or {}).get("weight_bits", 8)
    judged = [r["passed"] for r in out["backends"].values()]
    if "emulated_avx2" in out and bits == 7:
        judged.append(out["emulated_avx2"]["passed"])
    out["weight_bits"] = bits
    out["passed"] = None if check is None else all(v is not False for v in judged)
    return out


def gate_here(bundle, data, backend: str | None = None) -> dict:
    """The paired per-task gate of the export, on this machine: fp32 and int8 of ``bundle`` scored image by
    image on ``data``'s held-out split through ``backend`` (default: the first installed), with the bundle's
    gate settings. {"rows": [...], "failing": [...], "passed": bool}."""
    import warnings
    from dataclasses import asdict
    from pathlib import Path

    from usedge.backends import open_backend
    from usedge.data.fmcuia import load_split
    from usedge.errors import DataError
    from usedge.metrics.classification import UndefinedAUCWarning
    from usedge.metrics.scoring import evaluate_predictor
    from usedge.quantize.gate import GateConfig, apply_gate, failing

    if not {"fp32", "int8"} <= set(bundle.precisions):
        raise DataError(f"bundle {bundle.path} needs both fp32 and int8 models for the paired gate "
                        f"(it has {', '.join(bundle.precisions)}).", fix="verify the full export, or drop --data")
    root = Path(data)
    split = "val" if (root / "val" / "csv_files").is_dir() else "train"
    samples = load_split(root, split, bundle.tasks)
    backend = backend or available_backends()[0]
    scores = {}
    for p in ("fp32", "int8"):
        be = open_backend(backend, bundle.model_path(p))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedAUCWarning)
                report = evaluate_predictor(lambda x, task, be=be: be.infer(x), bundle.preprocess, samples, bundle.tasks)
        finally:
            be.close()
        scores[p] = (report.results(), report.per_sample())
    cfg = GateConfig(**(bundle.metadata.get("int8") or {}).get("gate_config", {}))
    rows = apply_gate(scores["fp32"][0], scores["int8"][0], cfg, scores["fp32"][1], scores["int8"][1])
    return {"backend": backend, "data": str(root), "split": split, "rows": [asdict(r) for r in rows],
            "failing": failing(rows), "passed": not failing(rows)}


def verify_bundle(path, data=None, emulate: bool = True) -> dict:
    """Returns {"checksums": True, "checker": {...}, "placement": {...} (int8, with onnx), "frame": {precision:
    {backend: {...}}}, "int8_check": {...} (int8), "parity": {precision: {backend: {...}}}, "gate": {...} (with
    ``data``), "passed": bool}."""
    bundle, result = check_bundle(path)   # raises on a tampered / truncated bundle or invalid metadata
    result.update({"frame": {}, "parity": {}})

    for p in bundle.precisions:
        for name in available_backends():
            result["frame"].setdefault(p, {})[name] = one_frame(bundle, p, name)
    ok = all(r["ok"] for by in result["frame"].values() for r in by.values())
    if "int8" in bundle.precisions:
        result["int8_check"] = int8_here(bundle, emulate)
        ok = ok and result["int8_check"]["passed"] is not False
    if data is not None:
        result["gate"] = gate_here(bundle, data)
        ok = ok and result["gate"]["passed"]
    if not (bundle.path / "parity_inputs.npz").is_file():  # a slim bundle (slim_bundle) ships without them
        result["parity_skipped"] = "no parity_inputs.npz in this (slim) bundle; verify the full export instead"
        result["passed"] = ok
        return result
    with np.load(bundle.path / "parity_inputs.npz") as z:
        x = z["images"]
        ref = {k.removeprefix("ref::"): z[k] for k in z.files if k.startswith("ref::")}
    specs = [get_task(t) for t in bundle.tasks]
    size = bundle.preprocess.size
    for p in bundle.precisions:
        result["parity"][p] = parity_by_backend(bundle.model_path(p), x, ref, specs, size, p)
    if FP16_FILE in bundle.meta.files:   # the FP16 graph TensorRT builds from (targets that run TensorRT)
        result["parity"]["fp16"] = parity_by_backend(bundle.path / FP16_FILE, x, ref, specs, size, "fp16")
    judged = [r["passed"] for by in result["parity"].values() for r in by.values() if r["passed"] is not None]
    result["passed"] = ok and all(judged)
    return result


__all__ = ["verify_bundle", "MODEL_FILES"]
