"""Re-exports :mod:`usedge.models.checkpoint` (a model's weights + config on disk belong to the models stage;
training, distillation, export and the torch backend all read them)."""
from usedge.models.checkpoint import *  # noqa: F401,F403
from usedge.models.checkpoint import __all__  # noqa: F401
