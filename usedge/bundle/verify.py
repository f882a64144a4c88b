"""The static checks of a bundle, no runtime needed: metadata (typed, validated), every file's sha256,
``onnx.checker`` on each model, and for INT8 where the Q/DQ pairs sit (docs/export.md's placement rules).

``usedge verify`` runs these, then opens the bundle as users do (:mod:`usedge.runtime.verify`).
"""
from __future__ import annotations

from pathlib import Path

from usedge.bundle.files import Bundle, load_bundle


def check_bundle(path: str | Path) -> tuple[Bundle, dict]:
    """(the opened bundle, {"bundle", "checksums", "checker", "placement" (int8, with onnx)}); raises DataError
    on a tampered or truncated bundle or invalid metadata."""
    bundle = load_bundle(path, verify=True)
    result: dict = {"bundle": str(bundle.path), "checksums": True, "checker": {}}
    try:
        from usedge.models.onnx import check

        for p in bundle.precisions:
            check(bundle.model_path(p))
            result["checker"][p] = "ok"
        if "int8" in bundle.precisions:  # informational: where the Q/DQ pairs sit (docs/export.md rules)
            from usedge.bundle.qdq import check_placement

            pl = check_placement(bundle.model_path("int8"))
            result["placement"] = {"ok": pl.ok, "summary": pl.summary(), "float_inputs": len(pl.float_inputs)}
    except ImportError:
        result["checker"] = {"skipped": "onnx is not installed"}
    return bundle, result


__all__ = ["check_bundle"]
