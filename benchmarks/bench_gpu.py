"""GPU figures that need a CUDA machine: the torch CUDA backend (fp32 / fp16, eager / CUDA graphs) for the
shipped student, the baseline-compatible B4 teacher's one-pass forward at the official 256², and one training
step of each (to size a GPU teacher-training or distillation schedule). Run by ``scripts/gpu_check.sh``.

Every row is timed in this one process, side by side, after a warm-up, with the device synchronised (the
backend rows return host arrays; the model rows call ``torch.cuda.synchronize``). Rows whose dependency is
missing are written with the reason, never left out silently; TensorRT is reported as present or absent and
never faked. ``--device cpu`` runs the same code on the CPU (a smoke run; CPU numbers belong to ``usedge bench``).

    python benchmarks/bench_gpu.py --out out/gpu_check            # JSON + Markdown rows under out/gpu_check
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:                 # runs from a source checkout on a machine without an install
    sys.path.insert(0, str(ROOT))


def environment(device: str) -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "device": device,
           "cuda": torch.version.cuda, "cpu": _cpu_model()}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update(gpu=props.name, compute_capability=f"{props.major}.{props.minor}",
                   gpu_memory_gib=round(props.total_memory / 2**30, 1))
    for module in ("timm", "segmentation_models_pytorch", "safetensors", "cv2", "onnx", "tensorrt"):
        try:
            env[module] = getattr(__import__(module), "__version__", "present")
        except Exception as exc:  # noqa: BLE001 - an absent or broken module is reported, not raised
            env[module] = f"absent ({type(exc).__name__})"
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _stats(times_ms: list[float]) -> dict:
    t = np.asarray(times_ms)
    return {"p50_ms": round(float(np.percentile(t, 50)), 3), "p95_ms": round(float(np.percentile(t, 95)), 3),
            "runs": int(t.size)}


def _sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def student_rows(device: str, runs: int, batches: tuple[int, ...]) -> list[dict]:
    """The torch backend on the shipped student checkpoint: what ``usedge.load(backend="torch")`` runs."""
    from usedge.assets import default_checkpoint
    from usedge.backends.torch_backend import TorchBackend

    variants = [("fp32", {}), ("fp32 graphs", {"cuda_graphs": True}), ("fp16", {"half": True}),
                ("fp16 graphs", {"half": True, "cuda_graphs": True})]
    if not device.startswith("cuda"):
        variants = variants[:1]
    rows = []
    for label, options in variants:
        backend = TorchBackend(default_checkpoint(), device=device, **options)
        try:
            spec = backend.input
            for n in batches:
                x = np.random.default_rng(0).random((n, spec.channels, spec.height, spec.width), np.float32)
                for _ in range(5):
                    backend.infer(x)
                backend.reset_latency()
                for _ in range(runs):
                    backend.infer(x)
                lat = backend.latency()
                rows.append({"model": "student (shipped)", "size": spec.height, "variant": label, "batch": n,
                             "p50_ms": round(lat.p50_ms, 3), "p95_ms": round(lat.p95_ms, 3), "runs": lat.calls})
                _progress(rows[-1])
        finally:
            backend.close()
    return rows


def teacher_rows(device: str, runs: int, batches: tuple[int, ...], size: int = 256) -> list[dict]:
    """baseline-b4 (EfficientNet-B4 + FPN, all 27 heads, random weights: latency does not depend on them)."""
    import torch

    from usedge.models.presets import build_model

    model = build_model("baseline-b4").to(device).eval()
    rows = []
    for label, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        if dtype is torch.float16 and not device.startswith("cuda"):
            continue
        net = model.to(dtype)
        for n in batches:
            x = torch.rand(n, 3, size, size, device=device, dtype=dtype)
            times = []
            with torch.inference_mode():
                for i in range(5 + runs):
                    _sync(torch, device)
                    start = time.perf_counter()
                    net(x)
                    _sync(torch, device)
                    if i >= 5:
                        times.append((time.perf_counter() - start) * 1e3)
            rows.append({"model": "baseline-b4 teacher", "size": size, "variant": label, "batch": n, **_stats(times)})
            _progress(rows[-1])
    return rows


def train_step_rows(device: str, steps: int, batch: int = 32) -> list[dict]:
    """One optimiser step (forward, a loss over every output, backward, AdamW) for the student and the teacher,
    in fp32 and bf16 autocast on CUDA: the per-step cost a GPU training schedule is planned from."""
    import torch

    from usedge.models.presets import build_model, resolve_config

    rows = []
    for name in ("student-s", "baseline-b4"):
        size = resolve_config(name).input_size
        model = build_model(name).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.rand(batch, 3, size, size, device=device)
        modes = [("fp32", None)] + ([("bf16 autocast", torch.bfloat16)] if device.startswith("cuda") else [])
        for label, amp in modes:
            times = []
            for i in range(3 + steps):
                _sync(torch, device)
                start = time.perf_counter()
                with torch.autocast(device.split(":")[0], dtype=amp, enabled=amp is not None):
                    out = model(x)
                    loss = sum(v.float().mean() for v in _tensors(out))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                _sync(torch, device)
                if i >= 3:
                    times.append((time.perf_counter() - start) * 1e3)
            rows.append({"model": f"{name} train step", "size": size, "variant": label, "batch": batch,
                         **_stats(times)})
            _progress(rows[-1])
    return rows


def _tensors(out):
    import torch

    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for v in out.values():
            yield from _tensors(v)
    elif isinstance(out, (list, tuple)):
        for v in out:
            yield from _tensors(v)


def _progress(row: dict) -> None:
    print(f"  {row['model']:<28} {row['size']:>4}²  {row['variant']:<12} batch {row['batch']:>2}  "
          f"p50 {row['p50_ms']:9.3f} ms  p95 {row['p95_ms']:9.3f} ms", flush=True)


def markdown(env: dict, rows: list[dict], skipped: list[dict]) -> str:
    head = (f"{time.strftime('%Y-%m-%d')}, {env.get('gpu', env['device'])} (sm {env.get('compute_capability', '-')}, "
            f"{env.get('gpu_memory_gib', '-')} GiB), CPU {env['cpu']}, torch {env['torch']} (CUDA {env['cuda']}), "
            f"TensorRT: {env['tensorrt']}")
    lines = [head, "", "| model | input | variant | batch | p50 ms | p95 ms | runs |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['size']}² | {r['variant']} | {r['batch']} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} "
              f"| {r['runs']} |" for r in rows]
    lines += [f"| {s['rows']} | | not run: {s['reason']} | | | | |" for s in skipped]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--only", default="student,teacher,train", help="comma list of: student, teacher, train")
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here (torch.cuda.is_available() is False); nothing measured.", file=sys.stderr)
        return 3
    torch.backends.cudnn.benchmark = True
    env = environment(args.device)
    print(json.dumps(env), flush=True)
    batches = tuple(int(b) for b in args.batches.split(","))
    groups = {"student": lambda: student_rows(args.device, args.runs, batches),
              "teacher": lambda: teacher_rows(args.device, max(10, args.runs // 4), batches),
              "train": lambda: train_step_rows(args.device, args.train_steps)}
    rows, skipped = [], []
    for name in [g for g in args.only.split(",") if g]:
        try:
            rows += groups[name]()
        except Exception as exc:  # noqa: BLE001 - a missing timm/smp on the GPU machine: say so, go on
            skipped.append({"rows": name, "reason": f"{type(exc).__name__}: {str(exc)[:200]}"})
            print(f"  {name}: not run: {skipped[-1]['reason']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps({"environment": env, "rows": rows, "skipped": skipped},
                                                        indent=2) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(env, rows, skipped))
    print(f"wrote {args.out / 'gpu_check.json'} and gpu_check.md", flush=True)
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
