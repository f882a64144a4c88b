"""Which FP16 converter keeps the landmark and box heads right: onnxconverter-common (what ``usedge export``
writes, head arithmetic kept fp32) against NVIDIA ModelOpt AutoCast (its own choice of fp32 nodes, from a
calibration batch; and AutoCast with the same head-arithmetic exclusions), each judged against the torch fp32
reference on held-out phantom images on every CPU runtime (the parity of ``usedge export`` / ``usedge verify``).

ModelOpt pins its own onnx / onnxruntime versions, so AutoCast runs in its own virtual environment:

    python3 -m venv /tmp/mo && /tmp/mo/bin/pip install "nvidia-modelopt[onnx]"
    python benchmarks/compare_fp16.py --autocast-python /tmp/mo/bin/python --data data/phantom-test-4001 \
        --calib-data data/phantom-test-4002

Without ``--autocast-python`` the AutoCast rows are written as not run, with the reason.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def images(data: Path, config, per_task: int) -> np.ndarray:
    """``per_task`` preprocessed images of every task of ``data``'s val split (train when it has none)."""
    from usedge.data.fmcuia import load_split
    from usedge.data.preprocess import PreprocessSpec, preprocess

    split = "val" if (data / "val").is_dir() else "train"
    counts: dict[str, int] = {}
    chosen = []
    for s in load_split(data, split, list(config.tasks)):
        if counts.get(s.task_id, 0) < per_task:
            counts[s.task_id] = counts.get(s.task_id, 0) + 1
            chosen.append(preprocess(s.load_image(), PreprocessSpec.from_config(config)))
    return np.stack(chosen).astype(np.float32)


def reference(model, x: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        return {k: v.float().numpy() for k, v in model(torch.from_numpy(x)).items()}


def ours(fp32: Path, out: Path, scopes: list[str]) -> str:
    import onnx

    from usedge.models.onnx import to_fp16

    model, how = to_fp16(onnx.load(str(fp32)), scopes)
    onnx.save(model, str(out))
    return how


def autocast(python: str, fp32: Path, out: Path, calib: Path, exclude: list[str]) -> str:
    cmd = [python, "-m", "modelopt.onnx.autocast", "--onnx_path", str(fp32), "--output_path", str(out),
           "--low_precision_type", "fp16", "--keep_io_types", "--calibration_data", str(calib),
           "--log_level", "WARNING"]
    if exclude:
        cmd += ["--nodes_to_exclude", *exclude]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"AutoCast failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-400:]}")
    version = subprocess.run([python, "-c", "import modelopt; print(modelopt.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    return f"ModelOpt {version} AutoCast" + (f", {len(exclude)} head-arithmetic patterns excluded" if exclude else "")


def fp32_nodes(path: Path) -> tuple[int, int]:
    """(nodes computing in fp32, all compute nodes) of an FP16 graph: a node is fp32 when its first output is."""
    import onnx
    from onnx import TensorProto

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.output]}
    compute = [n for n in model.graph.node if n.op_type not in ("Cast", "Constant", "Shape", "Reshape", "Identity")]
    fp32 = [n for n in compute if n.output and types.get(n.output[0]) == TensorProto.FLOAT]
    return len(fp32), len(compute)


def summarize(result: dict) -> dict:
    """Worst per-family agreement over the tasks, per backend."""
    out = {}
    for backend, r in result.items():
        tasks = r["tasks"].values()
        out[backend] = {"passed": r["passed"],
                        "dice_min": min((t["dice"] for t in tasks if "dice" in t), default=None),
                        "top1_min": min((t["top1"] for t in tasks if "top1" in t), default=None),
                        "iou_min": min((t["iou"] for t in tasks if "iou" in t), default=None),
                        "px_max": max((t["px"] for t in tasks if "px" in t), default=None)}
    return out


def main(argv: list[str] | None = None) -> int:
    from usedge.assets import default_checkpoint, shipped_bundle
    from usedge.backends.parity import parity_by_backend
    from usedge.quantize.int8 import head_arithmetic_scopes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="held-out phantom set (judged on)")
    ap.add_argument("--calib-data", type=Path, required=True, help="another seed's set (AutoCast's calibration)")
    ap.add_argument("--per-task", type=int, default=4)
    ap.add_argument("--autocast-python", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from usedge.models.checkpoint import load_checkpoint

    fp32 = shipped_bundle() / "model.fp32.onnx"
    model, config, _ = load_checkpoint(default_checkpoint())
    x = images(args.data, config, args.per_task)
    ref = reference(model, x)
    scopes = head_arithmetic_scopes(config.task_specs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calib = tmp / "calib.npz"
        np.savez(calib, images=images(args.calib_data, config, 2))
        variants = [("onnxconverter-common, head arithmetic fp32", lambda p: ours(fp32, p, scopes))]
        for label, exclude in (("AutoCast, its own choice", []), ("AutoCast, head arithmetic excluded", scopes)):
            if args.autocast_python:
                variants.append((label, lambda p, e=exclude: autocast(args.autocast_python, fp32, p, calib, e)))
            else:
                rows.append({"converter": label, "not_run": "no --autocast-python (ModelOpt's venv)"})
        for i, (label, make) in enumerate(variants):
            path = tmp / f"v{i}.fp16.onnx"
            try:
                how = make(path)
            except Exception as exc:  # noqa: BLE001 - a converter that fails is a row with its reason
                rows.append({"converter": label, "not_run": str(exc)[:300]})
                continue
            kept, total = fp32_nodes(path)
            result = parity_by_backend(path, x, ref, config.task_specs, config.input_size, "fp16")
            rows.append({"converter": label, "how": how, "fp32_nodes": kept, "nodes": total,
                         "bytes": path.stat().st_size, "by_backend": summarize(result)})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{len(x)} held-out images ({args.per_task} per task, {args.data}); reference: torch fp32")
    for r in rows:
        if "not_run" in r:
            print(f"- {r['converter']}: not run: {r['not_run']}")
            continue
        for backend, s in r["by_backend"].items():
            print(f"- {r['converter']} | {backend} | fp32 nodes {r['fp32_nodes']}/{r['nodes']} | Dice >= {s['dice_min']:.4f} "
                  f"| top-1 >= {s['top1_min']:.3f} | box IoU >= {s['iou_min']:.4f} | landmark <= {s['px_max']:.3f} px "
                  f"| {'passes' if s['passed'] else 'FAILS'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
