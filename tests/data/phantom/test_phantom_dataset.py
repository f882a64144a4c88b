"""generate_dataset writes a valid FMC-UIA set whose labels equal the generated ones."""
import json

import numpy as np
import pytest

from usedge.data.fmcuia import load_split, validate_split
from usedge.data.phantom import generate_dataset, generate_sample, sample_rng
from usedge.errors import ConfigError
from usedge.tasks import ALL_TASKS, TaskKind, get_task


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom") / "ds"
    info = generate_dataset(root, per_task=2, seed=3, size=96, progress=False)
    return root, info


def test_layout_counts_and_validation(dataset):
    root, info = dataset
    assert info["root"] == str(root) and info["frames_per_s"] > 0
    assert info["splits"]["train"] == {t.id: 2 for t in ALL_TASKS}
    assert info["splits"]["val"] == {t.id: 1 for t in ALL_TASKS}
    for split, n in (("train", 2), ("val", 1)):
        samples = load_split(root, split)
        assert {s.task_id for s in samples} == {t.id for t in ALL_TASKS}
        assert len(samples) == 27 * n
        report = validate_split(root, split)
        assert report.problems == [] and len(report.samples) == 27 * n
    assert json.loads((root / "phantom.json").read_text())["seed"] == 3
    assert not list(root.parent.glob(".ds.partial-*")), "no partial folder is left behind"


def test_labels_read_back_equal_generated(dataset):
    root, _ = dataset
    from usedge.data.phantom import PhantomConfig

    config = PhantomConfig(size=96)
    for s in load_split(root, "train"):
        i = int(s.image_path.stem.rsplit("_", 1)[1])
        ref = generate_sample(s.task_id, sample_rng(3, "train", s.task_id, i), config)
        assert np.array_equal(s.load_image(), ref.image)
        kind = get_task(s.task_id).kind
        if kind is TaskKind.SEGMENTATION:
            assert np.array_equal(s.load_mask(), ref.label)
        elif kind is TaskKind.CLASSIFICATION:
            assert s.label == ref.label
        elif kind is TaskKind.DETECTION:
            assert np.allclose(s.box, ref.label, atol=1e-3)
        else:
            assert np.allclose(s.points, ref.label, atol=1e-3)


def test_rerun_replaces_a_phantom_set_but_not_other_folders(tmp_path, dataset):
    root = tmp_path / "ds"
    tasks = [get_task("FUGC")]
    generate_dataset(root, per_task=1, size=64, tasks=tasks, progress=False)
    generate_dataset(root, per_task=3, size=64, tasks=tasks, progress=False, val_fraction=0.0)
    assert len(load_split(root, "train")) == 3 and not (root / "val").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError):
        generate_dataset(other, per_task=1, tasks=tasks, progress=False)
    assert (other / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("kwargs", [dict(per_task=0), dict(size=32), dict(val_fraction=1.5), dict(tasks=[])])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        generate_dataset(tmp_path / "x", progress=False, **kwargs)
