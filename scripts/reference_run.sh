#!/usr/bin/env bash
# The reference recipe behind docs/reference-run.md and the built-in default student
# (usedge/assets/default_student). CPU only; on the 2-core workplace machine it takes about an hour.
#   bash scripts/reference_run.sh            # everything, logs and wall times in runs/ref-*.log
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DATA=data/phantom-ref
COMMON="--data $DATA --input-size 128 --batch-size 16 --lr 2e-3"
ECHO=$($BIN/python -c "from pydicom.data import get_testdata_file as g; print(g('color3d_jpeg_baseline.dcm'))")
mkdir -p runs
stamp() { date -u +%FT%TZ; }
timed() {  # name, command...
  local name=$1; shift
  echo "$(stamp) start $name: $*" | tee -a runs/ref-times.log
  local t0=$SECONDS
  "$@" > "runs/$name.log" 2>&1
  echo "$(stamp) done  $name in $((SECONDS - t0)) s" | tee -a runs/ref-times.log
}
[ -f $DATA/phantom.json ] || timed ref-data $BIN/usedge data phantom --out $DATA --per-task 120 --seed 2026 --size 256
# teacher and labels-only student side by side, one thread each (2 cores)
OMP_NUM_THREADS=1 timed ref-teacher-b4 $BIN/usedge train $COMMON --model baseline-b4 --epochs 8 \
    --steps-per-epoch 100 --out runs/ref-teacher-b4 &
OMP_NUM_THREADS=1 timed ref-student-s $BIN/usedge train $COMMON --model student-s --epochs 10 \
    --steps-per-epoch 150 --out runs/ref-student-s &
wait
timed ref-distill $BIN/usedge distill --teacher runs/ref-teacher-b4/best --student student-s $COMMON \
    --unlabelled "$ECHO" --unlabelled-every 4 --epochs 10 --steps-per-epoch 150 \
    --labels-only runs/ref-student-s/best --out runs/ref-distill
