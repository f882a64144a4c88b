"""The built-in default student ships in the package and loads without training or downloads."""
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")


def test_default_student_ships_and_loads():
    from usedge.export.defaults import default_checkpoint, resolve_model

    path = default_checkpoint()
    size_mb = sum(f.stat().st_size for f in path.iterdir()) / 1e6
    assert size_mb < 8, f"the shipped default should stay a few MB, is {size_mb:.1f}"
    meta = json.loads((path / "config.json").read_text())
    assert meta["meta"]["stored_as"].startswith("float16")
    model, config, source = resolve_model(None)
    assert len(config.tasks) == 27 and source["checkpoint"].startswith("usedge:")
    assert all(p.dtype.is_floating_point and str(p.dtype) == "torch.float32" for p in model.parameters())
    assert "| task |" in (path / "EVAL.md").read_text()
