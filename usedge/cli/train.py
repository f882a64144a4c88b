"""``usedge train`` and ``usedge eval``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from usedge._io import atomic_write_json, atomic_write_text


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True,
              help="Data set root in the FMC-UIA layout (train/ and optionally val/).")
@click.option("--model", default="student-s", show_default=True,
              help="Preset (baseline-b4, student-s, student-m, ...) or timm/<name> / smp/<name>.")
@click.option("--tasks", default="all", show_default=True, help="'all', task ids, kinds or organs, comma separated.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--steps-per-epoch", type=click.IntRange(min=0), default=0, show_default=True,
              help="0: one pass over the training images.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--input-size", type=click.IntRange(min=32), default=None,
              help="Square input side the images are resized to (default: the preset's, 256).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--sampling", type=click.Choice(["uniform", "temperature"]), default="uniform", show_default=True)
@click.option("--freeze-norm", is_flag=True, help="Keep BatchNorm statistics frozen (tiny per-process batches).")
@click.option("--no-augment", is_flag=True, help="Disable augmentation.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.")
def train(data, model, tasks, epochs, steps_per_epoch, batch_size, input_size, lr, sampling, freeze_norm, no_augment,
          device, seed, out, resume) -> None:
    """Train a multi-task model (teacher or student) on a labelled data set."""
    from usedge.train.loop import TrainConfig, Trainer

    cfg = TrainConfig(data=data, out=out, model=model, tasks=tasks, epochs=epochs, steps_per_epoch=steps_per_epoch,
                      batch_size=batch_size, input_size=input_size or 0, lr=lr, sampling=sampling,
                      augment=not no_augment, freeze_norm=freeze_norm, device=device,
                      seed=seed, resume=resume)
    last = Trainer(cfg).fit()
    click.echo(f"done: val score {last.get('val_score', float('nan')):.4f}; checkpoints in {out}/best and {out}/last; "
               f"curves {out}/curves.png")


@click.command("eval")
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--model", "checkpoint", type=click.Path(exists=True), default=None,
              help="A usedge checkpoint folder or an official-baseline .pth state_dict (torch path).")
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="A bundle from `usedge export`: scored through the runtime Predictor users run.")
@click.option("--backend", default="auto", show_default=True, help="With --bundle: auto, openvino, onnxruntime, ...")
@click.option("--precision", default="auto", show_default=True, help="With --bundle: auto, int8, fp32, fp16.")
@click.option("--split", type=click.Choice(["val", "train"]), default="val", show_default=True)
@click.option("--tasks", default="all", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/eval", show_default=True,
              help="Gets the submission files, eval.md and eval.json.")
@click.option("--device", default="auto", show_default=True)
def evaluate(data, checkpoint, bundle, backend, precision, split, tasks, out, device) -> None:
    """Score a checkpoint or a bundle with the challenge's metrics; write submission files and a per-task table."""
    from usedge.data.fmcuia import load_split
    from usedge.errors import ConfigError
    from usedge.tasks import parse_tasks

    if (checkpoint is None) == (bundle is None):
        raise ConfigError("pass exactly one of --model CKPT or --bundle DIR.", fix="usedge eval --help")
    task_ids = [t.id for t in parse_tasks(tasks)]
    if bundle:
        from usedge.runtime.evaluate import evaluate_with_predictor
        from usedge.runtime.predictor import load

        predictor = load(bundle, backend=backend, precision=precision)
        click.echo(f"bundle on {predictor.choice.backend} {predictor.choice.precision} ({predictor.choice.reason})")
        task_ids = [t for t in task_ids if t in predictor.model_tasks]
        report = evaluate_with_predictor(predictor, load_split(data, split, task_ids), task_ids, submission=out)
    else:
        from usedge.train.checkpoint import load_checkpoint
        from usedge.train.evaluate import evaluate_model
        from usedge.train.loop import resolve_device

        dev = str(resolve_device(device))
        model, config, _ = load_checkpoint(checkpoint, device=dev)
        report = evaluate_model(model, config, load_split(data, split, task_ids), submission=out, device=dev)
    table = report.to_markdown()
    atomic_write_text(Path(out) / "eval.md", table)
    atomic_write_json(Path(out) / "eval.json", report.to_json())
    click.echo(table)
    click.echo(f"wrote {out}/eval.md, {out}/eval.json and the submission files")
