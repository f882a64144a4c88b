#!/usr/bin/env bash
# The INT8 study of issue 15 (docs/export.md, "INT8 that pays"): pure post-training quantization (whole graph
# int8, no float fallback) vs quantization-aware fine-tuning, for the three students of the reference run, on
# the default gate set (100 held-out phantom images per task, seed 2026), and PTQ range estimators on the
# distilled student. One export at a time (2 threads); then the summary table.
#
#   bash scripts/int8_study.sh [OUT=runs/int8-study]
set -euo pipefail
OUT=${1:-runs/int8-study}
mkdir -p "$OUT"
declare -A MODELS=([default]=usedge/assets/default_student [labels-only]=runs/ref-student/best
                   [distilled]=runs/ref-distill/best)
run() {  # name, args...
  local name=$1; shift
  [ -f "$OUT/$name/metadata.json" ] && { echo "have $OUT/$name"; return; }
  echo "== $name: usedge export $*"
  local t0=$SECONDS
  usedge export "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1 || true
  echo "$name wall $((SECONDS - t0)) s" | tee -a "$OUT/times.log"
  tail -1 "$OUT/$name.log"
}
for m in default distilled labels-only; do
  run "qat-$m" --model "${MODELS[$m]}" --qat always --qat-steps 300 --max-float 0
  run "ptq-$m" --model "${MODELS[$m]}" --qat never --max-float 0
done
run qat600-default --model "${MODELS[default]}" --qat always --qat-steps 600 --max-float 0   # the packaged default
for r in minmax mean_quantile; do
  run "ptq-distilled-$r" --model "${MODELS[distilled]}" --qat never --max-float 0 --range-estimator "$r"
done
python scripts/int8_summary.py "$OUT"/*/ > "$OUT/summary.md"
cat "$OUT/summary.md"
