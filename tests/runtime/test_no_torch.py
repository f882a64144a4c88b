"""The scanner install has no torch: the runtime must import and predict with torch blocked."""
import subprocess
import sys
import textwrap

import pytest

from usedge.backends import available_backends


def test_runtime_imports_and_predicts_without_torch(bundle_dir):
    if not available_backends():
        pytest.skip("needs OpenVINO or ONNX Runtime (usedge[cpu])")
    code = textwrap.dedent(f"""
        import sys
        for name in ("torch", "torchvision", "timm", "segmentation_models_pytorch", "nncf"):
            sys.modules[name] = None          # any import of these now raises ImportError
        import numpy as np
        import usedge, usedge.runtime
        from usedge.runtime import predictor, results, evaluate
        from usedge.backends import parity
        p = usedge.load({str(bundle_dir)!r})
        r = p(np.zeros((120, 160), np.uint8))
        assert r["organ_cls"].probs.shape == (6,), r
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm", "nncf") and sys.modules[m])
        print("loaded:", loaded)
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded: []" in proc.stdout
