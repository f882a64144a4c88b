"""``usedge distill``."""
from __future__ import annotations

import click

from usedge.cli.train import recipe_config, recipe_options


@click.command()
@recipe_options
@click.option("--teacher", "teachers", multiple=True, required=True, type=click.Path(exists=True),
              help="Teacher checkpoint (usedge folder or official-baseline .pth); repeat for several teachers.")
@click.option("--task-teacher", multiple=True, metavar="TASK=TEACHER",
              help="Which teacher answers a task (teacher folder name or t0, t1, ... by position); repeatable. "
                   "Default: the first teacher that has the task.")
@click.option("--no-kd", "no_kd", default="", help="Tasks (ids, kinds or organs) trained on labels only, e.g. where "
                                                   "a teacher is worse than the ground truth.")
@click.option("--student", default="student-s", show_default=True, help="Student preset or timm/<name>.")
@click.option("--unlabelled", multiple=True, help="Unlabelled image / folder / video / DICOM; repeatable.")
@click.option("--unlabelled-every", type=click.IntRange(min=2), default=4, show_default=True,
              help="Every k-th step is an unlabelled batch.")
@click.option("--unlabelled-stride", type=click.IntRange(min=1), default=1, show_default=True,
              help="Keep every n-th frame of videos / cines.")
@click.option("--teacher-cache", "teacher_cache", type=click.Path(file_okay=False), default="",
              help="Folder of teacher caches: the teachers answer a fixed phantom set once (each image and its "
                   "horizontal flip), built there on first use and reused by any run with the same teachers; "
                   "steps then read the answers instead of running the teachers. Default: teachers run every step.")
@click.option("--cache-per-task", type=click.IntRange(min=1), default=200, show_default=True,
              help="Phantom images per task in the cached set.")
@click.option("--teacher-acquisition", type=click.Choice(["", "default", "wide"]), default="", show_default=True,
              help="With --teacher-cache: the teachers answer the phantom rendered with these scanner ranges and the "
                   "student learns that answer on the same anatomy rendered with --acquisition (robustness "
                   "distillation: e.g. --teacher-acquisition default --acquisition wide). Empty: the same images.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="Distillation temperature (classification and segmentation KL).")
@click.option("--gt-weight", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--kd-weight", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--feature-weight", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="FPN feature distillation through 1x1 adapters (0 disables).")
@click.option("--ablation/--no-ablation", default=True, show_default=True,
              help="Also train the student on labels alone with the same budget, for the report.")
@click.option("--labels-only", "labels_only", type=click.Path(exists=True, file_okay=False), default=None,
              help="Use this labels-only checkpoint (same budget) for the ablation instead of training one.")
@click.option("--report/--no-report", default=True, show_default=True)
@click.option("--report-only", is_flag=True, help="Do not train: write the report from the checkpoints in OUT.")
@click.option("--report-data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Score the report on this set's val/ split (e.g. a test seed) instead of the selection split.")
@click.option("--out", type=click.Path(file_okay=False), default="runs/distill", show_default=True)
def distill(teachers, task_teacher, no_kd, student, unlabelled, unlabelled_every, unlabelled_stride, teacher_cache,
            cache_per_task, teacher_acquisition, lr, temperature,
            gt_weight, kd_weight, feature_weight, ablation, labels_only, report, report_only, report_data, out,
            **kw) -> None:
    """Distil one or more teachers into a compact student (labelled mixed-task batches + unlabelled frames).

    Multi-process: torchrun --nproc_per_node N -m usedge.cli.main distill ... (gloo on CPU, NCCL on GPU).
    Ends with OUT/distill_report.{md,json,png}: teachers vs distilled vs labels-only student.
    """
    from usedge.distill.loop import DistillConfig
    from usedge.distill.losses import KDWeights
    from usedge.distill.run import run_distillation
    from usedge.distill.teachers import parse_task_teachers
    from usedge.tasks import parse_tasks

    cfg = DistillConfig(out=out, model=student, lr=lr, **recipe_config(kw), teachers=tuple(teachers),
                        task_teacher=parse_task_teachers(task_teacher), unlabelled=tuple(unlabelled),
                        unlabelled_every=unlabelled_every, unlabelled_stride=unlabelled_stride,
                        teacher_cache=teacher_cache, cache_per_task=cache_per_task,
                        teacher_acquisition=teacher_acquisition,
                        no_kd=tuple(t.id for t in parse_tasks(no_kd)) if no_kd else (),
                        weights=KDWeights(gt=gt_weight, kd=kd_weight, temperature=temperature, feature=feature_weight))
    payload = run_distillation(cfg, ablation=ablation, report=report, labels_only=labels_only, train=not report_only,
                               report_data=report_data)
    if payload:
        click.echo(f"report: {out}/distill_report.md (+ .json, .png); student: {out}/best")
