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
    ("usedge", "errors", "_logging", "_io", "_timing", "_cpu", "registry", "tasks", "targets", "assets"),  # foundation
    ("data",),            # FMC-UIA layout, phantom, DICOM/video, the processing spec and decoding
    ("metrics",),         # the challenge's metrics and scoring any predictor
    ("models",),          # nets, checkpoints, torch -> ONNX
    ("bundle",),          # the bundle format and its Q/DQ invariants: written by export, read by everything after
    ("engine",),          # TensorRT planning / building
    ("backends",),        # every runtime behind one contract; parity, CPU latency, the int8 check
    ("train",),
    ("distill",),
    ("quantize",),
    ("export",),
    ("runtime",),         # the Predictor, results, evaluation, verify
    ("measure",),         # clinical measurements in mm from the results
    ("stream",),
    ("serve", "demo", "bench"),
    ("cli",),
)

#: (importing stage, imported module prefix): why the upward import is right
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("usedge", "usedge.runtime"): "`usedge.load` / `usedge.Predictor`, the public entry point, imported on first use",
}

RANK = {stage: rank for rank, stages in enumerate(LAYERS) for stage in stages}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "usedge"


def _module_name(path: Path, package: Path | None = None) -> str:
    rel = path.relative_to((package or PACKAGE).parent).with_suffix("")
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


def _module_graph(package: Path = None) -> dict[str, set[str]]:
    """usedge module -> the usedge modules it names in an import, at any depth (``from a import b`` is a.b where
    b is a module, else a). A package's ``__init__`` running before its modules is not an edge: a module that
    takes a name from its own package's ``__init__``, which imports that module, is."""
    package = package or PACKAGE
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("usedge") and not node.level:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "usedge"]
            deps.update(t for t in targets if t in modules)
        graph[name] = deps - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycle_between_modules():
    """Imports inside functions count: a cycle is a cycle whether it runs at import time or on first use."""
    graph = _module_graph()
    # the root's entry points (usedge.load -> runtime) are the one named exception above
    graph["usedge"] = {m for m in graph["usedge"] if not m.startswith("usedge.runtime")}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle(tmp_path):
    fake = tmp_path / "usedge"
    (fake / "a").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "a" / "__init__.py").write_text("")
    (fake / "a" / "x.py").write_text("def f():\n    from usedge.a import y\n")
    (fake / "a" / "y.py").write_text("import usedge.a.x\n")
    assert _cycles(_module_graph(fake)) == [["usedge.a.x", "usedge.a.y"]]
