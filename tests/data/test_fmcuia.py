import csv
import json

import numpy as np
import pytest

from usedge.data import fmcuia
from usedge.data.fmcuia import SplitWriter, load_split, read_split, validate_split
from usedge.errors import ConfigError, DataError
from usedge.tasks import ALL_TASKS, TaskKind


def _by_key(samples):
    return {(s.task_id, int(s.image_rel.rsplit("_", 1)[1].split(".")[0])): s for s in samples}


def test_round_trip_exact_labels(tiny_dataset):
    root, labels = tiny_dataset
    samples = load_split(root, "train")
    assert {s.task_id for s in samples} == {t.id for t in ALL_TASKS}
    found = _by_key(samples)
    assert set(found) == set(labels)
    for key, label in labels.items():
        s = found[key]
        kind = s.task.kind
        if kind is TaskKind.SEGMENTATION:
            np.testing.assert_array_equal(s.load_mask(), label)
        elif kind is TaskKind.CLASSIFICATION:
            assert s.label == label
        elif kind is TaskKind.DETECTION:
            np.testing.assert_allclose(s.box, label, atol=5e-4)
        else:
            np.testing.assert_allclose(s.points, label, atol=5e-4)
    assert validate_split(root, "train").problems == []


def test_layout_on_disk_matches_the_challenge(tiny_dataset):
    root, _ = tiny_dataset
    split = root / "train"
    rows = list(csv.DictReader(open(split / "csv_files" / "cardiac_multi.csv")))
    assert rows[0]["image_path"] == "../Segmentation/Four/cardiac_multi/IMAGES/cardiac_multi_00000.png"
    assert rows[0]["mask_path"] == "../Segmentation/Four/cardiac_multi/MASKS/mask_cardiac_multi_00000.png"
    assert (rows[0]["task_name"], rows[0]["num_classes"]) == ("segmentation", "4")
    reg = list(csv.DictReader(open(split / "csv_files" / "IUGC.csv")))
    assert reg[0]["task_name"] == "Regression" and reg[0]["num_classes"] == "3"
    assert len(json.loads(reg[0]["point_3_xy"])) == 2
    cls = list(csv.DictReader(open(split / "csv_files" / "organ_cls.csv")))
    assert list(cls[0]) == ["image_path", "task_id", "task_name", "num_classes", "mask"]
    det = list(csv.DictReader(open(split / "csv_files" / "thyroid_nodule_det.csv")))
    assert list(det[0])[-4:] == ["x_min", "y_min", "x_max", "y_max"]


def test_reads_a_hand_written_challenge_csv(tmp_path):
    """A CSV as users have it: several tasks in one file, BOM, Windows line ends, float class label."""
    split = tmp_path / "train"
    SplitWriter(tmp_path, "train").add("breast_2cls", np.zeros((10, 10), np.uint8), 0, name="a")
    (split / "Regression/FUGC/IMAGES").mkdir(parents=True)
    (split / "Regression/FUGC/IMAGES/b.png").write_bytes((split / "Classification/breast_2cls/IMAGES/a.png").read_bytes())
    text = ("\ufeffimage_path,task_id,task_name,num_classes,mask,point_1_xy,point_2_xy\r\n"
            "../Classification/breast_2cls/IMAGES/a.png,breast_2cls,classification,2,1.0,,\r\n"
            '../Regression/FUGC/IMAGES/b.png,FUGC,Regression,2,,"[1, 2]","[3.5, 4]"\r\n')
    (split / "csv_files").mkdir()
    (split / "csv_files" / "mixed.csv").write_text(text, encoding="utf-8")
    samples = load_split(tmp_path, "train")
    assert [(s.task_id, s.label, s.points) for s in samples] == [
        ("breast_2cls", 1, None), ("FUGC", None, ((1.0, 2.0), (3.5, 4.0)))]


BAD_ROWS = [
    ("../Classification/x/IMAGES/missing.png,breast_2cls,classification,2,0", "image file not found"),
    ("IMG,no_such_task,classification,2,0", "Unknown task 'no_such_task'"),
    ("IMG,breast_2cls,segmentation,2,0", "does not match task breast_2cls"),
    ("IMG,breast_2cls,classification,3,0", "num_classes 3 does not match"),
    ("IMG,breast_2cls,classification,2,7", "class label 7 outside 0..1"),
    ("IMG,breast_2cls,classification,2,abc", "not an integer"),
    ("IMG,breast_2cls,classificaton,2,0", "Unknown task_name"),
]


@pytest.mark.parametrize("row,message", BAD_ROWS)
def test_bad_classification_rows_reported_with_file_and_line(tmp_path, row, message):
    split = tmp_path / "train"
    SplitWriter(tmp_path, "train").add("breast_2cls", np.zeros((10, 10), np.uint8), 0, name="ok")
    img = "../Classification/breast_2cls/IMAGES/ok.png"
    (split / "csv_files").mkdir(parents=True, exist_ok=True)
    csv_path = split / "csv_files" / "bad.csv"
    csv_path.write_text("image_path,task_id,task_name,num_classes,mask\n"
                        f"{img},breast_2cls,classification,2,1\n" + row.replace("IMG", img) + "\n")
    report = read_split(tmp_path, "train")
    assert len(report.samples) == 1 and len(report.problems) == 1
    problem = report.problems[0]
    assert problem.line == 3 and problem.file.endswith("bad.csv") and message in problem.message
    with pytest.raises(DataError, match="1 problem"):
        load_split(tmp_path, "train")


def _write_rows(tmp_path, header, rows):
    split = tmp_path / "train"
    SplitWriter(tmp_path, "train").add("breast_2cls", np.zeros((20, 30), np.uint8), 0, name="img")
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 3  # >= num_classes of a 2-class task
    SplitWriter(tmp_path, "train").add("fetal_head", np.zeros((20, 30), np.uint8), mask, name="m")
    (split / "csv_files").mkdir(parents=True, exist_ok=True)
    (split / "csv_files" / "x.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return "../Classification/breast_2cls/IMAGES/img.png"


def test_content_problems_found_by_validate(tmp_path):
    img = "../Classification/breast_2cls/IMAGES/img.png"
    _write_rows(tmp_path, "image_path,task_id,task_name,num_classes,mask_path,x_min,y_min,x_max,y_max,point_1_xy,point_2_xy", [
        f"{img},fetal_head,segmentation,2,../Segmentation/Two/fetal_head/MASKS/mask_m.png,,,,,,",
        f"{img},thyroid_nodule_det,detection,1,,1,1,40,10,,",
        f"{img},thyroid_nodule_det,detection,1,,5,5,2,10,,",
        f'{img},fetal_femur,Regression,2,,,,,,"[1, 2]","[99, 2]"',
        f'{img},fetal_femur,Regression,2,,,,,,"[1, 2]","oops"',
        f'{img},fetal_femur,Regression,2,,,,,,"[1, 2]","[1, 2, 3]"',
        f"{img},thyroid_nodule_det,detection,1,,1,1,20,10,,",
        f'{img},fetal_femur,Regression,2,,,,,,"[1, 2]","[true, false]"',
    ])
    report = validate_split(tmp_path, "train")
    messages = {p.line: p.message for p in report.problems}
    assert "has value 3 >= num_classes 2" in messages[2]
    assert "outside the 30x20 image" in messages[3]
    assert "degenerate box" in messages[4]
    assert "point_2_xy (99.0, 2.0) lies outside" in messages[5]
    assert "not JSON" in messages[6]
    assert "two numbers" in messages[7]
    assert "two numbers" in messages[9]          # booleans are not coordinates (bool is an int in Python)
    assert 8 not in messages and len(report.samples) == 1


def test_missing_columns_and_missing_folder(tmp_path):
    assert "csv_files/ folder not found" in read_split(tmp_path, "train").problems[0].message
    (tmp_path / "train" / "csv_files").mkdir(parents=True)
    assert "no *.csv" in read_split(tmp_path, "train").problems[0].message
    (tmp_path / "train" / "csv_files" / "a.csv").write_text("image,task\nx,y\n")
    assert "missing column(s)" in read_split(tmp_path, "train").problems[0].message


def test_writer_rejects_bad_labels(tmp_path):
    w = SplitWriter(tmp_path, "train")
    with pytest.raises(DataError, match="mask shape"):
        w.add("fetal_head", np.zeros((10, 10), np.uint8), np.zeros((5, 5), np.uint8))
    with pytest.raises(DataError, match="needs 3 points"):
        w.add("IUGC", np.zeros((10, 10), np.uint8), [(1, 1)])
    with pytest.raises(ConfigError, match="split"):
        SplitWriter(tmp_path, "test")


def test_summary_counts(tiny_dataset):
    root, _ = tiny_dataset
    rows = fmcuia.summarize(load_split(root))
    assert len(rows) == 27 and all(r["images"] == 2 for r in rows)
    assert fmcuia.find_splits(root) == ["train"]


def _edit_csv(root, task, edit):
    path = root / "train" / "csv_files" / f"{task}.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize("task,edit,message", [
    ("organ_cls", lambda ls: ls + [ls[1]], "organ_cls: listed 2 times identically"),
    ("organ_cls", lambda ls: ls + [ls[1].rsplit(",", 1)[0] + "," + str((int(ls[1].rsplit(",", 1)[1]) + 1) % 6)],
     "organ_cls: listed 2 times with different labels"),
    ("fetal_head", lambda ls: [ls[0], ls[1], ls[2].split(",")[0] + "," + ls[1].split(",", 1)[1]],
     "fetal_head: mask shared by 2 images"),
])
def test_repeated_rows_and_shared_masks_are_problems_not_double_counts(tiny_dataset, task, edit, message):
    """Issue 26, classes 1 and 3: a duplicated row counted twice in eval; two rows sharing a mask had one
    prediction written over the other."""
    root, _ = tiny_dataset
    _edit_csv(root, task, edit)
    with pytest.raises(DataError, match=message):
        load_split(root, "train")
    assert any(message in p.message for p in validate_split(root, "train").problems)


def test_an_evaluation_of_no_rows_is_an_error(tiny_dataset):
    from usedge.data.fmcuia import require_samples

    root, _ = tiny_dataset
    with pytest.raises(DataError, match="has no rows for the tasks asked"):
        require_samples(load_split(root, "train", ["no_such_task"]), root, "train", ["no_such_task"])


@pytest.mark.parametrize("corrupt, message", [
    (lambda ls: ls + ["bad\x00row,1"], "holds a NUL byte"),
    (lambda ls: ls + ['"' + "x" * 200_000 + '",1'], "cannot be parsed as CSV: field larger than field limit"),
])
def test_a_damaged_csv_is_a_listed_problem_not_a_traceback(tiny_dataset, corrupt, message):
    """Issue 26, class 6: a NUL byte or a huge field raised a bare csv.Error."""
    root, _ = tiny_dataset
    _edit_csv(root, "organ_cls", corrupt)
    with pytest.raises(DataError, match=message):
        load_split(root, "train")
