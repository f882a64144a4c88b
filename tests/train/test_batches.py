"""Mixed-task batches: the sampler gives every task its share, a batch runs ONE forward, each head's loss
sees only its own samples, ranks split the global batch, and online phantom data is seeded by its key."""
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usedge.errors import ConfigError  # noqa: E402
from usedge.models import build_model  # noqa: E402
from usedge.models.presets import resolve_config  # noqa: E402
from usedge.train.batches import MixedBatchSampler, PhantomStream, TaskSampler, collate_mixed, key_rng  # noqa: E402
from usedge.train.losses import task_loss  # noqa: E402

SIZES = {"fetal_head": 400, "organ_cls": 100, "thyroid_nodule_det": 50, "fetal_femur": 25, "FUGC": 25}


def _draw_counts(mode: str, k: int, steps: int = 4000, **kw) -> Counter:
    sampler = TaskSampler(SIZES, mode, **kw)
    rng = np.random.default_rng(0)
    return Counter(t for _ in range(steps) for t in sampler.draw(rng, k))


def test_uniform_sampler_gives_every_task_its_share():
    counts = _draw_counts("uniform", k=1)
    assert set(counts) == set(SIZES)
    for n in counts.values():
        assert n == pytest.approx(4000 / len(SIZES), rel=0.1)
    # k distinct tasks per step: each task appears in k/T of the steps, never twice in one step
    counts = _draw_counts("uniform", k=2)
    for n in counts.values():
        assert n == pytest.approx(4000 * 2 / len(SIZES), rel=0.1)


def test_size_and_temperature_sampling_follow_the_task_sizes():
    by_size = _draw_counts("size", k=1)
    assert by_size["fetal_head"] / by_size["organ_cls"] == pytest.approx(4.0, rel=0.15)
    tempered = _draw_counts("temperature", k=1, temperature=2.0)
    assert tempered["fetal_head"] / tempered["organ_cls"] == pytest.approx(2.0, rel=0.15)  # sqrt(400/100)
    with pytest.raises(ConfigError, match="Unknown sampling"):
        TaskSampler(SIZES, "bogus")


def test_mixed_sampler_groups_tasks_and_cycles_each_task():
    sampler = MixedBatchSampler(SIZES, TaskSampler(SIZES), batch_size=12, tasks_per_batch=3, steps=50, seed=1)
    batches = list(sampler)
    assert len(batches) == 50
    for keys in batches:
        tasks = [k[0] for k in keys]
        assert len(keys) == 12 and len(set(tasks)) == 3
        assert all(tasks[i:i + 4] == [tasks[i]] * 4 for i in range(0, 12, 4))  # grouped, 4 per task
        assert len({k[2] for k in keys}) == 12  # unique draw numbers: unique augmentations / phantom images
    # a task's indices run through a permutation before any repeats
    femur = [k[1] for keys in batches for k in keys if k[0] == "fetal_femur"]
    assert sorted(femur[:25]) == list(range(25))
    # the same epoch gives the same batches (resume is exact); another epoch differs
    again = list(sampler)
    assert again == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_ranks_split_each_task_group_of_the_global_batch():
    args = dict(sizes=SIZES, sampler=TaskSampler(SIZES), batch_size=8, tasks_per_batch=2, steps=10, seed=3)
    single = list(MixedBatchSampler(**args))
    ranks = [list(MixedBatchSampler(**args, rank=r, world=2)) for r in range(2)]
    for whole, r0, r1 in zip(single, *ranks):
        assert sorted(r0 + r1) == sorted(whole)
        assert Counter(k[0] for k in r0) == Counter(k[0] for k in r1)  # same tasks, half of each on each rank
    with pytest.raises(ConfigError, match="multiple of"):
        MixedBatchSampler(**{**args, "batch_size": 6}, world=2)


def _batch(tasks=("fetal_head", "organ_cls", "fetal_femur", "thyroid_nodule_det"), per_task=3, size=64):
    config = resolve_config("student-s", ",".join(tasks))
    from dataclasses import replace

    config = replace(config, input_size=size)
    stream = PhantomStream(list(tasks), config, aug=None, seed=5, phantom_size=96)
    keys = [(t, i, 100 * n + i) for n, t in enumerate(tasks) for i in range(per_task)]
    return config, collate_mixed([stream[k] for k in keys])


def test_a_mixed_batch_runs_one_forward_and_each_head_reads_only_its_samples():
    config, batch = _batch()
    torch.manual_seed(0)
    model = build_model(config).train()
    calls = []
    model.backbone.register_forward_hook(lambda *a: calls.append(1))
    out = model(batch.images, groups=batch.groups)
    assert len(calls) == 1  # one backbone pass for the four tasks
    assert out["fetal_head.logits"].shape[0] == 3 and out["organ_cls.logits"].shape == (3, 6)
    assert out["fetal_femur.points"].shape == (3, 2, 2) and out["thyroid_nodule_det.boxes"].shape[0] == 3
    # heads equal a per-task forward on the task's own images (BatchNorm in eval for a fair comparison)
    model.eval()
    with torch.no_grad():
        mixed = model(batch.images, groups=batch.groups)
        for task, sl in batch.groups.items():
            alone = model(batch.images[sl], tasks=[task])
            for name, value in alone.items():
                torch.testing.assert_close(mixed[name], value, atol=1e-4, rtol=1e-4)


def test_each_task_loss_depends_only_on_its_own_samples():
    config, batch = _batch()
    torch.manual_seed(0)
    model = build_model(config).eval()  # eval: BatchNorm does not couple samples, only the heads' slices matter
    images = batch.images.clone().requires_grad_(True)
    out = model(images, groups=batch.groups)
    spec = model.task_specs["organ_cls"]
    task_loss(spec, out, batch.targets["organ_cls"]).backward()
    grad = images.grad.abs().sum(dim=(1, 2, 3))
    own = batch.groups["organ_cls"]
    assert grad[own].min() > 0
    others = torch.ones(len(batch), dtype=torch.bool)
    others[own] = False
    assert grad[others].max() == 0


def test_phantom_stream_is_a_function_of_its_key():
    config, _ = _batch()
    stream = PhantomStream(["fetal_head"], config, aug=None, seed=5, phantom_size=96)
    a, b, c = stream[("fetal_head", 0, 7)], stream[("fetal_head", 0, 7)], stream[("fetal_head", 0, 8)]
    torch.testing.assert_close(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    # the online stream never reproduces a stored phantom set's images (other RNG streams)
    from usedge.data.phantom.generator import sample_rng

    assert key_rng(0, ("fetal_head", 0, 0), PhantomStream.STREAM).random() != sample_rng(0, "val", "fetal_head", 0).random()
