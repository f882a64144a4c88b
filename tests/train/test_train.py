"""Training on a tiny phantom set learns (loss falls, metrics beat chance); eval writes the submission."""
import json

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from usedge.cli.main import cli  # noqa: E402
from usedge.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from usedge.train.loop import TrainConfig, Trainer  # noqa: E402

TASKS = "fetal_head,organ_cls,thyroid_nodule_det,fetal_femur"


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory):
    from usedge.data.phantom import generate_dataset

    root = tmp_path_factory.mktemp("phantom")
    generate_dataset(root, per_task=48, seed=1, size=128, tasks=_specs(), val_fraction=0.5, progress=False)
    return root


def _specs():
    from usedge.tasks import parse_tasks

    return parse_tasks(TASKS)


@pytest.fixture(scope="module")
def trained(phantom_set, tmp_path_factory):
    from dataclasses import replace

    from usedge.models.presets import resolve_config

    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(data=str(phantom_set), out=str(out), model="student-s", tasks=TASKS, epochs=4,
                      steps_per_epoch=60, batch_size=8, lr=3e-3, warmup_steps=10)
    model_config = replace(resolve_config("student-s", TASKS), input_size=96)
    trainer = Trainer(cfg, model_config=model_config)
    trainer.fit(progress=False)
    return out, trainer.history


@pytest.mark.slow
def test_loss_falls_and_metrics_beat_chance(trained):
    out, history = trained
    first, last = history[0], history[-1]
    assert last["train_loss"] < first["train_loss"]
    # each task's own loss falls (the epoch mean alone could hide a task that never learns)
    for task in TASKS.split(","):
        assert last[f"loss.{task}"] < first[f"loss.{task}"], task
    assert last["organ_cls.accuracy"] > 0.4        # six balanced organs: chance is 1/6
    assert last["fetal_head.dice"] > 0.5          # chance (empty or random mask) is far lower
    assert last["fetal_femur.mre"] < 128 * 0.25    # guessing the centre gives ~0.3 of the side
    assert (out / "metrics.csv").is_file() and (out / "curves.png").stat().st_size > 1000
    assert (out / "best" / "model.safetensors").is_file() and (out / "last" / "train_state.pt").is_file()


@pytest.mark.slow
def test_resume_continues_from_last(trained, phantom_set):
    out, history = trained
    from dataclasses import replace

    from usedge.models.presets import resolve_config

    cfg = TrainConfig(data=str(phantom_set), out=str(out), model="student-s", tasks=TASKS, epochs=5,
                      steps_per_epoch=5, batch_size=8, resume=True)
    trainer = Trainer(cfg, model_config=replace(resolve_config("student-s", TASKS), input_size=96))
    assert trainer.start_epoch == 4 and len(trainer.history) == 4
    trainer.fit(progress=False)
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_eval_cli_writes_submission_and_table(trained, phantom_set, tmp_path):
    out, _ = trained
    result = CliRunner().invoke(cli, ["eval", "--data", str(phantom_set), "--model", str(out / "best"),
                                      "--out", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eval.md").is_file()
    report = json.loads((tmp_path / "eval.json").read_text())
    assert "fetal_head" in json.dumps(report)
    cls = json.loads((tmp_path / "classification_predictions.json").read_text())
    assert cls and {"image_path", "task_id", "predicted_class", "predicted_probs"} <= set(cls[0])
    assert list((tmp_path / "Segmentation").rglob("*.png"))


def test_checkpoint_round_trip_and_atomicity(tmp_path):
    from usedge.models import build_model
    from usedge.models.presets import resolve_config

    config = resolve_config("student-s", "FUGC,breast_2cls")
    model = build_model(config).eval()
    path = save_checkpoint(tmp_path / "ck", model, config, meta={"note": "x"})
    loaded, cfg2, meta = load_checkpoint(path)
    assert cfg2 == config and meta == {"note": "x"}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["FUGC.points"], model(x)["FUGC.points"])
    # an interrupted save (exception mid-write) leaves the previous checkpoint intact
    class Boom(torch.nn.Module):
        def state_dict(self, *a, **k):
            raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        save_checkpoint(path, Boom(), config)
    assert load_checkpoint(path)[1] == config
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_checkpoint_with_wrong_architecture_is_refused(tmp_path):
    from usedge.errors import DataError
    from usedge.models import build_model
    from usedge.models.presets import resolve_config

    config = resolve_config("student-s", "FUGC")
    path = save_checkpoint(tmp_path / "ck", build_model(config), config)
    cfg = json.loads((path / "config.json").read_text())
    cfg["model"]["backbone"] = "timm/mobilenetv3_large_100"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="do not match its config"):
        load_checkpoint(path)
    with pytest.raises(DataError, match="not a usedge checkpoint"):
        load_checkpoint(tmp_path)


@pytest.mark.slow
def test_online_phantom_training_improves_every_family_and_resumes(tmp_path):
    """--data phantom: fresh images every step, a held-out set generated once; a short run lowers the loss of
    every task family (one task of each here), and a stopped run continues where it left off."""
    from usedge.data.fmcuia import load_split

    out = tmp_path / "run"
    base = dict(data="phantom", out=str(out), model="student-s", tasks=TASKS, input_size=64, phantom_size=64,
                batch_size=16, tasks_per_batch=4, steps_per_epoch=15, lr=3e-3, warmup_steps=5, val_per_task=3,
                workers=0, augment=False)
    trainer = Trainer(TrainConfig(epochs=3, **base))
    trainer.fit(progress=False)
    first, last = trainer.history[0], trainer.history[-1]
    for task in TASKS.split(","):
        assert last[f"loss.{task}"] < first[f"loss.{task}"], task
    assert set(last["families"]) == {"seg", "cls", "det", "lmk"}
    assert len(load_split(out / "heldout", "val", TASKS.split(","))) == 12
    resumed = Trainer(TrainConfig(epochs=4, resume=True, **base))
    assert resumed.start_epoch == 3
    resumed.fit(progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]


def test_init_starts_from_a_checkpoints_weights_and_refuses_another_model(trained, phantom_set, tmp_path):
    """--init: the weights of a finished run with a fresh optimizer (what a GPU run's parts hand back)."""
    from dataclasses import replace

    from usedge.errors import ConfigError
    from usedge.models.presets import resolve_config

    out, _ = trained
    model_config = replace(resolve_config("student-s", TASKS), input_size=96)
    cfg = TrainConfig(data=str(phantom_set), out=str(tmp_path / "ft"), model="student-s", tasks=TASKS, epochs=1,
                      steps_per_epoch=1, batch_size=8, init=str(out / "best"))
    trainer = Trainer(cfg, model_config=model_config)
    source, _, _ = load_checkpoint(out / "best")
    for k, v in source.state_dict().items():
        torch.testing.assert_close(trainer.model.state_dict()[k], v)
    assert trainer.start_epoch == 0 and not trainer.history and trainer.sched.last_epoch == 0
    with pytest.raises(ConfigError, match="same --model"):
        Trainer(replace(cfg, tasks="fetal_head,organ_cls"),
                model_config=replace(resolve_config("student-s", "fetal_head,organ_cls"), input_size=96))
