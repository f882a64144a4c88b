"""Is this bundle's int8 right *on this machine*? The check that travels with the bundle.

An int8 graph computes different numbers on different CPUs when a runtime's integer kernels saturate (CPUs
without VNNI, usedge._cpu). The export stores a few in-domain images per task (``int8_check.npz``, uint8 at
the model's input size) and the int8 graph's *exact* outputs on them: ONNX Runtime with graph optimization
off runs every DequantizeLinear -> op -> QuantizeLinear in float, which is what the Q/DQ graph means whatever
the CPU. :func:`check_backend` runs a backend here on the same images and compares each task on its own
images (segmentation: Dice of the argmax maps; classification: top-1 and probability; detection: IoU of the
best box; landmarks: input pixels) with tolerances measured on VNNI and emulated non-VNNI CPUs (docs/export.md,
"INT8 on every CPU"). ``usedge export`` records the verdicts of the machine it ran on (and of an emulated
CPU without VNNI), ``usedge verify`` and ``usedge.load(precision="auto")`` run it again here; verdicts are
cached by content (graph, check file, backend version, instruction set).

``python -m usedge.backends.int8_check BUNDLE [--backend NAME]`` prints the verdicts as JSON: the export runs
it with ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN's kernels without VNNI) to check a CPU it does not have. No torch.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from usedge._cpu import isa_for
from usedge.backends.parity import dice_maps
from usedge.bundle.metadata import INT8_CHECK_FILE
from usedge.data.decode import box_iou
from usedge.tasks import TaskKind, TaskSpec, get_task

CHECK_FILE = INT8_CHECK_FILE
#: images per task stored in the check file
PER_TASK = 2


@dataclass(frozen=True)
class Tolerance:
    """How far a backend's int8 may be from the exact Q/DQ result on the check images (per task, worst image).
    Rounding differences of correct int8 kernels stay well inside these; saturation does not (measured, see
    docs/export.md)."""

    dice: float = 0.85          # segmentation: Dice of the argmax maps, mean over the task's images, on the
    margin: float = 0.10        # pixels where the exact result's top-1 leads its top-2 by this much
    prob: float = 0.10          # classification: largest |softmax difference|
    iou: float = 0.90           # detection: IoU of the boxes at the reference's best cell, lowest, and
    objectness: float = 0.05    # the 99th percentile of |sigmoid objectness difference| over the cells
    px: float = 1.5             # landmarks: largest point distance in input pixels


DEFAULT_TOLERANCE = Tolerance()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def summarize(spec: TaskSpec, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What is stored and compared of a task's outputs: segmentation argmax maps (uint8) and their confidence
    margin (top-1 minus top-2 softmax, × 255, uint8) under ``margin::<name>``; everything else as is."""
    names = spec.output_names
    if spec.kind is TaskKind.SEGMENTATION:
        logits = np.asarray(out[names[0]], np.float32)
        top2 = np.sort(_softmax(logits), axis=1)[:, -2:]
        margin = np.rint((top2[:, 1] - top2[:, 0]) * 255).astype(np.uint8)
        return {names[0]: logits.argmax(1).astype(np.uint8), f"margin::{names[0]}": margin}
    return {n: np.asarray(out[n], np.float32) for n in names}


def compare(spec: TaskSpec, ref: dict[str, np.ndarray], got: dict[str, np.ndarray], size: int,
            tol: Tolerance = DEFAULT_TOLERANCE) -> dict:
    """One task's agreement (segmentation: mean over its images; the rest: worst image) and whether it is within
    ``tol``: {"metric", "value", "ok"}."""
    names = spec.output_names
    n = ref[names[0]].shape[0]
    if spec.kind is TaskKind.SEGMENTATION:
        # pixels where the exact result is itself undecided (top-1 and top-2 within tol.margin) are not compared:
        # there one rounding step flips the argmax (measured: Dice 0.77 on a barely trained student, exact elsewhere)
        margin = ref.get(f"margin::{names[0]}")
        sure = np.ones(ref[names[0]].shape, bool) if margin is None else margin >= round(tol.margin * 255)
        mine = np.where(sure, got[names[0]], ref[names[0]])
        v = float(np.mean([dice_maps(ref[names[0]][i], mine[i], spec.num_classes) for i in range(n)]))
        return {"metric": "dice", "value": round(v, 4), "compared": round(float(sure.mean()), 3), "ok": v >= tol.dice}
    if spec.kind is TaskKind.CLASSIFICATION:
        pr, pg = _softmax(ref[names[0]]), _softmax(got[names[0]])
        v = float(np.abs(pr - pg).max())
        # a top-1 flip within tol.prob is an image on the decision boundary (measured: 0.02 apart), not an error
        same = bool(np.all(pr.argmax(1) == pg.argmax(1)))
        return {"metric": "prob", "value": round(v, 4), "top1": same, "ok": v <= tol.prob}
    if spec.kind is TaskKind.DETECTION:
        # the box at the reference's most confident cell, not each side's own argmax: on a flat objectness map
        # one rounding step moves the argmax (measured: IoU 0.47 on a barely trained student, exact elsewhere)
        boxes_r, boxes_g = ref[names[0]].reshape(n, 4, -1), got[names[0]].reshape(n, 4, -1)
        obj_r, obj_g = ref[names[1]].reshape(n, -1), got[names[1]].reshape(n, -1)
        cells = obj_r.argmax(1)
        v = min(float(box_iou(boxes_r[i, :, k], boxes_g[i, :, k][None])[0]) for i, k in enumerate(cells))
        # objectness: the 99th percentile over the cells (the largest few differences of correct kernels sit where
        # the sigmoid is steepest: max 0.12 with ORT on a correct graph, p99 <= 0.025)
        drift = float(np.quantile(np.abs(_sigmoid(obj_r) - _sigmoid(obj_g)), 0.99))
        return {"metric": "iou", "value": round(v, 4), "objectness_p99": round(drift, 4),
                "ok": v >= tol.iou and drift <= tol.objectness}
    v = float(np.linalg.norm((ref[names[0]] - got[names[0]]) * size, axis=-1).max())
    return {"metric": "px", "value": round(v, 3), "ok": v <= tol.px}


# -- the check file ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckSet:
    """The stored images (uint8, N×S×S or N×S×S×3, model input size), the task of each and the exact int8
    outputs of each task on its own images."""

    images: np.ndarray
    tasks: tuple[str, ...]
    ref: dict[str, np.ndarray]
    sha256: str

    def task_index(self) -> dict[str, np.ndarray]:
        order = np.asarray(self.tasks)
        return {t: np.flatnonzero(order == t) for t in dict.fromkeys(self.tasks)}


def at_input_size(image: np.ndarray, spec) -> np.ndarray:
    """A stored frame resized as the runtime resizes it, still uint8: preprocessing it again is exact (a
    same-size resize is the identity), so the check file keeps 1 byte per pixel instead of 12."""
    from usedge.data.preprocess import resize_interpolation, resize_square
    from usedge.data.transforms import to_gray_or_bgr_uint8

    img = to_gray_or_bgr_uint8(image)
    return resize_square(img, spec.size, resize_interpolation(spec.resize, img.shape[0], img.shape[1], spec.size))


def build(images: list[np.ndarray], tasks: list[str], int8_model: str | Path, spec) -> bytes:
    """The check file's bytes: ``images`` (uint8, already at the model's input size), their tasks, and the exact
    Q/DQ outputs of ``int8_model`` (ONNX Runtime without graph optimization) per task on its own images."""
    from usedge.backends import open_backend
    from usedge.data.preprocess import preprocess

    stack = np.stack(images).astype(np.uint8)
    if stack.shape[1:3] != (spec.size, spec.size):
        raise ValueError(f"check images are {stack.shape[1:3]}, the model takes {spec.size}²")
    exact = open_backend("onnxruntime", int8_model, optimize=False)
    try:
        out = exact.infer(np.stack([preprocess(im, spec) for im in stack]))
    finally:
        exact.close()
    order = np.asarray(tasks)
    arrays = {"images": stack, "tasks": order}
    for task in dict.fromkeys(tasks):
        idx = np.flatnonzero(order == task)
        spec_t = get_task(task)
        for name, value in summarize(spec_t, {k: v[idx] for k, v in out.items()}).items():
            arrays[f"ref::{name}"] = value
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def load_check(path: str | Path) -> CheckSet | None:
    """The check set of a bundle folder (or of the file itself); None when the bundle has none."""
    path = Path(path)
    file = path / CHECK_FILE if path.is_dir() else path
    if not file.is_file():
        return None
    data = file.read_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        ref = {k.removeprefix("ref::"): z[k] for k in z.files if k.startswith("ref::")}
        return CheckSet(z["images"], tuple(str(t) for t in z["tasks"]), ref, hashlib.sha256(data).hexdigest())


# -- running it -------------------------------------------------------------------------------------------


def check_outputs(check: CheckSet, infer, spec, tol: Tolerance = DEFAULT_TOLERANCE) -> dict:
    """Run ``infer`` (N×3×S×S float32 -> {output: array}) on the check images; {"passed", "tasks", "failing"}."""
    from usedge.data.preprocess import preprocess

    x = np.stack([preprocess(im, spec) for im in check.images])
    out = {}
    for start in range(0, len(x), 8):   # the backend's batch range (the cpu target takes up to 8)
        for k, v in infer(x[start:start + 8]).items():
            out.setdefault(k, []).append(v)
    out = {k: np.concatenate(v) for k, v in out.items()}
    rows = {}
    for task, idx in check.task_index().items():
        spec_t = get_task(task)
        got = summarize(spec_t, {k: out[k][idx] for k in spec_t.output_names})
        rows[task] = compare(spec_t, {k: check.ref[k] for k in got if k in check.ref}, got, spec.size, tol)
    failing = sorted(t for t, r in rows.items() if not r["ok"])
    return {"passed": not failing, "failing": failing, "tasks": rows}


def check_backend(bundle, backend: str, check: CheckSet | None = None, use_cache: bool = True,
                  opened=None) -> dict:
    """This machine's verdict on ``bundle``'s int8 graph through ``backend`` (see :func:`check_model`);
    {"passed": None, "reason"} when the bundle has no check file."""
    check = check if check is not None else load_check(bundle.path)
    if check is None:
        return {"passed": None, "reason": f"this bundle has no {CHECK_FILE} (exported before usedge checked int8 "
                                          "per machine); re-export it to check int8 here"}
    return check_model(bundle.model_path("int8"), check, bundle.preprocess, backend, use_cache=use_cache,
                       opened=opened)


def check_model(model: str | Path, check: CheckSet, spec, backend: str, use_cache: bool = True,
                opened=None) -> dict:
    """The int8 graph ``model`` through ``backend`` here (opened now unless ``opened`` is that backend already
    open on it) against the check set: {"passed", "failing", "tasks", "backend", "backend_version", "machine",
    "cached"}. Cached by content: the graph's and the check file's sha256, the backend version, the instruction
    set the backend uses (OpenVINO obeys ``ONEDNN_MAX_CPU_ISA``; ONNX Runtime does not) and the tolerance."""
    from usedge.bundle import sha256_file

    machine = isa_for(backend).to_dict()
    version = _backend_version(backend)
    key = hashlib.sha256(json.dumps([sha256_file(model), check.sha256, backend, version, machine["label"],
                                     asdict(DEFAULT_TOLERANCE)]).encode()).hexdigest()[:24]
    cached = _cache_get(key) if use_cache else None
    if cached is not None:
        return cached | {"cached": True}
    if opened is None:
        from usedge.backends import open_backend

        be = open_backend(backend, model)
        try:
            result = check_outputs(check, be.infer, spec)
        finally:
            be.close()
    else:
        result = check_outputs(check, opened.infer, spec)
    result |= {"backend": backend, "backend_version": version, "machine": machine}
    _cache_put(key, result)
    return result | {"cached": False}


def check_emulated(model: str | Path, check_file: str | Path, spec, cap: str = "AVX2", backend: str = "openvino",
                   timeout: float = 300) -> dict:
    """The check under ``ONEDNN_MAX_CPU_ISA=cap`` in a child process (oneDNN reads the cap once, at start):
    OpenVINO as it runs on a CPU without VNNI. {"passed": None, "reason"} when it cannot run."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": cap}
    cmd = [sys.executable, "-m", "usedge.backends.int8_check", "--model", str(model), "--check", str(check_file),
           "--spec", json.dumps(spec.to_dict()), "--backend", backend, "--no-cache"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"passed": None, "reason": f"emulated check did not run: {exc}"}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])[backend]
    except (IndexError, KeyError, ValueError):
        return {"passed": None, "reason": f"emulated check failed to run (exit {proc.returncode}): "
                                          f"{proc.stderr.strip()[-300:]}"}


#: int8 is used where it is at least this much faster than fp32 on the machine at hand
MIN_SPEEDUP = 1.05


def int8_speedup_here(bundle, backend: str, runs: int = 30) -> dict:
    """int8 vs fp32 of ``bundle`` through ``backend`` on this machine, batch 1, interleaved call by call:
    {"fp32_ms", "int8_ms", "speedup", "machine", "cached"}. Measured once per (graphs, backend version,
    instruction set) and cached: about a second the first time."""
    import time

    from usedge.backends import open_backend
    from usedge.bundle import sha256_file

    machine = isa_for(backend).to_dict()
    key = "speed-" + hashlib.sha256(json.dumps([sha256_file(bundle.model_path("fp32")), sha256_file(bundle.model_path("int8")),
                                               backend, _backend_version(backend), machine["label"]]).encode()
                                    ).hexdigest()[:24]
    cached = _cache_get(key)
    if cached is not None:
        return cached | {"cached": True}
    size = bundle.preprocess.size
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    opened = {p: open_backend(backend, bundle.model_path(p)) for p in ("fp32", "int8")}
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    try:
        for _ in range(5):
            for be in opened.values():
                be.infer(x)
        for _ in range(runs):
            for p, be in opened.items():
                t0 = time.perf_counter()
                be.infer(x)
                times[p].append((time.perf_counter() - t0) * 1e3)
    finally:
        for be in opened.values():
            be.close()
    f, q = float(np.median(times["fp32"])), float(np.median(times["int8"]))
    result = {"fp32_ms": round(f, 3), "int8_ms": round(q, 3), "speedup": round(f / q, 3), "machine": machine}
    _cache_put(key, result)
    return result | {"cached": False}


def _backend_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version({"openvino": "openvino", "onnxruntime": "onnxruntime"}.get(name, name))
    except PackageNotFoundError:
        return "unknown"


def _cache_dir() -> Path:
    return Path(os.environ.get("USEDGE_CACHE", Path.home() / ".cache" / "usedge")) / "int8-check"


def _cache_get(key: str) -> dict | None:
    try:
        return json.loads((_cache_dir() / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None


def _cache_put(key: str, result: dict) -> None:
    from usedge._io import atomic_write_bytes

    try:
        atomic_write_bytes(_cache_dir() / f"{key}.json", json.dumps(result).encode())
    except OSError:
        pass   # a read-only home: the check simply runs again next time


def main(argv: list[str] | None = None) -> int:
    import argparse

    from usedge.backends import available_backends
    from usedge.data.preprocess import PreprocessSpec

    ap = argparse.ArgumentParser(description="Check an int8 graph on this machine (JSON verdicts on stdout).")
    ap.add_argument("bundle", nargs="?", help="a bundle folder (or give --model, --check and --spec)")
    ap.add_argument("--model")
    ap.add_argument("--check")
    ap.add_argument("--spec", help="the preprocessing as JSON (PreprocessSpec.to_dict)")
    ap.add_argument("--backend", action="append", default=None)
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    names = args.backend or available_backends()
    if args.bundle:
        from usedge.bundle import load_bundle

        bundle = load_bundle(args.bundle)
        out = {b: check_backend(bundle, b, use_cache=not args.no_cache) for b in names}
    else:
        check, spec = load_check(args.check), PreprocessSpec.from_dict(json.loads(args.spec))
        out = {b: check_model(args.model, check, spec, b, use_cache=not args.no_cache) for b in names}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
