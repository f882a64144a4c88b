"""Split a usedge checkpoint folder into parts small enough to come back from a lent GPU machine (at most 8
files of 16 MiB there), and join them again here.

    python scripts/checkpoint_parts.py pack CKPT_DIR OUT_DIR [--name NAME] [--part-mib 15] [--history H.json]
    python scripts/checkpoint_parts.py unpack PARTS_DIR NAME CKPT_DIR

``pack`` writes ``NAME.json`` (the checkpoint's config.json, the run's held-out history when given, and the
SHA-256 of each part) and ``NAME.part-00``, ``NAME.part-01``, ... : the weights as float16 safetensors cut
into pieces (a teacher's float32 weights are 80-90 MB; float16 halves them, and a model rebuilt from them
differs from the float32 one by float16 rounding of each weight). ``unpack`` checks every hash, joins the
parts and writes a checkpoint folder that ``usedge train --init``, ``usedge distill --teacher`` and
``usedge eval`` read (float32 weights, as every usedge checkpoint). No optimizer state travels: a run
continued from it starts a fresh optimizer and schedule (``usedge train --init``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path


def pack(ckpt: Path, out: Path, name: str, part_mib: float, history: Path | None) -> list[Path]:
    import torch
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(str(ckpt / "model.safetensors")).items()}
    with tempfile.TemporaryDirectory() as tmp:
        blob = Path(tmp) / "w.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(blob))
        data = blob.read_bytes()
    size = int(part_mib * 2**20)
    parts = []
    for i in range(0, len(data), size):
        p = out / f"{name}.part-{i // size:02d}"
        p.write_bytes(data[i:i + size])
        parts.append(p)
    meta = {"config": json.loads((ckpt / "config.json").read_text()), "dtype": "float16",
            "parts": [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in parts],
            "history": json.loads(history.read_text()) if history and history.is_file() else None,
            "torch": torch.__version__}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    return [out / f"{name}.json", *parts]


def unpack(parts_dir: Path, name: str, ckpt: Path) -> Path:
    from safetensors.torch import load

    from usedge.models import build_model
    from usedge.models.checkpoint import save_checkpoint
    from usedge.models.presets import ModelConfig

    meta = json.loads((parts_dir / f"{name}.json").read_text())
    data = b""
    for part in meta["parts"]:
        blob = (parts_dir / part["file"]).read_bytes()
        if hashlib.sha256(blob).hexdigest() != part["sha256"]:
            sys.exit(f"{part['file']}: SHA-256 differs from {name}.json (a truncated or mixed-up part); fetch it again")
        data += blob
    config = ModelConfig.from_dict(meta["config"]["model"])
    model = build_model(config)
    model.load_state_dict(load(data), strict=True)      # float16 values copied into the float32 parameters
    run_meta = {**meta["config"].get("meta", {}), "unpacked_from": f"{name} ({meta['dtype']} parts)",
                "history": meta.get("history")}
    return save_checkpoint(ckpt, model, config, meta=run_meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("ckpt", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--name", default=None)
    p.add_argument("--part-mib", type=float, default=15.0)
    p.add_argument("--history", type=Path, default=None)
    u = sub.add_parser("unpack")
    u.add_argument("parts", type=Path)
    u.add_argument("name")
    u.add_argument("ckpt", type=Path)
    a = ap.parse_args()
    if a.cmd == "pack":
        files = pack(a.ckpt, a.out, a.name or a.ckpt.parent.name, a.part_mib, a.history)
        print("\n".join(f"{f} {f.stat().st_size / 2**20:.1f} MiB" for f in files))
    else:
        print(unpack(a.parts, a.name, a.ckpt))


if __name__ == "__main__":
    main()
