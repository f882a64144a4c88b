"""Refitting the view classifiers on every task's frames (usedge.train.views)."""
from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from usedge.models import build_model  # noqa: E402
from usedge.models.presets import resolve_config  # noqa: E402
from usedge.tasks import TASKS  # noqa: E402
from usedge.train.views import PooledFrames, ViewFitConfig, fit_view_heads, phantom_frames, view_targets  # noqa: E402

PLANES = TASKS.get("fetal_plane_cls").class_names
ORGANS = TASKS.get("organ_cls").class_names


def test_targets_are_one_hot_on_the_view_shown_and_uniform_where_none_is():
    frames = PooledFrames(torch.zeros(4, 8), ("fetal_head", "lung", "thyroid_nodule", "organ_cls"),
                          (-1, -1, -1, ORGANS.index("kidney")))
    organ = view_targets("organ_cls", frames)
    assert organ[0].argmax() == ORGANS.index("fetal_head") and organ[0].max() == 1
    assert torch.allclose(organ[1], torch.full((len(ORGANS),), 1 / len(ORGANS)))       # a lung shows no organ of its
    assert organ[2].argmax() == ORGANS.index("thyroid") and organ[3].argmax() == ORGANS.index("kidney")
    plane = view_targets("fetal_plane_cls", frames)
    assert [PLANES[int(i)] for i in plane.argmax(dim=1)] == ["brain", "other", "other", "other"]
    assert (plane.max(dim=1).values == 1).all()


def _model():
    config = replace(resolve_config("student-s", "fetal_head,fetal_plane_cls,organ_cls"), input_size=64)
    torch.manual_seed(0)
    return build_model(config).eval(), config


def test_the_refit_learns_views_from_features_it_was_never_trained_on_and_leaves_other_heads_alone():
    """Features where each task's frames sit in their own direction: a random linear layer places few of them, the
    refit nearly all; the segmentation head and the backbone are untouched."""
    model, config = _model()
    g = torch.Generator().manual_seed(0)
    tasks = ("fetal_head", "fetal_abdomen_multi", "lung", "thyroid_nodule", "fetal_femur")
    centres = torch.randn(len(tasks), 960, generator=g) * 3
    x = torch.cat([c + torch.randn(40, 960, generator=g) for c in centres])
    frames = PooledFrames(x, tuple(t for t in tasks for _ in range(40)), (-1,) * 200)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("heads.fetal_plane_cls",
                                                                                       "heads.organ_cls"))}
    report = fit_view_heads(model, config, ViewFitConfig(epochs=200), frames=frames)
    assert set(report) == {"fetal_plane_cls", "organ_cls"}
    for r in report.values():
        assert r["placed_after"] >= 0.95 > r["placed_before"], report
    assert all(torch.equal(model.state_dict()[k], v) for k, v in frozen.items())
    organ = model.heads["organ_cls"].linear(x[80:120]).softmax(dim=1)      # the lung frames: unsure
    assert organ.max(dim=1).values.max() < 0.5


def test_phantom_frames_are_pooled_features_of_every_asked_task():
    model, config = _model()
    frames = phantom_frames(model, config, ViewFitConfig(per_task=3, batch=2), tasks=["fetal_head", "organ_cls"])
    assert frames.features.shape == (6, model.heads["organ_cls"].linear.in_features)
    assert frames.tasks == ("fetal_head",) * 3 + ("organ_cls",) * 3
    assert frames.labels[:3] == (-1, -1, -1) and all(0 <= i < len(ORGANS) for i in frames.labels[3:])


def test_a_model_without_view_classifiers_is_refused():
    from usedge.errors import ConfigError

    config = replace(resolve_config("student-s", "fetal_head"), input_size=64)
    with pytest.raises(ConfigError, match="neither view classifier"):
        fit_view_heads(build_model(config).eval(), config, frames=PooledFrames(torch.zeros(1, 960), ("lung",), (-1,)))
