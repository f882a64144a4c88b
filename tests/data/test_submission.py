import numpy as np
import pytest

from usedge.data.fmcuia import load_split
from usedge.data.submission import SubmissionWriter, mask_output_path, read_predicted_mask, read_submission
from usedge.errors import DataError
from usedge.tasks import TaskKind


def test_submission_round_trip(tiny_dataset, tmp_path):
    root, _ = tiny_dataset
    samples = load_split(root)
    out = tmp_path / "sub"
    expected_masks = {}
    with SubmissionWriter(out) as sub:
        for s in samples:
            h, w = s.load_image().shape[:2]
            kind = s.task.kind
            if kind is TaskKind.SEGMENTATION:
                expected_masks[s.image_rel] = (np.arange(h * w).reshape(h, w) % s.task.num_classes).astype(np.uint8)
                sub.add_segmentation(s, expected_masks[s.image_rel])
            elif kind is TaskKind.CLASSIFICATION:
                probs = np.full(s.task.num_classes, 0.1)
                probs[-1] = 0.9
                sub.add_classification(s, probs)
            elif kind is TaskKind.DETECTION:
                sub.add_detection(s, (w / 4, h / 4, w / 2, h / 2), (w, h))
            else:
                sub.add_regression(s, [(w / 2, h / 4)] * s.task.num_points, (w, h))
    files = read_submission(out)
    cls = files["classification_predictions.json"]
    assert len(cls) == 9 * 2 and all(r["predicted_class"] == len(r["predicted_probs"]) - 1 for r in cls)
    det = files["detection_predictions.json"][0]
    assert det["bbox_normalized"] == [0.25, 0.25, 0.5, 0.5] and len(det["bbox_pixels"]) == 4
    reg = files["regression_predictions.json"]
    assert {r["task_id"] for r in reg} == {"FUGC", "IUGC", "fetal_femur"}
    iugc = next(r for r in reg if r["task_id"] == "IUGC")
    assert iugc["predicted_points_normalized"] == [0.5, 0.25] * 3 and len(iugc["predicted_points_pixels"]) == 6
    assert iugc["image_path"].startswith("../Regression/IUGC/IMAGES/")
    for s in samples:
        if s.task.kind is TaskKind.SEGMENTATION:
            path = mask_output_path(out, s.mask_rel)
            assert str(path).startswith(str((out / "Segmentation").resolve()))
            np.testing.assert_array_equal(read_predicted_mask(out, s), expected_masks[s.image_rel])


def test_mask_path_cannot_escape(tmp_path):
    assert mask_output_path(tmp_path, "../Segmentation/Two/x/MASKS/a.png") == (
        tmp_path / "Segmentation/Two/x/MASKS/a.png").resolve()
    for bad in ("../../../etc/passwd", "/etc/passwd", "Segmentation/../../x.png"):
        with pytest.raises(DataError, match="outside the output folder"):
            mask_output_path(tmp_path, bad)
