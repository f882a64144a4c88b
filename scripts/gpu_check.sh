#!/usr/bin/env bash
# The GPU check, prepared to run as it is on a lent GPU machine (torch + CUDA; no TensorRT there), in <= 8 min:
#   bash scripts/gpu_check.sh            # results in $OUT (the device tool's output folder) or out/gpu_check
# It measures what needs a GPU (benchmarks/bench_gpu.py): the torch CUDA backend fp32 / fp16 (eager and CUDA
# graphs) for the shipped student, the B4 teacher's forward at 256², a training step of each. It runs from this
# source tree with the machine's own python and torch (nothing is installed); a module the machine lacks (timm,
# segmentation-models-pytorch) turns its rows into "not run: <reason>". TensorRT is reported present or absent:
# where it is absent no engine figure is produced. Copy gpu_check.md into benchmarks/RESULTS.md afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-out/gpu_check}"
mkdir -p "$out"
py="${PYTHON:-python3}"
{
  echo "== $(date -u +%FT%TZ) $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | head -5
  grep -m1 'model name' /proc/cpuinfo
  "$py" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
  "$py" -c 'import tensorrt; print("tensorrt", tensorrt.__version__)' 2>/dev/null || echo "tensorrt: not installed on this machine (no engine built, no TensorRT figure)"
} 2>&1 | tee "$out/environment.txt"
# 7 minutes for the rows, leaving the rest of the 8 for start-up and the copy back
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout 420 "$py" benchmarks/bench_gpu.py --out "$out" "$@" 2>&1 | tee "$out/bench_gpu.log"
rc=${PIPESTATUS[0]}
echo "gpu_check: bench_gpu exit $rc; files in $out"
exit "$rc"
