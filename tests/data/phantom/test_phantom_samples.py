"""Every task generates valid, sector-cropped, JSON-described samples; bad input raises ConfigError."""
import json

import numpy as np
import pytest

from usedge.data.phantom import PhantomConfig, generate_sample, sample_rng
from usedge.data.phantom.physics import get_geometry
from usedge.errors import ConfigError
from usedge.tasks import ALL_TASKS, TaskKind

SEEDS = (0, 1, 2)


def _sector(sample):
    return get_geometry(sample.meta["preset"], sample.image.shape[0], sample.meta["variant"]).mask


@pytest.mark.parametrize("spec", ALL_TASKS, ids=lambda s: s.id)
def test_every_task_generates_valid_samples(spec):
    for seed in SEEDS:
        s = generate_sample(spec.id, sample_rng(seed, "train", spec.id, 0))
        assert s.task_id == spec.id
        assert s.image.dtype == np.uint8 and s.image.shape == (256, 256)
        assert s.meta["probe"] in ("curvilinear", "linear")
        json.dumps(s.meta)
        sector = _sector(s)
        assert (s.image[sector == 0] == 0).all(), "outside the scan sector must be black"
        assert s.image[sector > 0].mean() > 8, "the sector shows an image"
        if spec.kind is TaskKind.SEGMENTATION:
            assert s.label.shape == (256, 256) and s.label.dtype == np.uint8
            assert s.label.max() < spec.num_classes
            assert set(np.unique(s.label)) == set(range(spec.num_classes)), "every class is drawn"
            assert (s.label[sector == 0] == 0).all(), "masks are cropped to the sector"
        elif spec.kind is TaskKind.CLASSIFICATION:
            assert isinstance(s.label, int) and 0 <= s.label < spec.num_classes
            assert s.meta["class_name"] == spec.class_names[s.label]
        elif spec.kind is TaskKind.DETECTION:
            x0, y0, x1, y1 = s.label
            assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
            assert (x1 - x0) >= 4 and (y1 - y0) >= 4
        else:
            assert len(s.label) == spec.num_points
            for x, y in s.label:
                assert 0 <= x <= 255 and 0 <= y <= 255
                assert sector[int(round(y)), int(round(x))], "landmarks lie inside the sector"


@pytest.mark.parametrize("size", [64, 160, 384])
def test_other_sizes(size):
    for task in ("fetal_head", "thyroid_nodule_det", "IUGC", "cardiac_multi", "lung_2cls"):
        s = generate_sample(task, sample_rng(0, "train", task, 0), PhantomConfig(size=size))
        assert s.image.shape == (size, size)
        if isinstance(s.label, np.ndarray):
            assert s.label.shape == (size, size) and s.label.max() > 0


def test_classes_are_drawn_uniformly():
    for task, n in (("breast_3cls", 3), ("fetal_head_pos_cls", 8), ("organ_cls", 6)):
        labels = [generate_sample(task, sample_rng(0, "train", task, i)).label for i in range(24 * n)]
        counts = np.bincount(labels, minlength=n)
        assert counts.min() >= 10, (task, counts)


@pytest.mark.parametrize("bad", [dict(task_id="fetal_hed"), dict(task_id="fetal_head", size=32),
                                 dict(task_id="fetal_head", size=256.0), dict(task_id="fetal_head", size=5000)])
def test_bad_input_raises_config_error(bad):
    with pytest.raises(ConfigError):
        size = bad.pop("size", 256)
        generate_sample(bad["task_id"], np.random.default_rng(0), PhantomConfig(size=size))


def test_unknown_task_lists_names():
    with pytest.raises(ConfigError, match="fetal_head"):
        generate_sample("fetal_hed", np.random.default_rng(0))
