"""Third-party INFO logs (NNCF's hundreds of quantizer lines) are quiet by default and shown with --verbose."""
import logging

import numpy as np
import pytest


@pytest.fixture
def restore_env(monkeypatch):
    monkeypatch.delenv("USEDGE_VERBOSE", raising=False)
    yield
    from usedge._logging import configure

    configure(False)


def _quantize_tiny(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("nncf")
    from torch import nn

    from usedge.quantize.int8 import quantize_onnx

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1)).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 8, 8),), str(tmp_path / "m.onnx"), input_names=["images"],
                      opset_version=17, dynamo=False)
    calib = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    # an ignored scope makes NNCF log its decisions at INFO ("1 ignored nodes were found by patterns ...")
    quantize_onnx(tmp_path / "m.onnx", calib, tmp_path / "q.onnx", ignored_patterns=["/2/.*"])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_nncf_info_lines_are_quiet_by_default_and_shown_when_verbose(tmp_path, restore_env):
    """Checked on the records NNCF's logger lets through (its own handler writes to the stdout of the moment
    NNCF was imported, which pytest's capture may not see)."""
    from usedge._logging import configure

    seen = _Records()
    logging.getLogger("nncf").addHandler(seen)
    try:
        configure(False)
        logging.getLogger("nncf").setLevel(logging.INFO)   # what importing NNCF does, whenever it happens
        _quantize_tiny(tmp_path)
        assert not [r for r in seen.records if r.levelno < logging.WARNING]
        configure(True)
        _quantize_tiny(tmp_path)
        info = [r for r in seen.records if r.levelno == logging.INFO]
        assert info and any("ignored" in r.getMessage() for r in info)   # NNCF does talk: the quiet run was silenced
    finally:
        logging.getLogger("nncf").removeHandler(seen)


def test_cli_verbose_flag_sets_verbose_mode(restore_env):
    from click.testing import CliRunner

    from usedge._logging import verbose
    from usedge.cli.main import cli

    assert CliRunner().invoke(cli, ["--verbose", "tasks", "--json"]).exit_code == 0
    assert verbose()
    assert CliRunner().invoke(cli, ["tasks", "--json"]).exit_code == 0
    assert verbose()  # the environment keeps it for child processes until reset


@pytest.mark.parametrize("verbose,fails,shown", [("0", False, False), ("0", True, True), ("1", False, True)])
def test_native_stderr_is_held_unless_verbose_or_the_block_fails(verbose, fails, shown):
    """What C++ writes to fd 2 (onnx-simplifier's per-node warnings) is quiet by default, kept on failure."""
    import subprocess
    import sys

    script = ("import os\nfrom usedge._logging import native_stderr\ntry:\n"
              "    with native_stderr('test'):\n        os.write(2, b'native line\\n')\n"
              f"        {'raise RuntimeError(1)' if fails else 'pass'}\nexcept RuntimeError:\n    pass\n"
              "os.write(2, b'after\\n')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**__import__("os").environ, "USEDGE_VERBOSE": verbose}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert ("native line" in proc.stderr) == shown and proc.stderr.rstrip().endswith("after"), proc.stderr
