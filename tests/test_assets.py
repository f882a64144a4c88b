"""usedge.assets: what ships in the package, and the records kept beside it in the repository."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from usedge.assets import default_checkpoint, shipped_bundle

ROOT = Path(__file__).resolve().parents[1]


def test_the_stored_calibration_manifest_is_the_one_the_packaged_bundle_was_built_from():
    manifest = json.loads((ROOT / "calibration" / "default" / "manifest.json").read_text())
    meta = json.loads((shipped_bundle() / "metadata.json").read_text())
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()   # CalibrationSet.sha256
    assert digest == meta["calibration"]["manifest_sha256"]
    assert sum(manifest["per_task"].values()) == meta["calibration"]["count"]
    assert manifest["preprocess"] == meta["input"]["preprocess"]


def test_the_shipped_files_are_where_the_run_side_looks():
    assert (default_checkpoint() / "model.safetensors").is_file() and (shipped_bundle() / "model.int8.onnx").is_file()
