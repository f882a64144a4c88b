"""The challenge user's whole flow, through the CLI as they type it, on a tiny phantom in the official layout:
a teacher saved as the official baseline's train.py saves it (``torch.save(model.state_dict(), 'best_model.pth')``)
-> ``usedge distill`` -> ``usedge export --int8`` -> ``usedge eval --bundle`` -> the submission files the
official evaluator reads, which carry exactly the numbers ``usedge eval`` printed."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("openvino")

from click.testing import CliRunner  # noqa: E402

from usedge.cli.main import cli  # noqa: E402

TASKS = "fetal_head,organ_cls,thyroid_nodule_det,FUGC"   # one task of each kind


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _official_dice(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> float:
    """evaluate.py's _compute_dice, mean over the foreground classes (1.0 when a class is in neither)."""
    scores = []
    for c in range(1, num_classes):
        a, b = pred == c, gt == c
        union = a.sum() + b.sum()
        scores.append(1.0 if union == 0 else 2.0 * (a & b).sum() / union)
    return float(np.mean(scores))


@pytest.mark.slow
def test_baseline_pth_to_distilled_int8_bundle_to_official_submission(tmp_path):
    from usedge.bundle import load_bundle
    from usedge.data.fmcuia import load_split
    from usedge.data.phantom import generate_dataset
    from usedge.data.submission import read_predicted_mask, read_submission
    from usedge.models.baseline import BaselineB4
    from usedge.tasks import parse_tasks

    data = tmp_path / "data"
    generate_dataset(data, per_task=10, seed=11, size=96, tasks=TASKS.split(","), progress=False)
    torch.manual_seed(0)
    pth = tmp_path / "best_model.pth"
    torch.save(BaselineB4(parse_tasks(TASKS)).state_dict(), pth)            # exactly as the baseline saves it

    _run(["distill", "--teacher", str(pth), "--data", str(data), "--tasks", TASKS, "--epochs", "1",
          "--steps-per-epoch", "3", "--batch-size", "8", "--tasks-per-batch", "4", "--input-size", "64",
          "--warmup-steps", "1", "--workers", "0", "--no-ablation", "--no-report", "--out", str(tmp_path / "student")])
    # an untrained student: the flow, not the accuracy, is under test, so the gate's limits are opened wide
    _run(["export", "--model", str(tmp_path / "student" / "best"), "--data", str(data), "--per-task", "4",
          "--allow-small-calibration", "--qat", "never", "--max-float", "0", "--max-drop", "100", "--hard-drop", "100",
          "--max-mre-increase", "100", "--hard-mre-increase", "100", "--out", str(tmp_path / "bundle")])
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.precisions == ["fp32", "int8"] and bundle.metadata["int8"]["passed"]

    out = _run(["eval", "--bundle", str(tmp_path / "bundle"), "--data", str(data), "--precision", "int8",
                "--out", str(tmp_path / "sub")])
    assert "bundle on openvino int8" in out and "official evaluator" in out
    report = json.loads((tmp_path / "sub" / "eval.json").read_text())
    assert report["auc"] == "official"

    # the submission files hold one prediction per validation image and reproduce the printed numbers
    files = read_submission(tmp_path / "sub")
    samples = {s.task_id: [] for s in load_split(data, "val", TASKS.split(","))}
    for s in load_split(data, "val", TASKS.split(",")):
        samples[s.task_id].append(s)
    cls = {r["image_path"]: r for r in files["classification_predictions.json"]}
    acc = np.mean([cls[s.image_rel]["predicted_class"] == s.label for s in samples["organ_cls"]])
    assert report["tasks"]["organ_cls"]["accuracy"] == pytest.approx(acc)
    det = {r["image_path"]: r for r in files["detection_predictions.json"]}
    assert set(det) == {s.image_rel for s in samples["thyroid_nodule_det"]}
    reg = {r["image_path"]: r for r in files["regression_predictions.json"]}
    mre = np.mean([np.linalg.norm(np.reshape(reg[s.image_rel]["predicted_points_pixels"], (-1, 2))
                                  - np.asarray(s.points, float), axis=1).mean() for s in samples["FUGC"]])
    assert report["tasks"]["FUGC"]["mre"] == pytest.approx(mre, rel=1e-6)
    head = samples["fetal_head"]
    dice = np.mean([_official_dice(read_predicted_mask(tmp_path / "sub", s), s.load_mask(), s.task.num_classes)
                    for s in head])
    assert report["tasks"]["fetal_head"]["dice"] == pytest.approx(dice)
