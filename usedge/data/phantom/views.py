"""What every phantom task's frame shows, in the classes of the two view classifiers (``fetal_plane_cls``,
``organ_cls``). The phantom knows what it drew (usedge.data.phantom.anatomy: ``fetal_plane_cls``'s abdomen class
is the ``fetal_abdomen_multi`` scene, its brain class the ``fetal_head`` scene, ...), so every task's frames can
teach the view classifiers, not only their own (usedge.train.views).

A frame's view label is a class name of the view task, or ``None`` when none of its classes is shown: a lung
frame shows no organ among breast, thyroid, liver, kidney, heart and fetal head. ``fetal_plane_cls`` has a class
for that (``other``); ``organ_cls`` has none, and such frames are taught as "no class" (a uniform target).
"""
from __future__ import annotations

from usedge.tasks import get_task

#: fetal_plane_cls's class for each task's frames; every task not named here shows "other"
PLANE_OF_TASK: dict[str, str] = {
    "fetal_abdomen_multi": "abdomen",
    "fetal_head": "brain",
    "fetal_femur": "femur",
    "fetal_heart": "thorax",          # the thorax scene's four-chamber view
    "FUGC": "maternal_cervix",
    "cervix": "maternal_cervix",
    "cervix_multi": "maternal_cervix",
}

#: organ_cls's class for each task's frames; every task not named here shows none of its classes
ORGAN_OF_TASK: dict[str, str] = {
    "breast_2cls": "breast",
    "breast_3cls": "breast",
    "breast_lesion": "breast",
    "thyroid_nodule": "thyroid",
    "thyroid_nodule_det": "thyroid",
    "liver_lesion_2cls": "liver",
    "cardiac_multi": "heart",
    "fetal_head": "fetal_head",
    "fetal_head_pos_cls": "fetal_head",    # the transperineal axial head
}

VIEW_TASKS = ("fetal_plane_cls", "organ_cls")


def view_label(view_task: str, task_id: str, label: object = None) -> str | None:
    """The class of ``view_task`` that a phantom frame of ``task_id`` (with its own ``label``, for the two view
    tasks themselves) shows, or None when it shows none of them."""
    if view_task not in VIEW_TASKS:
        raise ValueError(f"{view_task!r} is not a view classifier; use one of {VIEW_TASKS}")
    if task_id == view_task:
        return get_task(view_task).class_names[int(label)]       # type: ignore[arg-type]
    if view_task == "fetal_plane_cls":
        if task_id == "organ_cls":
            return "brain" if get_task("organ_cls").class_names[int(label)] == "fetal_head" else "other"  # type: ignore[arg-type]
        return PLANE_OF_TASK.get(get_task(task_id).id, "other")
    if task_id == "fetal_plane_cls":
        return "fetal_head" if get_task("fetal_plane_cls").class_names[int(label)] == "brain" else None  # type: ignore[arg-type]
    return ORGAN_OF_TASK.get(get_task(task_id).id)


__all__ = ["ORGAN_OF_TASK", "PLANE_OF_TASK", "VIEW_TASKS", "view_label"]
