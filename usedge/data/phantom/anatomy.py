"""Which drawer draws which task: ``DRAWERS[task_id](rng, size) -> Drawn``.

Composite classification tasks (``fetal_plane_cls``, ``organ_cls``) draw their class uniformly and reuse
the other tasks' scenes. See docs/phantom.md for what every task shows and how its label follows.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from usedge.data.phantom import anatomy_fetal as fetal
from usedge.data.phantom import anatomy_organs as organs
from usedge.data.phantom import anatomy_pelvic as pelvic
from usedge.data.phantom import anatomy_small_parts as small
from usedge.data.phantom.anatomy_base import Drawn, Scene

Drawer = Callable[[np.random.Generator, int], Drawn]


def _fetal_plane(rng: np.random.Generator, size: int) -> Drawn:
    """fetal_plane_cls: abdomen, brain, femur, thorax, maternal_cervix, other."""
    k = int(rng.integers(6))
    if k == 0:
        sc = Scene(rng, size, "abdominal")
        fetal.maternal_wall(sc)
        fetal.abdomen_scene(sc)          # the plane only: its label is the class
        return Drawn(sc, k)
    if k == 3:
        sc = Scene(rng, size, "abdominal")
        fetal.maternal_wall(sc)
        fetal.thorax_scene(sc)
        return Drawn(sc, k)
    draw = {1: fetal.fetal_head, 2: fetal.fetal_femur, 4: pelvic.cervix, 5: fetal.fetal_other}[k]
    return Drawn(draw(rng, size).scene, k)


def _organ(rng: np.random.Generator, size: int) -> Drawn:
    """organ_cls: breast, thyroid, liver, kidney, heart, fetal_head."""
    k = int(rng.integers(6))
    if k == 0:
        sc = Scene(rng, size, "linear")
        small.breast_scene(sc, (None, "benign", "malignant")[int(rng.integers(3))])
    elif k == 1:
        sc = Scene(rng, size, "linear")
        small.thyroid_scene(sc, nodule=bool(rng.random() < 0.5))
    elif k == 2:
        sc = Scene(rng, size, "abdominal")
        organs.liver_scene(sc, (None, None, "benign", "malignant")[int(rng.integers(4))])
    elif k == 3:
        sc = Scene(rng, size, "abdominal")
        organs.kidney_scene(sc)
    elif k == 4:
        sc = Scene(rng, size, "phased")
        organs.cardiac_scene(sc)
    else:
        sc = fetal.fetal_head(rng, size).scene
    return Drawn(sc, k)


DRAWERS: dict[str, Drawer] = {
    "FUGC": pelvic.fugc,
    "IUGC": pelvic.iugc,
    "fetal_femur": fetal.fetal_femur,
    "breast_2cls": small.breast_cls(("benign", "malignant")),
    "breast_3cls": small.breast_cls((None, "benign", "malignant")),
    "fetal_head_pos_cls": fetal.fetal_head_pos,
    "fetal_plane_cls": _fetal_plane,
    "fetal_sacral_pos_cls": fetal.fetal_sacral_pos,
    "liver_lesion_2cls": organs.liver_cls,
    "lung_2cls": organs.lung_cls(("normal", "blines")),
    "lung_disease_3cls": organs.lung_cls(("normal", "pneumonia", "covid")),
    "organ_cls": _organ,
    "spinal_cord_injury_loc": small.spinal_cord_injury,
    "thyroid_nodule_det": small.thyroid_nodule,        # the box is the nodule mask's extent
    "uterine_fibroid_det": pelvic.uterine_fibroid,
    "breast_lesion": small.breast_lesion,
    "cardiac_multi": organs.cardiac_multi,
    "carotid_artery": small.carotid_artery,
    "cervix": pelvic.cervix,
    "cervix_multi": pelvic.cervix_multi,
    "fetal_abdomen_multi": fetal.fetal_abdomen_multi,
    "fetal_head": fetal.fetal_head,
    "fetal_heart": fetal.fetal_heart,
    "head_symphysis_multi": pelvic.head_symphysis_multi,
    "lung": organs.lung,
    "ovary_tumor": pelvic.ovary_tumor,
    "thyroid_nodule": small.thyroid_nodule,
}
