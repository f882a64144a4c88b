"""Is the measured structure in this frame at all? A task head answers on every frame: the ``fetal_abdomen_multi``
head outlines a fetal skull as an abdomen, the ``fetal_femur`` head places its two points on a head section, the
``breast_lesion`` head finds "lesions" in a thyroid. Measured on held-out phantom frames (docs/measure.md,
benchmarks/measure_views.py), without this check a fetal head frame reports an AC on nearly every frame. A
measurement that declares a :class:`~usedge.measure.base.View` is withheld when the result holds that view's
classifier and the classifier says the frame shows a rival view; without the classifier the check cannot run,
and the measurement says so in its ``detail["view"]``."""
from __future__ import annotations

import numpy as np

from usedge.measure.base import View
from usedge.runtime.results import ClassificationResult, FrameResult

#: the least probability ``organ_cls`` must give a measurement's organ: it is taught to be unsure on frames of none
#: of its organs (usedge.train.views), where the winner of a near-uniform answer is a coin toss
ORGAN_MIN_P = 0.5


def view_check(view: View, result: FrameResult) -> tuple[str | None, dict]:
    """(why the frame fails ``view`` or None, what was checked: the winning label and its probability, or that
    the result has no such classifier)."""
    r = result.tasks.get(view.task)
    if not isinstance(r, ClassificationResult):
        return None, {"checked": False, "why": f"no {view.task} in the result"}
    names = view.rivals or r.class_names
    idx = [r.class_names.index(n) for n in names if n in r.class_names]
    probs = np.asarray(r.probs, np.float64)[idx]
    won = names[int(np.argmax(probs))] if idx else view.label
    detail = {"checked": True, "task": view.task, "label": won, "p": round(float(probs.max()) if idx else 1.0, 3)}
    want = float(probs[list(names).index(view.label)]) if view.label in names else 0.0
    if won == view.label and want >= view.min_p:
        return None, detail
    if won == view.label:
        return (f"{view.task} is unsure the frame shows {view.label!r} ({want:.2f} < {view.min_p:.2f}): it may show "
                "none of its classes, and this head answers on any frame"), detail
    return (f"the frame shows {won!r}, not {view.label!r} ({view.task}: {won} {float(probs.max()):.2f} vs "
            f"{view.label} {want:.2f}); this head answers on any frame"), detail
