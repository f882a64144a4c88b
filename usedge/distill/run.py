"""The whole ``usedge distill`` job: distil, train the labels-only ablation on the same budget, report."""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

from usedge.distill.loop import DistillConfig, Distiller
from usedge.distill.report import ModelEntry, measure_model, write_report


def labels_only_config(cfg: DistillConfig):
    """The same run without teachers: same data, student, steps, schedule, seed. With a teacher cache, the
    same cached images with every task on labels only (the teacher answers unused)."""
    from usedge.train.loop import TrainConfig

    out = str(Path(cfg.out) / "labels-only")
    if cfg.teacher_cache:
        from usedge.models.presets import resolve_config

        every = resolve_config(cfg.model, cfg.tasks).tasks
        return replace(cfg, out=out, no_kd=tuple(every), unlabelled=())   # same weights: the same cache key
    base = {f.name: getattr(cfg, f.name) for f in fields(TrainConfig)}
    return TrainConfig(**{**base, "out": out})


def run_distillation(cfg: DistillConfig, ablation: bool = True, report: bool = True, progress: bool = True,
                     latency_runs: int = 50, labels_only: str | None = None, train: bool = True,
                     report_data: str | None = None) -> dict:
    """Distil into ``cfg.out`` (best/, last/), optionally train ``cfg.out/labels-only``, write the report.

    ``labels_only``: an existing labels-only checkpoint trained with the same budget, used instead of
    training the ablation again (its train config is recorded in the report). ``train=False`` only writes
    the report from the checkpoints already in ``cfg.out``. ``report_data``: score the report on this set's
    val/ split (e.g. a test set of a seed never trained or selected on) instead of the selection split.

    Returns the report payload (empty when ``report`` is False or on non-main ranks).
    """
    from usedge.data.fmcuia import load_split
    from usedge.models.checkpoint import load_checkpoint
    from usedge.train.loop import Trainer

    distiller = Distiller(cfg)
    if train:
        distiller.fit(progress=progress)
    ablation_path = Path(labels_only) if labels_only else Path(cfg.out) / "labels-only" / "best"
    if train and ablation and not labels_only:
        ablation_cfg = labels_only_config(cfg)
        if isinstance(ablation_cfg, DistillConfig):
            runner = Distiller(ablation_cfg, model_config=distiller.model_config, teachers=distiller.teacher_set.teachers)
        else:
            runner = Trainer(ablation_cfg, model_config=distiller.model_config)
        runner.fit(progress=progress)
    if not report or not distiller.dist.is_main:
        distiller.close()
        return {}
    val = load_split(report_data, "val", list(distiller.model_config.tasks)) if report_data else distiller.val
    device = str(distiller.device)
    entries = []
    for t in distiller.teacher_set.teachers:
        entries.append(_entry(t.name, "teacher", t.model, t.config, val, device, latency_runs))
    runs = [("distilled", Path(cfg.out) / "best")] + ([("labels-only", ablation_path)] if ablation else [])
    for role, path in runs:
        model, config, _ = load_checkpoint(path, device=device)
        entries.append(_entry(f"{config.name} ({role})", role, model, config, val, device, latency_runs))
    distiller.close()
    return write_report(Path(cfg.out), entries, distiller.teacher_set.assignment(),
                        data=f"{report_data}/val" if report_data else "the selection (held-out) split")


def _entry(name, role, model, config, val, device, runs) -> ModelEntry:
    from usedge.train.evaluate import evaluate_model

    results = evaluate_model(model, config, val, device=device).results()
    latency, runtime = measure_model(model, config, runs=runs)
    return ModelEntry(name, role, results, sum(p.numel() for p in model.parameters()), latency, runtime,
                      list(config.tasks))
