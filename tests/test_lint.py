"""The suite runs ruff (pyproject.toml [tool.ruff]): imports sorted, no unused or undefined names, line length."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it is in the dev extra: pip install -e '.[dev]')")
    proc = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", str(ROOT)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_reads_every_package_folder():
    """An exclude pattern like "data" once matched usedge/data and tests/data too: they went unchecked."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it is in the dev extra: pip install -e '.[dev]')")
    files = subprocess.run([ruff, "check", "--show-files", str(ROOT)], cwd=ROOT, capture_output=True, text=True,
                           timeout=120).stdout
    checked = {Path(line.strip()).resolve() for line in files.splitlines() if line.strip().endswith(".py")}
    expected = set(ROOT.glob("usedge/**/*.py")) | set(ROOT.glob("tests/**/*.py"))
    expected = {p.resolve() for p in expected if "assets" not in p.parts}
    assert not expected - checked, sorted(str(p.relative_to(ROOT)) for p in expected - checked)[:10]
