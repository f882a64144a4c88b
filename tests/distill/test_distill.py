"""usedge distill end to end on a tiny phantom set: teachers, unlabelled DICOM frames, report, bad input."""
import json
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from usedge.distill.loop import DistillConfig, Distiller  # noqa: E402
from usedge.distill.losses import KDWeights  # noqa: E402
from usedge.errors import ConfigError, DataError, SourceError  # noqa: E402
from usedge.models import build_model  # noqa: E402
from usedge.models.checkpoint import save_checkpoint  # noqa: E402
from usedge.models.presets import resolve_config  # noqa: E402

TASKS = "fetal_head,organ_cls,thyroid_nodule_det,fetal_femur"
SIZE = 64


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from usedge.data.phantom import generate_dataset

    root = tmp_path_factory.mktemp("phantom")
    generate_dataset(root, per_task=8, seed=3, size=96, tasks=TASKS.split(","), progress=False)
    return root


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A teacher of another family (student-m backbone) and input size, untrained: its outputs are fixed targets."""
    config = replace(resolve_config("student-m", TASKS), input_size=96)
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("t") / "teacher-m", build_model(config).eval(), config)


@pytest.fixture(scope="module")
def cine():
    pydicom_data = pytest.importorskip("pydicom.data")
    path = pydicom_data.get_testdata_file("color3d_jpeg_baseline.dcm", download=False)
    if path is None:
        pytest.skip("color3d_jpeg_baseline.dcm is not installed (pip install pydicom-data)")
    return path


def _cfg(data, out, teacher, **kw):
    base = dict(data=str(data), out=str(out), model="student-s", tasks=TASKS, epochs=2, steps_per_epoch=6,
                batch_size=4, input_size=SIZE, lr=3e-3, warmup_steps=2, teachers=(str(teacher),))
    return DistillConfig(**{**base, **kw})


def test_distil_with_unlabelled_dicom_frames_records_teachers(data, teacher, cine, tmp_path):
    if cine is None:
        pytest.skip("echo cine not available")
    cfg = _cfg(data, tmp_path, teacher, unlabelled=(str(cine),), unlabelled_every=3, unlabelled_stride=4)
    d = Distiller(cfg)
    assert len(d.unlabelled.dataset) == 30  # 120 frames, every 4th
    d.fit(progress=False)
    logged = {k for row in d.history for k in row}
    assert "loss.unlabelled" in logged and len([k for k in logged if k.startswith("loss.")]) >= 3
    meta = json.loads((tmp_path / "best" / "config.json").read_text())["meta"]
    assert meta["teachers"][0]["name"] == "teacher-m" and meta["teachers"][0]["backbone"] == "timm/mobilenetv3_large_100"
    assert meta["task_teacher"] == {t: "teacher-m" for t in TASKS.split(",")}
    assert meta["train_config"]["unlabelled"] == [str(cine)] and meta["distill"]["temperature"] == 2.0
    assert "adapters.adapters.teacher-m.weight" in torch.load(tmp_path / "last" / "train_state.pt",
                                                             weights_only=True)["extra"]


@pytest.mark.slow
def test_student_imitates_the_teacher_on_unlabelled_frames_only(data, teacher, cine, tmp_path):
    """With the ground-truth weight at 0 the only signal is the teacher: the KD loss must fall."""
    cfg = _cfg(data, tmp_path, teacher, epochs=3, steps_per_epoch=12, augment=False,
               weights=KDWeights(gt=0.0, feature=0.0), unlabelled=(str(cine),), unlabelled_every=2)
    d = Distiller(cfg)
    d.fit(progress=False)
    first, last = d.history[0], d.history[-1]
    assert last["loss.unlabelled"] < 0.7 * first["loss.unlabelled"]


def test_bad_input_is_refused_with_the_cause(data, teacher, tmp_path):
    head_only = resolve_config("student-s", "fetal_head")
    other = save_checkpoint(tmp_path / "head-teacher", build_model(head_only), head_only)
    with pytest.raises(ConfigError, match="share no task"):
        Distiller(_cfg(data, tmp_path, other, tasks="organ_cls"))
    with pytest.raises(ConfigError, match="no teacher named"):
        Distiller(_cfg(data, tmp_path, teacher, task_teacher={"fetal_head": "nobody"}))
    bad = tmp_path / "not-a-video.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError):
        Distiller(_cfg(data, tmp_path / "o", teacher, unlabelled=(str(bad),)))
    # a teacher whose weights do not match the architecture its config names
    wrong = tmp_path / "wrong"
    import shutil

    shutil.copytree(teacher, wrong)
    cfg = json.loads((wrong / "config.json").read_text())
    cfg["model"]["backbone"] = "timm/mobilenetv4_conv_small"
    (wrong / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="do not match its config"):
        Distiller(_cfg(data, tmp_path / "w", wrong))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, teacher, tmp_path):
    d = Distiller(_cfg(data, tmp_path, teacher, epochs=1))
    d.fit(progress=False)
    good = (tmp_path / "last" / "model.safetensors").read_bytes()
    d2 = Distiller(_cfg(data, tmp_path, teacher, epochs=2, resume=True))
    assert d2.start_epoch == 1
    original = d2.compute_loss
    d2.compute_loss = lambda batch: tuple(v * float("nan") if i == 0 else v for i, v in enumerate(original(batch)))
    from usedge.errors import UsedgeError

    with pytest.raises(UsedgeError, match="became nan"):
        d2.fit(progress=False)
    assert (tmp_path / "last" / "model.safetensors").read_bytes() == good


@pytest.mark.slow
def test_cli_distill_writes_the_report(data, teacher, tmp_path):
    from click.testing import CliRunner

    from usedge.cli.main import cli

    r = CliRunner().invoke(cli, ["distill", "--teacher", str(teacher), "--data", str(data), "--tasks", TASKS,
                                 "--epochs", "1", "--steps-per-epoch", "4", "--batch-size", "4", "--input-size",
                                 str(SIZE), "--out", str(tmp_path)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "distill_report.json").read_text())
    roles = [m["role"] for m in report["models"]]
    assert roles == ["teacher", "distilled", "labels-only"]
    assert {row["task"] for row in report["tasks"]} == set(TASKS.split(","))
    assert all(m["latency_ms"] > 0 for m in report["models"])
    assert (tmp_path / "distill_report.png").stat().st_size > 1000
    assert "retention" in (tmp_path / "distill_report.md").read_text()
    assert (tmp_path / "labels-only" / "best" / "model.safetensors").is_file()


def test_distil_from_a_baseline_pth_saved_like_the_challenge_code(data, tmp_path):
    """`torch.save(model.state_dict(), 'best_model.pth')`, as the FMC-UIA baseline's train.py saves it: the
    file name has a dot, and it must still be a usable teacher (named 'best_model')."""
    from usedge.distill.teachers import teacher_name
    from usedge.models.baseline import BaselineB4
    from usedge.tasks import parse_tasks

    torch.manual_seed(0)
    pth = tmp_path / "best_model.pth"
    torch.save(BaselineB4(parse_tasks(TASKS)).state_dict(), pth)
    assert teacher_name(pth) == "best_model" and teacher_name(tmp_path / "runs" / "t1" / "best") == "t1"
    d = Distiller(_cfg(data, tmp_path / "out", pth, epochs=1, steps_per_epoch=2))
    assert d.teacher_set.assignment() == {t: "best_model" for t in TASKS.split(",")}
    d.fit(progress=False)
    assert len(d.history) == 1 and all(v == v for k, v in d.history[0].items() if k.startswith("loss."))


def test_per_task_kd_can_be_switched_off(data, teacher, tmp_path):
    """no_kd: those tasks learn from labels only (their loss equals the labels-only loss on the same batch)."""
    d = Distiller(_cfg(data, tmp_path, teacher, no_kd=("organ_cls",), augment=False))
    batch = next(d._batches())
    d.model.eval()
    _, per_task = d.compute_loss(batch)
    from usedge.train.losses import task_loss

    out = d.model(batch.images, groups=batch.groups)
    with torch.no_grad():
        for task in batch.tasks:
            gt = task_loss(d.model.task_specs[task], out, batch.targets[task])
            if task == "organ_cls":
                assert float(per_task[task]) == pytest.approx(float(gt), rel=1e-5)
            else:
                assert float(per_task[task]) > float(gt)  # + the distillation term
