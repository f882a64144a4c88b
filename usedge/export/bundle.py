"""Re-exports :mod:`usedge.bundle` (the bundle format has its own package; export writes bundles, the
engine, runtime, bench and demo read them)."""
from usedge.bundle import *  # noqa: F401,F403
from usedge.bundle import __all__  # noqa: F401
from usedge.bundle.files import _extracted  # noqa: F401  (older imports)
