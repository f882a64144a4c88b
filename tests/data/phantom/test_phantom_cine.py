"""Cine: readable video, one label per frame, correlated consecutive frames, atomic writes."""
import json

import cv2
import numpy as np
import pytest

from usedge.data.phantom import decode_rle, iter_cine, label_from_json, write_cine
from usedge.data.phantom.cine import encode_rle
from usedge.data.phantom.physics import get_geometry
from usedge.errors import ConfigError
from usedge.tasks import get_task


def test_write_cine_video_and_labels(tmp_path):
    video, labels = write_cine(tmp_path / "c" / "head.mp4", "fetal_head", frames=12, fps=24.0, seed=1, size=128)
    assert video.exists() and labels.name == f"{video.stem}.labels.json"
    cap = cv2.VideoCapture(str(video))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape[:2] == (128, 128)
        n += 1
    assert n == 12
    data = json.loads(labels.read_text())
    assert data["task_id"] == "fetal_head" and data["fps"] == 24.0 and len(data["frames"]) == 12
    assert [f["index"] for f in data["frames"]] == list(range(12))
    assert data["frames"][3]["timestamp_s"] == pytest.approx(3 / 24.0)
    ref = list(iter_cine("fetal_head", 12, seed=1, size=128))
    for entry, sample in zip(data["frames"], ref, strict=True):
        assert np.array_equal(label_from_json(get_task("fetal_head"), entry["label"]), sample.label)
    assert not [p for p in video.parent.iterdir() if p.name.startswith(".")], "no temp files left"


@pytest.mark.parametrize("task", ["thyroid_nodule_det", "IUGC", "breast_2cls"])
def test_cine_labels_of_other_kinds(tmp_path, task):
    _, labels = write_cine(tmp_path / f"{task}.mp4", task, frames=4, seed=2, size=96)
    frames = json.loads(labels.read_text())["frames"]
    assert len(frames) == 4
    spec = get_task(task)
    first = label_from_json(spec, frames[0]["label"])
    assert np.allclose(first, next(iter_cine(task, 1, seed=2, size=96)).label, atol=1e-3)


def test_consecutive_frames_are_correlated():
    frames = [s.image.astype(np.float64) for s in iter_cine("liver_lesion_2cls", 6, seed=0, size=128)]
    other = next(iter_cine("liver_lesion_2cls", 1, seed=99, size=128)).image.astype(np.float64)
    s0 = next(iter_cine("liver_lesion_2cls", 1, seed=0, size=128))
    g0 = get_geometry(s0.meta["preset"], 128, s0.meta["variant"]).mask
    s9 = next(iter_cine("liver_lesion_2cls", 1, seed=99, size=128))
    m = (g0 > 0) & (get_geometry(s9.meta["preset"], 128, s9.meta["variant"]).mask > 0)

    def corr(a, b):
        return np.corrcoef(a[m], b[m])[0, 1]

    consecutive = [corr(frames[i], frames[i + 1]) for i in range(5)]
    assert min(consecutive) > 0.6
    assert min(consecutive) > corr(frames[0], other) + 0.3
    assert not np.array_equal(frames[0], frames[1]), "the probe moves and speckle changes"


def test_labels_follow_the_motion():
    samples = list(iter_cine("cardiac_multi", 30, seed=3, size=128))
    areas = [int((s.label == 1).sum()) for s in samples]
    assert min(areas) > 0
    assert not all(np.array_equal(samples[0].label, s.label) for s in samples[1:])


def test_rle_roundtrip():
    mask = np.random.default_rng(0).integers(0, 4, (17, 23)).astype(np.uint8)
    assert np.array_equal(decode_rle(encode_rle(mask)), mask)


@pytest.mark.parametrize("kwargs", [dict(frames=0), dict(frames=-3), dict(task_id="nope"), dict(fps=0.0),
                                    dict(size=16)])
def test_bad_cine_arguments(tmp_path, kwargs):
    args = dict(task_id="fetal_head", frames=2)
    args.update(kwargs)
    with pytest.raises(ConfigError):
        write_cine(tmp_path / "x.mp4", **args)
    with pytest.raises(ConfigError):
        if "fps" not in kwargs:
            next(iter_cine(args["task_id"], args["frames"], size=args.get("size", 64)))
        else:
            raise ConfigError("fps only applies to write_cine")
