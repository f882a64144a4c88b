"""usedge.targets: the packaged profiles, validated at the foundation level (no runtime import)."""
from __future__ import annotations

import pytest

from usedge.errors import ConfigError
from usedge.targets import BACKEND_NAMES, load_target, target_names


def test_the_backend_names_a_profile_may_use_are_the_registry_s():
    from usedge.backends import backend_names

    assert sorted(BACKEND_NAMES) == sorted(backend_names())


def test_every_packaged_profile_loads_and_a_bad_backend_is_named(tmp_path):
    assert {"cpu", "cpu-vnni", "desktop-gpu", "jetson-orin-nano"} <= set(target_names())
    for name in target_names():
        assert set(load_target(name).backends) <= set(BACKEND_NAMES)
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\nbackends: [openvino, coreml]\n")
    with pytest.raises(ConfigError, match=r"unknown backend\(s\) \['coreml'\]"):
        load_target(str(bad))


def test_loading_targets_imports_no_runtime():
    import subprocess
    import sys

    code = ("import sys, usedge.targets as t; t.load_target('cpu'); "
            "print(sorted(m for m in sys.modules if m.startswith('usedge.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usedge.backends" not in out and "usedge.runtime" not in out and "usedge.export" not in out
