#!/usr/bin/env bash
# The reference recipe behind docs/reference-run.md and the built-in default student
# (usedge/assets/default_student). CPU only, online phantom data (fresh images every step).
#   bash scripts/reference_run.sh            # everything; logs in runs/ref-*.log, wall times in runs/ref-times.log
# Every training step resumes: re-running the script after an interruption continues where it stopped.
# Steps:
#   1. teacher (student-s architecture, 4000 mixed-task steps) and the labels-only student (2000 steps) side
#      by side, one thread each (no OpenMP spin contention); the student selects on the teacher's held-out
#      split (runs/ref-teacher/heldout: seed 1001, 100 images per task)
#   2. the distilled student: the same 2000-step budget, schedule and seed as the labels-only one (2 threads)
#   3. a test set of a seed never trained or selected on (2027, 100 images per task) and the report on it
#   4. the distillation again with --no-kd detection, its report, and the curves of all runs
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RECIPE="--data phantom --input-size 128 --dense-stride 2 --batch-size 32 --tasks-per-batch 8 --lr 2e-3 --steps-per-epoch 500"
HELDOUT=runs/ref-teacher/heldout
TEST=data/phantom-test-2027
mkdir -p runs
stamp() { date -u +%FT%TZ; }
timed() {  # name, command...
  local name=$1; shift
  echo "$(stamp) start $name: $*" | tee -a runs/ref-times.log
  local t0=$SECONDS
  "$@" > "runs/$name.log" 2>&1
  echo "$(stamp) done  $name in $((SECONDS - t0)) s" | tee -a runs/ref-times.log
}
resume() { [ -f "$1/last/train_state.pt" ] && echo --resume || true; }

export OMP_NUM_THREADS=1
# the teacher's held-out split (what `usedge train --data phantom` would generate into OUT/heldout: seed + 1000)
[ -f $HELDOUT/phantom.json ] || $BIN/usedge data phantom --out $HELDOUT --seed 1001 --per-task 1 \
    --val-per-task 100 --size 256
timed ref-teacher $BIN/usedge train $RECIPE --model student-s --epochs 8 --threads 1 --seed 1 \
    --out runs/ref-teacher $(resume runs/ref-teacher) &
timed ref-student $BIN/usedge train $RECIPE --model student-s --epochs 4 --threads 1 --seed 2 \
    --val-data $HELDOUT --out runs/ref-student $(resume runs/ref-student) &
wait
unset OMP_NUM_THREADS
timed ref-distill $BIN/usedge distill $RECIPE --teacher runs/ref-teacher/best --student student-s --epochs 4 \
    --threads 2 --seed 2 --val-data $HELDOUT --no-ablation --no-report --out runs/ref-distill \
    $(resume runs/ref-distill)
[ -f $TEST/phantom.json ] || timed ref-test-data $BIN/usedge data phantom --out $TEST --seed 2027 --per-task 1 \
    --val-per-task 100 --size 256
timed ref-report $BIN/usedge distill $RECIPE --teacher runs/ref-teacher/best --student student-s --epochs 4 \
    --val-data $HELDOUT --labels-only runs/ref-student/best --report-only --report-data $TEST --out runs/ref-distill
# the same distillation with detection learning from its labels only (the teacher's boxes are worse than them)
timed ref-distill-nodetkd $BIN/usedge distill $RECIPE --teacher runs/ref-teacher/best --student student-s \
    --epochs 4 --threads 2 --seed 2 --val-data $HELDOUT --no-kd detection --no-ablation --no-report \
    --out runs/ref-distill-nodetkd $(resume runs/ref-distill-nodetkd)
timed ref-report-nodetkd $BIN/usedge distill $RECIPE --teacher runs/ref-teacher/best --student student-s \
    --epochs 4 --val-data $HELDOUT --no-kd detection --labels-only runs/ref-student/best --report-only \
    --report-data $TEST --out runs/ref-distill-nodetkd
$BIN/python scripts/plot_reference_curves.py runs/ref-teacher runs/ref-student runs/ref-distill runs/ref-distill-nodetkd
