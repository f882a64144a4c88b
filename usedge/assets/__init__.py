"""What ships inside the package: the built-in default student (``default_student/``, safetensors + config)
and its gated INT8 bundle (``default_bundle/``, slim: no torch). Foundation level, so the run side
(``usedge.load``, ``usedge stream``, the demo) finds them without importing the export stage."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from usedge.errors import ConfigError

#: what `python scripts/build_default_student.py` writes (see docs/default-student.md)
DEFAULT_STUDENT = "assets/default_student"
#: what `python scripts/build_default_bundle.py` writes: the default student's gated INT8 bundle, slim (no torch)
DEFAULT_BUNDLE = "assets/default_bundle"


def default_checkpoint() -> Path:
    """The packaged default student checkpoint folder."""
    path = Path(str(resources.files("usedge").joinpath(DEFAULT_STUDENT)))
    if not (path / "model.safetensors").is_file():
        raise ConfigError(f"the built-in default student is missing from this install ({path}).",
                          fix="pass --model CKPT, or rebuild it: python scripts/build_default_student.py")
    return path


def shipped_bundle() -> Path:
    """The packaged INT8 bundle of the default student: runs without torch and opens in about a second."""
    path = Path(str(resources.files("usedge").joinpath(DEFAULT_BUNDLE)))
    if not (path / "metadata.json").is_file():
        raise ConfigError(f"the built-in default bundle is missing from this install ({path}).",
                          fix="pass --bundle PATH, or rebuild it: python scripts/build_default_bundle.py")
    return path


__all__ = ["DEFAULT_BUNDLE", "DEFAULT_STUDENT", "default_checkpoint", "shipped_bundle"]
