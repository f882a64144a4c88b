"""Imports follow the pipeline (docs/architecture.md): a stage imports only from stages upstream of it, counting
imports inside functions too. Every exception is listed here with its reason, and in docs/architecture.md."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "usedge"

#: upstream -> downstream; a module may import its own stage and any stage of a lower rank
LAYERS: tuple[tuple[str, ...], ...] = (
    ("usedge", "errors", "_logging", "_io", "_timing", "_cpu", "registry", "tasks", "assets"),   # foundation
    ("data",),            # FMC-UIA layout, phantom, DICOM/video, the processing spec and decoding
    ("metrics",),         # the challenge's metrics and scoring any predictor
    ("models",),          # nets, checkpoints, torch -> ONNX
    ("train",),
    ("distill",),
    ("quantize",),
    ("bundle",),          # the bundle format: written by export, read by everything after it
    ("export",),
    ("engine",),          # TensorRT planning / building
    ("runtime",),         # backends, Predictor
    ("stream",),
    ("serve", "demo", "bench"),
    ("cli",),
)

#: (importing stage, imported module prefix): why the upward import is right
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("usedge", "usedge.runtime"): "`usedge.load` / `usedge.Predictor`, the public entry point, imported on first use",
    ("distill", "usedge.runtime.cpu_latency"): "the distillation report times students on a CPU runtime",
    ("quantize", "usedge.runtime.backends"): "the sensitivity search scores candidate int8 graphs on a CPU runtime",
    ("export", "usedge.runtime.backends"): "the export gate, parity and latency run the candidate graphs",
    ("export", "usedge.runtime.parity"): "export compares each runtime's outputs with the torch reference",
    ("export", "usedge.runtime.int8_check"): "export stores the int8 check and records its verdict per runtime",
}

RANK = {stage: rank for rank, stages in enumerate(LAYERS) for stage in stages}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "usedge"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported usedge module, line) for every import in the file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "usedge" and not node.level:
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "usedge":
                    yield alias.name, node.lineno


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _stage(_module_name(path))
        for target, line in _imports(path):
            dst = _stage(target)
            if RANK[dst] < RANK[src] or dst == src or RANK[dst] == RANK[src] == 0:
                continue
            if RANK[dst] == RANK[src] and dst != src:
                why = "side by side"
            else:
                why = "upstream"
            if any(src == s and target.startswith(p) for s, p in EXCEPTIONS):
                continue
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {src} imports {target} ({dst} is not {why} "
                         f"of {src})")
    return found


def test_every_stage_is_placed():
    stages = {p.name for p in PACKAGE.iterdir() if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    stages = {s.removesuffix(".py") for s in stages} - {"__init__", "py.typed"}
    assert stages <= set(RANK), f"place these in LAYERS: {sorted(stages - set(RANK))}"


def test_imports_follow_the_pipeline():
    bad = _violations()
    assert not bad, "imports against the pipeline order (docs/architecture.md):\n" + "\n".join(bad)


def test_exceptions_are_documented_and_still_needed():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for (src, prefix), why in EXCEPTIONS.items():
        assert prefix in doc, f"docs/architecture.md must name the exception {src} -> {prefix} ({why})"
        files = [PACKAGE / "__init__.py"] if src == "usedge" else (PACKAGE / src).rglob("*.py")
        used = any(t.startswith(prefix) for p in files for t, _ in _imports(p))
        assert used, f"the exception {src} -> {prefix} is no longer used: remove it"


@pytest.mark.parametrize("src, target", [("models", "usedge.runtime.predictor"), ("data", "usedge.models")])
def test_the_check_catches_an_upward_import(tmp_path, monkeypatch, src, target):
    fake = tmp_path / "usedge"
    (fake / src).mkdir(parents=True)
    (fake / src / "bad.py").write_text(f"def f():\n    import {target}\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert any(f"{src} imports {target}" in v for v in _violations())
