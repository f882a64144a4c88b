"""The whole-network view fine-tune (usedge.distill.views): the view heads learn every image, the rest stays."""
from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from usedge.distill.views import ViewTuneConfig, phantom_batches, tune_views, view_loss  # noqa: E402
from usedge.models import build_model  # noqa: E402
from usedge.models.presets import resolve_config  # noqa: E402
from usedge.tasks import TASKS  # noqa: E402
from usedge.train.batches import MixedBatch  # noqa: E402

ORGANS = TASKS.get("organ_cls").class_names


def test_view_loss_is_least_on_the_view_shown_and_on_uniform_where_none_is():
    batch = MixedBatch(torch.zeros(2, 3, 8, 8), {"thyroid_nodule": slice(0, 1), "lung": slice(1, 2)},
                       {"thyroid_nodule": torch.zeros(1, 8, 8, dtype=torch.long), "lung": torch.zeros(1, 8, 8, dtype=torch.long)})
    right = torch.zeros(2, len(ORGANS))
    right[0, ORGANS.index("thyroid")] = 20.0                      # sure of the thyroid; unsure on the lung
    wrong = right.clone()
    wrong[1, ORGANS.index("breast")] = 20.0                       # sure of an organ a lung frame does not show
    loss = lambda logits: float(view_loss({"organ_cls.logits": logits}, batch, ("organ_cls",)))  # noqa: E731
    assert loss(right) < loss(wrong) - 5
    assert loss(right) == pytest.approx(torch.log(torch.tensor(float(len(ORGANS)))).item() / 2, abs=1e-3)


def test_a_few_steps_teach_the_view_heads_and_keep_the_other_heads_near_where_they_started():
    config = replace(resolve_config("student-s", "fetal_head,lung,organ_cls"), input_size=64)
    torch.manual_seed(0)
    model = build_model(config).eval()
    cfg = ViewTuneConfig(steps=12, batch_size=6, tasks_per_batch=3, lr=2e-3, workers=0, log_every=6)
    probe = next(phantom_batches(config, replace(cfg, seed=77)))
    with torch.no_grad():
        before = model(probe.images)
        start = float(view_loss(before, probe, ("organ_cls",)))
    logged = []
    losses = tune_views(model, config, cfg, log=logged.append)
    with torch.no_grad():
        after = model(probe.images)
    assert len(losses) == 12 and len(logged) == 2 and "step 12/12" in logged[-1]
    assert float(view_loss(after, probe, ("organ_cls",))) < start
    drift = (after["fetal_head.logits"] - before["fetal_head.logits"]).abs().mean()
    assert float(drift) < before["fetal_head.logits"].abs().mean()     # distilled towards where it started


def test_a_model_without_view_classifiers_is_refused():
    from usedge.errors import ConfigError

    config = replace(resolve_config("student-s", "fetal_head"), input_size=64)
    with pytest.raises(ConfigError, match="neither view classifier"):
        tune_views(build_model(config).eval(), config, ViewTuneConfig(steps=1), batches=iter(()))
