"""Same seed -> identical samples; other seeds/indices differ; tasks do not influence each other."""
import numpy as np

from usedge.data.phantom import generate_dataset, generate_sample, sample_rng
from usedge.tasks import get_task

TASKS = ("fetal_head", "FUGC", "breast_2cls", "thyroid_nodule_det", "cardiac_multi")


def _same(a, b):
    if isinstance(a.label, np.ndarray):
        return np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
    return np.array_equal(a.image, b.image) and a.label == b.label


def test_same_seed_same_sample_other_seed_differs():
    for task in TASKS:
        a = generate_sample(task, sample_rng(7, "train", task, 3))
        b = generate_sample(task, sample_rng(7, "train", task, 3))
        assert _same(a, b) and a.meta == b.meta
        for other in (sample_rng(8, "train", task, 3), sample_rng(7, "val", task, 3), sample_rng(7, "train", task, 4)):
            assert not np.array_equal(a.image, generate_sample(task, other).image)


def test_rng_depends_only_on_seed_split_task_index():
    a = sample_rng(0, "train", "fetal_head", 1).random(4)
    generate_sample("FUGC", sample_rng(0, "train", "FUGC", 1))          # unrelated work in between
    assert np.array_equal(a, sample_rng(0, "train", "fetal_head", 1).random(4))


def test_adding_tasks_does_not_change_a_task(tmp_path):
    one = generate_dataset(tmp_path / "one", per_task=1, tasks=[get_task("fetal_head")], progress=False)
    two = generate_dataset(tmp_path / "two", per_task=1, tasks=[get_task("FUGC"), get_task("fetal_head")],
                           progress=False)
    assert one["splits"]["train"] == {"fetal_head": 1}
    assert set(two["splits"]["train"]) == {"FUGC", "fetal_head"}
    for split in ("train", "val"):
        rel = f"{split}/Segmentation/Two/fetal_head"
        for sub, name in (("IMAGES", "fetal_head_00000.png"), ("MASKS", "mask_fetal_head_00000.png")):
            one, two = (tmp_path / d / rel / sub / name for d in ("one", "two"))
            assert one.read_bytes() == two.read_bytes()
