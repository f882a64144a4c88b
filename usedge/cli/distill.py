"""``usedge distill``."""
from __future__ import annotations

import click


@click.command()
@click.option("--teacher", "teachers", multiple=True, required=True, type=click.Path(exists=True),
              help="Teacher checkpoint (usedge folder or official-baseline .pth); repeat for several teachers.")
@click.option("--task-teacher", multiple=True, metavar="TASK=TEACHER",
              help="Which teacher answers a task (teacher folder name or t0, t1, ... by position); repeatable. "
                   "Default: the first teacher that has the task.")
@click.option("--student", default="student-s", show_default=True, help="Student preset or timm/<name>.")
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True,
              help="Labelled data set in the FMC-UIA layout.")
@click.option("--unlabelled", multiple=True, help="Unlabelled image / folder / video / DICOM; repeatable.")
@click.option("--unlabelled-every", type=click.IntRange(min=2), default=4, show_default=True,
              help="Every k-th step is an unlabelled batch.")
@click.option("--unlabelled-stride", type=click.IntRange(min=1), default=1, show_default=True,
              help="Keep every n-th frame of videos / cines.")
@click.option("--tasks", default="all", show_default=True, help="Student tasks: 'all', ids, kinds or organs.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--steps-per-epoch", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--input-size", type=click.IntRange(min=32), default=None, help="Student input side (default 256).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option("--gt-weight", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--kd-weight", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--feature-weight", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="FPN feature distillation through 1x1 adapters (0 disables).")
@click.option("--ablation/--no-ablation", default=True, show_default=True,
              help="Also train the student on labels alone with the same budget, for the report.")
@click.option("--labels-only", "labels_only", type=click.Path(exists=True, file_okay=False), default=None,
              help="Use this labels-only checkpoint (same budget) for the ablation instead of training one.")
@click.option("--report/--no-report", default=True, show_default=True)
@click.option("--freeze-norm", is_flag=True, help="Keep BatchNorm statistics frozen (tiny per-process batches).")
@click.option("--no-augment", is_flag=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/distill", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.")
def distill(teachers, task_teacher, student, data, unlabelled, unlabelled_every, unlabelled_stride, tasks, epochs,
            steps_per_epoch, batch_size, input_size, lr, temperature, gt_weight, kd_weight, feature_weight, ablation,
            labels_only, report, freeze_norm, no_augment, device, seed, out, resume) -> None:
    """Distil one or more teachers into a compact student (labelled + unlabelled frames).

    Multi-process: torchrun --nproc_per_node N -m usedge.cli.main distill ... (gloo on CPU, NCCL on GPU).
    Ends with OUT/distill_report.{md,json,png}: teachers vs distilled vs labels-only student.
    """
    from usedge.distill.loop import DistillConfig
    from usedge.distill.losses import KDWeights
    from usedge.distill.run import run_distillation
    from usedge.distill.teachers import parse_task_teachers

    cfg = DistillConfig(data=data, out=out, model=student, tasks=tasks, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        batch_size=batch_size, input_size=input_size or 0, lr=lr, augment=not no_augment,
                        freeze_norm=freeze_norm,
                        device=device, seed=seed, resume=resume, teachers=tuple(teachers),
                        task_teacher=parse_task_teachers(task_teacher), unlabelled=tuple(unlabelled),
                        unlabelled_every=unlabelled_every, unlabelled_stride=unlabelled_stride,
                        weights=KDWeights(gt=gt_weight, kd=kd_weight, temperature=temperature, feature=feature_weight))
    payload = run_distillation(cfg, ablation=ablation, report=report, labels_only=labels_only)
    if payload:
        click.echo(f"report: {out}/distill_report.md (+ .json, .png); student: {out}/best")
