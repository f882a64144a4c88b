"""What every phantom task's frame shows to the view classifiers (usedge.data.phantom.views)."""
from __future__ import annotations

import pytest

from usedge.data.phantom.anatomy import DRAWERS
from usedge.data.phantom.views import ORGAN_OF_TASK, PLANE_OF_TASK, VIEW_TASKS, view_label
from usedge.tasks import ALL_TASKS, TASKS


def test_every_named_view_is_a_class_of_its_classifier_and_every_task_has_an_answer():
    planes, organs = TASKS.get("fetal_plane_cls").class_names, TASKS.get("organ_cls").class_names
    assert set(PLANE_OF_TASK.values()) <= set(planes) and set(ORGAN_OF_TASK.values()) <= set(organs)
    assert set(PLANE_OF_TASK) | set(ORGAN_OF_TASK) <= set(DRAWERS)
    for spec in ALL_TASKS:
        if spec.id in VIEW_TASKS:
            continue
        assert view_label("fetal_plane_cls", spec.id) in planes        # fetal_plane_cls has "other"
        assert view_label("organ_cls", spec.id) in (*organs, None)     # organ_cls has no such class


def test_the_plane_and_organ_scenes_the_phantom_shares_get_the_same_answer():
    """fetal_plane_cls's brain class and organ_cls's fetal_head class both draw the fetal_head scene."""
    planes, organs = TASKS.get("fetal_plane_cls").class_names, TASKS.get("organ_cls").class_names
    assert view_label("organ_cls", "fetal_plane_cls", planes.index("brain")) == "fetal_head"
    assert view_label("organ_cls", "fetal_plane_cls", planes.index("thorax")) is None
    assert view_label("fetal_plane_cls", "organ_cls", organs.index("fetal_head")) == "brain"
    assert view_label("fetal_plane_cls", "organ_cls", organs.index("thyroid")) == "other"
    assert view_label("fetal_plane_cls", "fetal_plane_cls", planes.index("femur")) == "femur"
    assert view_label("fetal_plane_cls", "fetal_head") == "brain" and view_label("organ_cls", "fetal_head") == "fetal_head"
    assert view_label("fetal_plane_cls", "lung") == "other" and view_label("organ_cls", "lung") is None


def test_a_task_that_is_not_a_view_classifier_is_refused():
    with pytest.raises(ValueError, match="not a view classifier"):
        view_label("lung_2cls", "lung")
