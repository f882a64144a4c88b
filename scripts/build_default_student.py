"""Package a trained student as the built-in default (usedge/assets/default_student): fp16 safetensors +
config.json + its eval table. The default is what `usedge export` and `usedge demo` use with no --model.

Rebuild from scratch (about 1.5 hours on the 2-core workplace CPU; docs/reference-run.md has the recipe):
    bash scripts/reference_run.sh          # teacher, labels-only student, distilled student, test-set report
    python scripts/build_default_student.py runs/ref-distill/best --data data/phantom-test-2027
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ASSET = Path(__file__).resolve().parents[1] / "usedge" / "assets" / "default_student"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="labelled set whose val split gives the eval table")
    args = ap.parse_args()
    from safetensors.torch import save_file

    from usedge.data.fmcuia import load_split
    from usedge.models.checkpoint import load_checkpoint
    from usedge.train.evaluate import evaluate_model

    model, config, meta = load_checkpoint(args.checkpoint)
    report = evaluate_model(model, config, load_split(args.data, "val", list(config.tasks)))
    tmp = ASSET.with_name(".default_student.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"usedge_config": json.dumps(config.to_dict())})
    keep = {k: meta[k] for k in ("epoch", "val_score", "teachers", "task_teacher", "distill") if k in meta}
    keep["stored_as"] = "float16 weights (loaded into float32)"
    keep["source_checkpoint"] = str(args.checkpoint)
    (tmp / "config.json").write_text(json.dumps({"model": config.to_dict(), "meta": keep}, indent=2))
    (tmp / "EVAL.md").write_text(f"# Default student: {config.name} ({config.backbone}), {config.input_size}² input\n\n"
                                 f"Scored on {args.data}/val by scripts/build_default_student.py.\n\n"
                                 + report.to_markdown())
    shutil.rmtree(ASSET, ignore_errors=True)
    tmp.rename(ASSET)
    print(f"wrote {ASSET} ({sum(f.stat().st_size for f in ASSET.iterdir()) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
