"""Package the built-in default student's gated INT8 bundle (usedge/assets/default_bundle): what `usedge demo`
(and `usedge stream` / `usedge serve` on a machine without torch) run with no --bundle, so they start in seconds.

It is a slim copy (usedge.bundle.slim_bundle) of `usedge export --int8 --max-float 0` on the default student for
the `cpu` target (7-bit weights, exact on every x86 CPU; the whole graph int8 but the head arithmetic;
docs/export.md), quantization-aware fine-tuned (`--qat always`, the default) or post-training quantized
(`--qat never`): the INT8 and fp32 ONNX, the int8 check images, metadata (gate report, accuracy, latency) and
README only — about 8.4 MB. metadata.json's slim section
records the sha256 of the default student it came from; tests/export/test_defaults.py checks it is current.

    python scripts/build_default_bundle.py                   # exports + QATs the default student first (~10 min)
    python scripts/build_default_bundle.py --qat never       # post-training quantization only (~1 min)
    python scripts/build_default_bundle.py --from out/bundle # reuse `make run`'s bundle (checked to match)
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ASSET = Path(__file__).resolve().parents[1] / "usedge" / "assets" / "default_bundle"


def same_weights(bundle: Path, student: Path) -> bool:
    """True when the bundle's torch/ reference weights are the default student's (fp16 in the package), compared
    as the models they load into (a checkpoint of an older head layout loads into the current one)."""
    from usedge.models.checkpoint import load_checkpoint

    ref, shipped = (load_checkpoint(p)[0].state_dict() for p in (bundle / "torch", student))
    return ref.keys() == shipped.keys() and all(
        ref[k].to(shipped[k].dtype).numpy().tobytes() == shipped[k].numpy().tobytes() for k in ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", type=Path, default=None,
                    help="an existing `usedge export --int8` bundle of the default student (default: export now)")
    ap.add_argument("--qat", choices=["always", "never"], default="always",
                    help="quantization-aware fine-tuning (always, 600 steps) or post-training quantization only")
    args = ap.parse_args()
    from usedge.assets import default_checkpoint
    from usedge.bundle import sha256_file, slim_bundle

    student = default_checkpoint()
    note = {"default_student_sha256": sha256_file(student / "model.safetensors"),
            "rebuild": "python scripts/build_default_bundle.py"}
    with tempfile.TemporaryDirectory(prefix="usedge-default-bundle-") as tmp:
        source = args.source
        if source is None:
            from usedge.export.pipeline import ExportConfig, run_export

            source = Path(tmp) / "bundle"
            run_export(ExportConfig(int8=True, out=str(source), qat=args.qat, max_float=0))
        if not same_weights(source, student):
            raise SystemExit(f"{source} was not exported from the shipped default student; drop --from to export it.")
        # fp32 too: on a CPU where int8 cannot be faster (no VNNI) or is not exact, usedge.load picks it
        slim_bundle(source, ASSET, ("fp32", "int8"), note=note)
    print(f"wrote {ASSET}: " + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(ASSET.iterdir())))


if __name__ == "__main__":
    main()
