import pytest

from usedge.errors import ConfigError
from usedge.registry import Registry
from usedge.tasks import ALL_TASKS, TASKS, TaskKind, get_task, output_specs, parse_tasks

# The challenge's own table (FMC-UIA baseline TASK_CONFIGURATIONS): id -> (task_name, num_classes column).
CHALLENGE = {
    "FUGC": ("Regression", 2), "IUGC": ("Regression", 3), "fetal_femur": ("Regression", 2),
    "breast_2cls": ("classification", 2), "breast_3cls": ("classification", 3),
    "fetal_head_pos_cls": ("classification", 8), "fetal_plane_cls": ("classification", 6),
    "fetal_sacral_pos_cls": ("classification", 8), "liver_lesion_2cls": ("classification", 2),
    "lung_2cls": ("classification", 2), "lung_disease_3cls": ("classification", 3), "organ_cls": ("classification", 6),
    "spinal_cord_injury_loc": ("detection", 1), "thyroid_nodule_det": ("detection", 1),
    "uterine_fibroid_det": ("detection", 1),
    "breast_lesion": ("segmentation", 2), "cardiac_multi": ("segmentation", 4), "carotid_artery": ("segmentation", 2),
    "cervix": ("segmentation", 2), "cervix_multi": ("segmentation", 3), "fetal_abdomen_multi": ("segmentation", 5),
    "fetal_head": ("segmentation", 2), "fetal_heart": ("segmentation", 2), "head_symphysis_multi": ("segmentation", 3),
    "lung": ("segmentation", 2), "ovary_tumor": ("segmentation", 2), "thyroid_nodule": ("segmentation", 2),
}


def test_exactly_the_challenge_tasks():
    assert {t.id: (t.kind.csv_name, t.csv_num_classes) for t in ALL_TASKS} == CHALLENGE


@pytest.mark.parametrize("spec", ALL_TASKS, ids=lambda t: t.id)
def test_spec_is_consistent(spec):
    if spec.kind is TaskKind.SEGMENTATION:
        assert spec.class_names[0] == "background" and spec.num_points == 0
        assert spec.data_folder.startswith("Segmentation/")
    elif spec.kind is TaskKind.REGRESSION:
        assert spec.num_classes == 0 and spec.num_points >= 2
    else:
        assert spec.num_classes >= 1 and spec.num_points == 0
    assert len(set(spec.class_names)) == len(spec.class_names)
    assert all(o.name.startswith(spec.id + ".") and o.task_id == spec.id for o in spec.outputs)


def test_output_names_are_unique_and_stable():
    names = [o.name for o in output_specs()]
    assert len(names) == len(set(names)) == 30  # 24 single-output tasks + 3 detection tasks x 2
    assert get_task("fetal_head").output_names == ("fetal_head.logits",)
    assert get_task("thyroid_nodule_det").output_names == ("thyroid_nodule_det.boxes", "thyroid_nodule_det.objectness")
    assert get_task("IUGC").outputs[0].shape == ("N", 3, 2)
    assert get_task("cardiac_multi").outputs[0].shape == ("N", 4, "h", "w")


def test_segmentation_folders_by_class_count():
    assert get_task("fetal_abdomen_multi").data_folder == "Segmentation/Five/fetal_abdomen_multi"
    assert get_task("cardiac_multi").data_folder == "Segmentation/Four/cardiac_multi"
    assert get_task("breast_2cls").data_folder == "Classification/breast_2cls"
    assert get_task("FUGC").data_folder == "Regression/FUGC"


def test_csv_task_name_parsing():
    assert TaskKind.from_csv("Regression") is TaskKind.REGRESSION
    assert TaskKind.from_csv("regression") is TaskKind.REGRESSION
    assert TaskKind.REGRESSION.csv_name == "Regression"
    with pytest.raises(ConfigError, match="segmentation"):
        TaskKind.from_csv("segmentaton")


def test_unknown_task_lists_valid_names_and_close_match():
    with pytest.raises(ConfigError) as err:
        get_task("fetal_hed")
    assert "Did you mean 'fetal_head'" in str(err.value)
    assert "thyroid_nodule_det" in str(err.value)


def test_parse_tasks_selections():
    assert len(parse_tasks("all")) == 27 and len(parse_tasks(None)) == 27
    assert [t.id for t in parse_tasks("fetal_head, FUGC")] == ["fetal_head", "FUGC"]
    assert {t.kind for t in parse_tasks("detection")} == {TaskKind.DETECTION}
    assert {t.id for t in parse_tasks("thyroid")} == {"thyroid_nodule", "thyroid_nodule_det"}
    with pytest.raises(ConfigError):
        parse_tasks("")
    with pytest.raises(ConfigError):
        parse_tasks("nonsense")


def test_registry_rejects_duplicates_and_lists_names():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(ConfigError, match="twice"):
        reg.register("a", 2)
    with pytest.raises(ConfigError, match="use one of: a"):
        reg.get("b")
    assert "a" in reg and len(reg) == 1 and list(reg) == ["a"]
    assert len(TASKS) == 27


def test_import_usedge_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, usedge, usedge.data.fmcuia, usedge.data.submission, usedge.cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_docs_task_table_is_current():
    from pathlib import Path

    from usedge.cli.tasks import markdown_table

    doc = (Path(__file__).parents[1] / "docs" / "tasks.md").read_text()
    assert markdown_table(ALL_TASKS) in doc, "docs/tasks.md is stale: regenerate with `usedge tasks --markdown`"
