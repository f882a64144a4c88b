"""scripts/checkpoint_parts.py: a checkpoint split into parts that fit what comes back from a GPU machine
joins into a checkpoint with the same outputs (float16 rounding of the weights), and a damaged part is refused."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def _parts():
    spec = importlib.util.spec_from_file_location("checkpoint_parts", ROOT / "scripts" / "checkpoint_parts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parts_join_into_the_same_model(tmp_path):
    from dataclasses import replace

    from usedge.models import build_model
    from usedge.models.checkpoint import load_checkpoint, save_checkpoint
    from usedge.models.presets import resolve_config

    config = replace(resolve_config("student-s", "fetal_head,organ_cls"), input_size=64)
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "run" / "best", build_model(config).eval(), config, meta={"note": "x"})
    mod = _parts()
    files = mod.pack(ckpt, tmp_path / "out", "s", part_mib=1.0, history=None)
    assert len(files) >= 3 and all(f.stat().st_size <= 2**20 for f in files[1:])
    joined = mod.unpack(tmp_path / "out", "s", tmp_path / "joined")
    a, _, _ = load_checkpoint(ckpt)
    b, config_b, meta = load_checkpoint(joined)
    assert config_b == config and meta["note"] == "x" and "float16" in meta["unpacked_from"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ya, yb = a(x), b(x)
    for k in ya:
        torch.testing.assert_close(yb[k], ya[k], atol=5e-2, rtol=5e-2)
    damaged = tmp_path / "out" / "s.part-01"
    damaged.write_bytes(damaged.read_bytes()[:-10])
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "checkpoint_parts.py"), "unpack", str(tmp_path / "out"),
                           "s", str(tmp_path / "again")], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "SHA-256 differs" in proc.stderr
