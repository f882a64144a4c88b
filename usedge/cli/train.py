"""``usedge train`` and ``usedge eval``."""
from __future__ import annotations

from pathlib import Path

import click

from usedge._io import atomic_write_json, atomic_write_text
from usedge.cli.stream import region_option


def data_option(f):
    """``--data``: a data set root, or ``phantom`` for fresh phantom images every step."""
    def check(ctx, param, value: str) -> str:
        if value != "phantom" and not Path(value).is_dir():
            raise click.BadParameter(f"'{value}' is not a folder.", ctx, param)
        return value

    return click.option("--data", required=True, callback=check,
                        help="Data set root in the FMC-UIA layout (train/ and optionally val/), or 'phantom' "
                             "for fresh, seeded phantom images every step (held-out set: --val-data, or "
                             "generated once into OUT/heldout).")(f)


def recipe_options(f):
    """Options shared by ``usedge train`` and ``usedge distill`` (the mixed-batch recipe)."""
    opts = [
        click.option("--tasks", default="all", show_default=True, help="'all', task ids, kinds or organs, comma separated."),
        click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True),
        click.option("--steps-per-epoch", type=click.IntRange(min=0), default=0, show_default=True,
                     help="0: one pass over the training images (phantom: 200)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
                     help="Images per step, split evenly over --tasks-per-batch tasks."),
        click.option("--tasks-per-batch", type=click.IntRange(min=1), default=8, show_default=True,
                     help="Distinct tasks in each step's one forward pass."),
        click.option("--sampling", type=click.Choice(["uniform", "size", "temperature"]), default="uniform",
                     show_default=True, help="How a step's tasks are drawn: uniform, by size, or p ∝ n^(1/T)."),
        click.option("--sampling-temperature", "sampling_temperature", type=click.FloatRange(min=0, min_open=True),
                     default=2.0, show_default=True, help="T of --sampling temperature."),
        click.option("--input-size", type=click.IntRange(min=32), default=None,
                     help="Square input side the images are resized to (default: the preset's)."),
        click.option("--dense-stride", type=click.Choice(["2", "4"]), default=None,
                     help="Stride of the dense map (default: the preset's)."),
        click.option("--warmup-steps", type=click.IntRange(min=0), default=200, show_default=True),
        click.option("--val-data", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Held-out set for checkpoint selection (its val/ split)."),
        click.option("--val-per-task", type=click.IntRange(min=1), default=100, show_default=True,
                     help="Held-out images per task generated for --data phantom."),
        click.option("--phantom-size", type=click.IntRange(min=64, max=2048), default=256, show_default=True,
                     help="Side of the generated phantom images (--data phantom)."),
        click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
                     help="DataLoader worker processes (phantom generation, augmentation)."),
        click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
                     help="torch intra-op threads (0: torch's default)."),
        click.option("--freeze-norm", is_flag=True, help="Keep BatchNorm statistics frozen (tiny per-process batches)."),
        click.option("--no-augment", is_flag=True, help="Disable augmentation."),
        click.option("--acquisition", type=click.Choice(["default", "wide"]), default="default", show_default=True,
                     help="Scanner-setting ranges of the training phantom (--data phantom): wide widens gain, TGC, "
                          "dynamic range, noise floor and PSF beyond the default phantom's (docs/phantom.md)."),
        click.option("--us-augment", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Probability of the ultrasound artefact augmentation per image (depth attenuation, "
                          "noise at depth, acoustic shadows, haze, coarser speckle)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ..."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--resume", is_flag=True, help="Continue from OUT/last."),
        click.option("--init", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Start from this checkpoint's weights (same architecture and tasks) with a fresh optimizer "
                          "and schedule: fine-tuning, or continuing a run whose optimizer state was not kept (the "
                          "weights a GPU run hands back, scripts/gpu_teachers.sh)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return data_option(f)


def recipe_config(kw: dict) -> dict:
    """TrainConfig fields from the shared options (consumes them from ``kw``)."""
    stride = kw.pop("dense_stride")
    return dict(data=kw.pop("data"), tasks=kw.pop("tasks"), epochs=kw.pop("epochs"),
                steps_per_epoch=kw.pop("steps_per_epoch"), batch_size=kw.pop("batch_size"),
                tasks_per_batch=kw.pop("tasks_per_batch"), sampling=kw.pop("sampling"),
                temperature=kw.pop("sampling_temperature"), input_size=kw.pop("input_size") or 0,
                dense_stride=int(stride) if stride else 0, warmup_steps=kw.pop("warmup_steps"),
                val_data=kw.pop("val_data") or "", val_per_task=kw.pop("val_per_task"),
                phantom_size=kw.pop("phantom_size"), workers=kw.pop("workers"), threads=kw.pop("threads"),
                freeze_norm=kw.pop("freeze_norm"), augment=not kw.pop("no_augment"), device=kw.pop("device"),
                seed=kw.pop("seed"), resume=kw.pop("resume"), init=kw.pop("init") or "",
                acquisition=kw.pop("acquisition"), us_augment=kw.pop("us_augment"))


@click.command()
@recipe_options
@click.option("--model", default="student-s", show_default=True,
              help="Preset (baseline-b4, student-s, student-m, ...) or timm/<name> / smp/<name>.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train", show_default=True)
def train(model, lr, out, **kw) -> None:
    """Train a multi-task model (teacher or student): mixed-task batches, label-true augmentation, cosine
    schedule; on a data set on disk or on fresh phantom images (--data phantom)."""
    from usedge.train.loop import TrainConfig, Trainer

    cfg = TrainConfig(out=out, model=model, lr=lr, **recipe_config(kw))
    last = Trainer(cfg).fit()
    click.echo(f"done: val score {last.get('val_score', float('nan')):.4f}; checkpoints in {out}/best and {out}/last; "
               f"curves {out}/curves.png")


@click.command("eval")
@region_option
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
@click.option("--montage", type=click.Path(dir_okay=False), default=None,
              help="With --bundle: also write a PNG of truth vs prediction for one image per task.")
@click.option("--measure", "measure", is_flag=True, default=False,
              help="With --bundle: also measure truth and prediction (usedge.measure) and write measure.md, "
                   "measure.json and a Bland-Altman PNG per measurement (MAE, bias, 95 % limits, withheld).")
@click.option("--mm-per-pixel", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --measure: the pixel size of every image (default: a phantom set's recorded scale, "
                   "else lengths in px).")
@click.option("--auc", type=click.Choice(["official", "defined"]), default="official", show_default=True,
              help="official: the challenge evaluator's AUC (0.0 where a class is missing from the split); "
                   "defined: usedge's variant (NaN / macro over the classes present), labelled in the report.")
def evaluate(data, checkpoint, bundle, backend, precision, split, tasks, out, device, montage, measure, mm_per_pixel,
             auc, region) -> None:
    """Score a checkpoint or a bundle with the challenge's metrics; write submission files and a per-task table."""
    from usedge._io import check_outputs, staged_dir
    from usedge.errors import ConfigError
    from usedge.tasks import parse_tasks

    if (checkpoint is None) == (bundle is None):
        raise ConfigError("pass exactly one of --model CKPT or --bundle DIR.", fix="usedge eval --help")
    if (montage or measure) and not bundle:
        raise ConfigError("--montage and --measure use the runtime's results: use them with --bundle.",
                          fix="export the checkpoint (usedge export) and pass --bundle.")
    check_outputs({"--out": out, "--montage": montage}, {"--data": data, "--model": checkpoint, "--bundle": bundle})
    task_ids = [t.id for t in parse_tasks(tasks)]
    # the whole output folder appears at the end or not at all: an interrupted or failed run leaves an earlier
    # run's files as they were, never a mix of old and new masks
    with staged_dir(out, marker="eval.json") as stage:
        picture = montage
        if montage and Path(out).resolve() in Path(montage).resolve().parents:   # inside --out: goes in with it
            picture = stage / Path(montage).resolve().relative_to(Path(out).resolve())
        report = _score(data, checkpoint, bundle, backend, precision, split, task_ids, stage, device, picture, auc,
                        (measure, mm_per_pixel), region)
        table = report.to_markdown()
        atomic_write_text(stage / "eval.md", table)
        atomic_write_json(stage / "eval.json", report.to_json())
        gate = getattr(report, "gate", None)
        if gate:
            atomic_write_json(stage / "gate.json", gate)
        selective = getattr(report, "selective", None)
        if selective:
            from usedge.metrics.selective import selective_png

            atomic_write_json(stage / "selective.json", selective["families"])
            selective_png(selective, stage / "selective.png")
    click.echo(table)
    if gate and gate.get("enabled"):
        click.echo(f"frame gate: rejected {gate['rejected']} of {gate['images']} images "
                   f"({gate['rejected_fraction']:.2%}); per task in {out}/gate.json"
                   + ("" if gate["distance_check"] else f" ({gate['note']})"))
    for fam, row in ((selective or {}).get("families") or {}).items():
        click.echo(f"selective {fam}: {row['metric']} all {row['all']:.4f}, accepted {row['accepted']:.4f} "
                   f"({row['accepted_fraction']:.1%}), 80 % nearest {row['at_80']:.4f}; risk-coverage area "
                   f"{row['area']:.4f} ({out}/selective.png)")
    click.echo(f"wrote {out}/eval.md, {out}/eval.json and the submission files")


def _score(data, checkpoint, bundle, backend, precision, split, task_ids, out, device, montage, auc,
           measuring=(False, None), region="dicom"):
    """The report of a bundle (through the Predictor) or a checkpoint (torch); submission files into ``out``."""
    from usedge.data.fmcuia import load_split, require_samples

    if bundle:
        from usedge.runtime.evaluate import evaluate_with_predictor
        from usedge.runtime.predictor import load

        with load(bundle, backend=backend, precision=precision, region=region) as predictor:
            click.echo(f"bundle on {predictor.choice.backend} {predictor.choice.precision} ({predictor.choice.reason})")
            task_ids = [t for t in task_ids if t in predictor.model_tasks]
            samples = require_samples(load_split(data, split, task_ids), data, split, task_ids)
            report = evaluate_with_predictor(predictor, samples, task_ids, submission=out, auc=auc)
            if montage:
                from usedge.stream.montage import prediction_montage

                click.echo(f"wrote {prediction_montage(predictor, samples, montage)}")
            if measuring[0]:
                _measure_agreement(predictor, samples, data, split, out, measuring[1])
    else:
        from usedge.models.checkpoint import load_checkpoint
        from usedge.train.evaluate import evaluate_model
        from usedge.train.loop import resolve_device

        dev = str(resolve_device(device))
        model, config, _ = load_checkpoint(checkpoint, device=dev)
        samples = require_samples(load_split(data, split, task_ids), data, split, task_ids)
        report = evaluate_model(model, config, samples, submission=out, device=dev,
                                auc=auc)
    return report


def _measure_agreement(predictor, samples, data, split, out, mm_per_pixel) -> None:
    from usedge.data.phantom.generator import phantom_scales, phantom_truth
    from usedge.measure.agreement import agreement_on, to_markdown, write_agreement

    scales = None if mm_per_pixel else phantom_scales(data)
    where = (f"{mm_per_pixel} mm per pixel (--mm-per-pixel)" if mm_per_pixel else
             "each image's recorded phantom scale; truth from the generator's geometry where recorded" if scales
             else "no calibration: lengths in px")
    results = agreement_on(predictor, samples, mm_per_pixel, scales, split, phantom_truth(data))
    write_agreement(results, Path(out) / "measure")
    click.echo(f"measurements, truth vs prediction ({where}):\n{to_markdown(results)}")
