"""Seconds per distillation step with a big teacher: live (the teacher runs on every batch) vs cached (its
answers read from a teacher cache, usedge.distill.cache), next to the labels-only step, side by side in one
run; and what building the cache costs per entry. Random weights (time does not depend on them); batch 32 of
8 tasks × 4 images, the student-s recipe (128², stride-2 map), feature KD on.

    python benchmarks/bench_distill_step.py [--teachers baseline-b4,teacher-vit-s] [--threads 2] [--steps 4]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from usedge.distill.cache import CachedDataset, CacheSpec, build_cache, phantom_digest, phantom_source
from usedge.distill.losses import FeatureAdapters, KDWeights, task_kd
from usedge.distill.teachers import FeatureTap, Teacher, TeacherSet
from usedge.models.presets import build_model, resolve_config
from usedge.train.batches import collate_mixed
from usedge.train.losses import task_loss

TASKS = ["fetal_head", "cardiac_multi", "organ_cls", "fetal_plane_cls", "thyroid_nodule_det", "FUGC",
         "breast_lesion", "IUGC"]


def _student():
    config = resolve_config("student-s", ",".join(TASKS))
    return build_model(config).train(), config


def _step(student, opt, batch, teacher_out, feats, adapters, kd: KDWeights) -> None:
    with FeatureTap(student) as tap:
        out = student(batch.images, groups=batch.groups)
    losses = []
    for t, y in batch.targets.items():
        spec = student.task_specs[t]
        term = task_loss(spec, out, y)
        if teacher_out is not None:
            term = term + task_kd(spec, out, teacher_out, kd)
        losses.append(term)
    loss = torch.stack(losses).mean()
    if feats:
        loss = loss + kd.feature * adapters.loss(tap.value, feats)
    opt.zero_grad()
    loss.backward()
    opt.step()


def _median(fn, steps: int) -> float:
    fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teachers", default="baseline-b4,teacher-vit-s")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    kd = KDWeights()
    print("| teacher | labels-only s/step | live KD s/step | cached KD s/step | live / cached | cache build s/entry |\n"
          "|---|---|---|---|---|---|")
    for name in a.teachers.split(","):
        student, s_config = _student()
        t_config = resolve_config(name, ",".join(TASKS))
        teacher = Teacher(name, "random", build_model(t_config).eval(), t_config)
        for p in teacher.model.parameters():
            p.requires_grad_(False)
        tset = TeacherSet([teacher], TASKS)
        spec = CacheSpec(per_task=4, seed=0, feature_size=32)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            cache = build_cache(tset, phantom_source(TASKS, spec), phantom_digest(TASKS, spec), s_config, spec, tmp,
                                progress=False)
            per_entry = (time.perf_counter() - t0) / sum(cache.sizes().values())
            ds = CachedDataset(cache, s_config, aug=None)
            keys = [(t, i % cache.sizes()[t], n) for n, (t, i) in enumerate((t, i) for t in TASKS for i in range(4))]
            batch = collate_mixed([ds[k] for k in keys])
            with torch.no_grad(), FeatureTap(student) as tap:
                student.eval()(batch.images[:1], tasks=["fetal_head"])
            student.train()
            adapters = FeatureAdapters(tap.value.shape[1], {name: int(batch.teacher[f"feature/{name}"].shape[1])})
            opt = torch.optim.AdamW(list(student.parameters()) + list(adapters.parameters()), 1e-4)
            labels = _median(lambda: _step(student, opt, batch, None, {}, adapters, kd), a.steps)

            def live():
                out, feats = tset.predict(batch.images, TASKS, s_config, features=True, groups=batch.groups)
                _step(student, opt, batch, out, feats, adapters, kd)

            def cached():
                b = collate_mixed([ds[k] for k in keys])
                out = {k: v for k, v in b.teacher.items() if not k.startswith("feature/")}
                feats = {k.removeprefix("feature/"): v for k, v in b.teacher.items() if k.startswith("feature/")}
                _step(student, opt, b, out, feats, adapters, kd)

            live_s, cached_s = _median(live, a.steps), _median(cached, a.steps)
        print(f"| {name} ({t_config.input_size}²) | {labels:.2f} | {live_s:.2f} | {cached_s:.2f} | "
              f"{live_s / cached_s:.1f}× | {per_entry:.3f} |", flush=True)


if __name__ == "__main__":
    main()
