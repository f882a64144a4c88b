#!/usr/bin/env bash
# Check usedge against the official FMC-UIA baseline code end to end (docs/official-baseline.md).
#
#   bash scripts/official_check.sh REPO WORK [CKPT]
#
# REPO: your checkout of github.com/lijiake2408/Foundation-Model-Challenge-for-Ultrasound-Image-Analysis.
# WORK: a scratch folder. CKPT: optional usedge baseline-b4 checkpoint to take weights from (else random).
# Environments: PY (default .venv/bin/python) needs usedge[train] and albumentations==2.0.8 (the official
# inference's transforms); EVAL_PY (default: PY) needs the official evaluator's pins (pandas, SimpleITK,
# scikit-learn==1.2.2).
set -euo pipefail
REPO=$(realpath "$1"); WORK=$(realpath -m "$2"); CKPT=${3:-}
PY=${PY:-$(pwd)/.venv/bin/python}; EVAL_PY=${EVAL_PY:-$PY}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
"$PY" -c "from usedge.data.phantom import generate_dataset as g; g('$WORK/data', per_task=30, seed=2026, size=400, progress=False)"
"$PY" "$HERE/official_check.py" teacher --repo "$REPO" --data "$WORK/data/val" --out "$WORK/best_model.pth" ${CKPT:+--from "$CKPT"}
# the official inference, unchanged, except that json.dump gets default=float: docker/model.py writes
# np.float32 detection boxes, which json cannot serialise (it stops before writing detection_predictions.json)
# docker/model.py loads best_model.pth from its working folder: run a copy of it in WORK/official
mkdir -p "$WORK/official" && cp "$REPO/docker/model.py" "$REPO/docker/model_factory.py" "$WORK/best_model.pth" "$WORK/official/"
(cd "$WORK/official" && "$PY" -c "
import json, sys
_dump = json.dump
json.dump = lambda o, f, **k: _dump(o, f, default=float, **k)
from model import Model
Model().predict('$WORK/data/val', '$WORK/pred_official', batch_size=8)" > "$WORK/official_inference.log" 2>&1)
"$PY" -m usedge.cli.main eval --model "$WORK/best_model.pth" --data "$WORK/data" --split val --out "$WORK/pred_usedge" > "$WORK/usedge_eval.log"
status=0
"$PY" "$HERE/official_check.py" predictions "$WORK/pred_official" "$WORK/pred_usedge" || status=1
"$EVAL_PY" "$HERE/official_check.py" metrics --repo "$REPO" --data "$WORK/data/val" --pred "$WORK/pred_usedge" || status=1
exit $status
