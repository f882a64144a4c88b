"""Cached teacher targets (usedge.distill.cache): equal to the teacher's live answers on the same (flipped)
input, keyed by content, and a distillation run from the cache never calls the teacher."""
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usedge.distill.cache import (  # noqa: E402
    CachedDataset,
    CacheSpec,
    TeacherCache,
    build_cache,
    cache_path,
    entries,
    phantom_digest,
    phantom_source,
)
from usedge.distill.loop import DistillConfig, Distiller  # noqa: E402
from usedge.distill.teachers import Teacher, TeacherSet  # noqa: E402
from usedge.errors import ConfigError  # noqa: E402
from usedge.models import build_model  # noqa: E402
from usedge.models.presets import resolve_config  # noqa: E402
from usedge.train.batches import collate_mixed  # noqa: E402

TASKS = ["fetal_head", "organ_cls", "thyroid_nodule_det", "fetal_femur", "fetal_head_pos_cls"]
SPEC = CacheSpec(per_task=2, seed=5, phantom_size=96, feature_size=8)


@pytest.fixture(scope="module")
def teacher_set():
    config = replace(resolve_config("student-m", ",".join(TASKS)), input_size=96)
    torch.manual_seed(0)
    model = build_model(config).eval()
    return TeacherSet([Teacher("tm", "memory", model, config)], TASKS)


@pytest.fixture(scope="module")
def student():
    return replace(resolve_config("student-s", ",".join(TASKS)), input_size=64)


@pytest.fixture(scope="module")
def cache(teacher_set, student, tmp_path_factory):
    return build_cache(teacher_set, phantom_source(TASKS, SPEC), phantom_digest(TASKS, SPEC), student, SPEC,
                       tmp_path_factory.mktemp("cache"), progress=False)


def test_cached_targets_equal_the_teachers_live_outputs(cache, teacher_set, student):
    live = list(entries(phantom_source(TASKS, SPEC), student, teacher_set.teachers, SPEC))
    model = teacher_set.teachers[0].model
    counts: dict[str, int] = {}
    for task, rgb, _, inputs in live:
        i = counts.get(task, 0)
        counts[task] = i + 1
        image, _, outputs, feats = cache.entry(task, i)
        np.testing.assert_array_equal(image, rgb)
        with torch.no_grad():
            ref = model(inputs["tm"], tasks=[task])
        assert set(outputs) == set(ref)
        for k, v in ref.items():
            np.testing.assert_allclose(outputs[k], v[0].numpy(), rtol=1e-5, atol=1e-5, err_msg=k)
        assert feats["tm"].shape == (model.neck.out_channels, 8, 8) and feats["tm"].dtype == np.float16
    # every task allows the flip except the clock-sector orientation ... which allows it with remapped classes
    assert counts == {t: 4 for t in TASKS} == cache.sizes()


def test_flipped_entries_carry_flipped_labels(cache):
    a, b = cache.entry("fetal_head", 0)[1], cache.entry("fetal_head", 1)[1]      # identity, hflip masks
    iou = lambda m: ((m > 0) & (b > 0)).sum() / max(1, ((m > 0) | (b > 0)).sum())  # noqa: E731
    assert iou(np.fliplr(a)) > 0.9 > iou(a)   # (the 96 -> 64 nearest resize of a thin outline costs a few %)
    ia, ib = cache.entry("fetal_head", 0)[0].astype(float), cache.entry("fetal_head", 1)[0].astype(float)
    assert np.abs(np.fliplr(ia) - ib).mean() < 0.2 * np.abs(ia - ib).mean()
    p, q = cache.entry("fetal_femur", 0)[1], cache.entry("fetal_femur", 1)[1]     # points in [0, 1]
    np.testing.assert_allclose(np.sort(1 - p[:, 0]), np.sort(q[:, 0]), atol=0.03)


def test_the_key_follows_content_not_paths(teacher_set, student, tmp_path):
    digest = phantom_digest(TASKS, SPEC)
    root = tmp_path / "c"
    same = cache_path(teacher_set, student, SPEC, digest, root)
    assert cache_path(teacher_set, student, SPEC, digest, root) == same
    assert cache_path(teacher_set, student, replace(SPEC, seed=6), phantom_digest(TASKS, replace(SPEC, seed=6)),
                      root) != same
    changed = replace(teacher_set.teachers[0], model=build_model(teacher_set.teachers[0].config).eval())
    other = TeacherSet([changed], TASKS)
    assert cache_path(other, student, SPEC, digest, root) != same
    assert cache_path(teacher_set, replace(student, input_size=96), SPEC, digest, root) != same


def test_batches_from_the_cache_hold_each_tasks_answers(cache, student):
    ds = CachedDataset(cache, student, aug=None)
    keys = [(t, i, n) for n, (t, i) in enumerate([(t, i) for t in TASKS[:3] for i in range(2)])]
    batch = collate_mixed([ds[k] for k in keys])
    assert batch.teacher["fetal_head.logits"].shape[0] == 2
    assert batch.teacher["thyroid_nodule_det.boxes"].shape[0] == 2
    assert batch.teacher["feature/tm"].shape[0] == len(keys)
    with pytest.raises(ConfigError, match="student images"):
        CachedDataset(cache, replace(student, input_size=96), aug=None)


def test_distillation_from_the_cache_never_calls_the_teacher(teacher_set, student, tmp_path, monkeypatch):
    cfg = DistillConfig(data="phantom", out=str(tmp_path / "run"), model="student-s", tasks=",".join(TASKS), epochs=1,
                        steps_per_epoch=3, batch_size=5, tasks_per_batch=5, input_size=64, warmup_steps=1,
                        val_per_task=2, phantom_size=96, teacher_cache=str(tmp_path / "cache"), cache_per_task=2,
                        workers=0)
    d = Distiller(cfg, teachers=teacher_set.teachers)
    built = list((tmp_path / "cache").iterdir())
    assert len(built) == 1 and TeacherCache(built[0]).sizes() == {t: 4 for t in TASKS}

    def boom(*a, **k):
        raise AssertionError("the teacher ran during a cached step")

    monkeypatch.setattr(TeacherSet, "predict", boom)
    d.fit(progress=False)
    assert all(np.isfinite(row["loss"]) for row in d.history if "loss" in row)
    monkeypatch.setattr("usedge.distill.cache.teacher_answers", boom)   # a second run reuses the cache as is
    Distiller(replace(cfg, out=str(tmp_path / "run2")), teachers=teacher_set.teachers)
    assert list((tmp_path / "cache").iterdir()) == built


def test_the_labels_only_ablation_of_a_cached_run_trains_on_the_same_cached_images():
    from usedge.distill.run import labels_only_config
    from usedge.train.loop import TrainConfig

    cfg = DistillConfig(data="phantom", out="runs/x", tasks=",".join(TASKS), teachers=("t",), teacher_cache="cache")
    ablation = labels_only_config(cfg)
    assert isinstance(ablation, DistillConfig) and ablation.teacher_cache == "cache"
    assert set(ablation.no_kd) == set(TASKS) and ablation.out.endswith("labels-only")
    assert ablation.weights == cfg.weights      # the same cache key: the cache is reused, not rebuilt
    live = labels_only_config(replace(cfg, teacher_cache=""))
    assert type(live) is TrainConfig


def test_a_paired_cache_gives_the_student_its_own_render_of_the_teachers_anatomy(teacher_set, student):
    paired = replace(SPEC, student_acquisition="wide")
    assert phantom_digest(TASKS, paired) != phantom_digest(TASKS, SPEC)
    plain = list(entries(phantom_source(TASKS, SPEC), student, teacher_set.teachers, SPEC))
    both = list(entries(phantom_source(TASKS, paired), student, teacher_set.teachers, paired))
    assert len(both) == len(plain)
    differ = 0
    for (task, rgb, y, inputs), (task2, rgb2, y2, inputs2) in zip(plain, both, strict=True):
        assert task == task2
        np.testing.assert_array_equal(np.asarray(y), np.asarray(y2))          # the same anatomy and label
        torch.testing.assert_close(inputs["tm"], inputs2["tm"])               # the teacher answers the same image
        differ += int(np.abs(rgb.astype(int) - rgb2.astype(int)).mean() > 1)  # the student sees another render
    assert differ > 0.8 * len(plain)
    with pytest.raises(ConfigError, match="acquisition"):
        next(phantom_source(TASKS, replace(SPEC, student_acquisition="nope")))


def test_a_teacher_acquisition_needs_a_cache():
    with pytest.raises(ConfigError, match="teacher cache"):
        DistillConfig(data="phantom", tasks=",".join(TASKS), teachers=("t",), acquisition="wide",
                      teacher_acquisition="default")
    cfg = DistillConfig(data="phantom", tasks=",".join(TASKS), teachers=("t",), acquisition="wide",
                        teacher_acquisition="default", teacher_cache="c")
    assert cfg.teacher_acquisition == "default"
