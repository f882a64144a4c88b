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


def test_a_phantom_set_records_each_images_physical_scale(tmp_path):
    """mm per pixel = imaged depth / sector depth in px, per image, as the measurements need it."""
    from usedge.data.phantom.generator import generate_sample, mm_per_pixel, phantom_scales, sample_rng

    generate_dataset(tmp_path / "s", per_task=2, seed=7, tasks=["fetal_head"], val_per_task=2, progress=False)
    scales = phantom_scales(tmp_path / "s")
    assert set(scales) == {"train", "val"} and set(scales["val"]) == {"fetal_head_00000", "fetal_head_00001"}
    sample = generate_sample("fetal_head", sample_rng(7, "val", "fetal_head", 1))
    meta = sample.meta
    depth_px = meta["sector"]["r1"] - meta["sector"]["r0"] if meta["sector"]["type"] == "fan" else (
        meta["sector"]["y1"] - meta["sector"]["y0"])
    assert scales["val"]["fetal_head_00001"] == pytest.approx(meta["depth_cm"] * 10 / depth_px, abs=1e-6)
    assert 0.05 < mm_per_pixel(meta) < 2.0
    zoomed = {**meta, "motion": [[1.1, 0.0, 0.0], [0.0, 1.1, 0.0]]}        # a cine frame zoomed out by 10 %
    assert mm_per_pixel(zoomed) == pytest.approx(mm_per_pixel(meta) * 1.1)
    assert phantom_scales(tmp_path) is None


def test_a_shifted_acquisition_is_paired_with_the_clean_set(tmp_path):
    """Same seed, one setting's range replaced: the same anatomy (labels) under other scanner settings, and the
    set records the ranges it was drawn from."""
    import json
    from dataclasses import replace

    from usedge.data.fmcuia import load_split
    from usedge.data.phantom import AcquisitionRanges, generate_dataset

    tasks = ["fetal_head", "organ_cls"]
    generate_dataset(tmp_path / "clean", per_task=1, val_per_task=3, seed=9, size=96, tasks=tasks, progress=False)
    shifted = replace(AcquisitionRanges(), gain_db=(9.0, 11.0))
    generate_dataset(tmp_path / "gain", per_task=1, val_per_task=3, seed=9, size=96, tasks=tasks, progress=False,
                     acquisition=shifted)
    a, b = load_split(tmp_path / "clean", "val"), load_split(tmp_path / "gain", "val")
    assert [s.target() if s.label is not None else None for s in a] == [s.target() if s.label is not None else None
                                                                         for s in b]
    masks = [(x.target(), y.target()) for x, y in zip(a, b) if x.mask_path is not None]
    assert masks and all(np.array_equal(m, n) for m, n in masks)
    brighter = [y.load_image().mean() > x.load_image().mean() for x, y in zip(a, b)]
    assert all(brighter)
    marker = json.loads((tmp_path / "gain" / "phantom.json").read_text())
    assert marker["acquisition"]["gain_db"] == [9.0, 11.0] and "acquisition" not in json.loads(
        (tmp_path / "clean" / "phantom.json").read_text())


def test_training_streams_draw_from_the_named_acquisition_ranges():
    pytest.importorskip("torch")
    from usedge.data.phantom.physics import WIDE_ACQUISITION
    from usedge.errors import ConfigError
    from usedge.models.presets import resolve_config
    from usedge.train.batches import PhantomStream

    config = resolve_config("student-s", "fetal_head")
    assert PhantomStream(["fetal_head"], config, None, acquisition="wide").phantom.acquisition == WIDE_ACQUISITION
    with pytest.raises(ConfigError, match="Unknown acquisition"):
        PhantomStream(["fetal_head"], config, None, acquisition="extreme")
