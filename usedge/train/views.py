"""Teach the view classifiers every task's frames: refit the linear layers of ``fetal_plane_cls`` and ``organ_cls``
on pooled features of phantom frames of all 27 tasks, labelled by what the phantom drew
(usedge.data.phantom.views), the backbone frozen.

Why: a measurement is withheld when its view classifier says the frame shows a rival view (usedge.measure.views),
so the check is only as good as the classifier on the measured tasks' frames. Trained only on its own task's
images, each saw one sixth of its batch slot per class: the packaged default called 10–14 % of the phantom's
abdomen sections "brain" (AC withheld 14 %) and gave frames it was never taught (ovary, intrapartum, lung) any
label (docs/measure.md). With the backbone frozen the refit is a convex problem on cached features, seconds on a
CPU, and every other head and the frame gate's features are unchanged.

- Frames: fresh augmented phantom images (:class:`~usedge.train.batches.PhantomStream`, a seed of their own),
  ``per_task`` of each task.
- Targets: the view class (:func:`usedge.data.phantom.views.view_label`); "none of its classes" is a uniform
  target, so the classifier learns to be unsure there (``organ_cls`` on a lung).
- Loss: cross-entropy, each class's frames weighted equally (the view task's own frames ``own_weight`` times
  more), AdamW full-batch from the trained weights.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from usedge.data.phantom.views import VIEW_TASKS, view_label
from usedge.data.transforms import AugmentConfig
from usedge.errors import ConfigError
from usedge.models.heads import ClassificationHead
from usedge.models.presets import ModelConfig
from usedge.tasks import ALL_TASKS, TaskKind, get_task


@dataclass(frozen=True)
class ViewFitConfig:
    per_task: int = 2000              # phantom frames of each task (600: fits vary by ±3–5 points on 100 tune frames)
    seed: int = 9002                  # the frames' seed (PhantomStream's stream: never a stored set's)
    own_weight: float = 3.0           # the view task's own frames count this many times more
    epochs: int = 1000
    lr: float = 1e-2
    weight_decay: float = 1e-4
    batch: int = 128                  # images per feature pass


@dataclass(frozen=True)
class PooledFrames:
    """The classification heads' input (the stride-32 feature, mean-pooled) of phantom frames, with their task
    and their own label (classification tasks; -1 for the others)."""

    features: torch.Tensor
    tasks: tuple[str, ...]
    labels: tuple[int, ...]


def pooled_features(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """What every :class:`~usedge.models.heads.ClassificationHead` reads: the stride-32 map, mean-pooled."""
    with torch.no_grad():
        f, _ = model.features(images, dense=False)
        return f.top.float().mean(dim=(2, 3))


def phantom_frames(model: torch.nn.Module, config: ModelConfig, cfg: ViewFitConfig = ViewFitConfig(),
                   tasks: Sequence[str] | None = None, progress: Callable[[str], None] | None = None) -> PooledFrames:
    """``cfg.per_task`` augmented phantom frames of each task, through the frozen backbone."""
    from usedge.train.batches import TASK_NUMBER, PhantomStream

    ids = [get_task(t).id for t in (tasks or [t.id for t in ALL_TASKS])]
    stream = PhantomStream(ids, config, AugmentConfig(), seed=cfg.seed)
    feats, names, labels = [], [], []
    t0 = time.perf_counter()
    model.eval()
    for task in ids:
        for start in range(0, cfg.per_task, cfg.batch):
            items = [stream[(task, i, TASK_NUMBER[task] * 1_000_000 + i)]
                     for i in range(start, min(cfg.per_task, start + cfg.batch))]
            feats.append(pooled_features(model, torch.stack([x for _, x, _ in items])))
            classify = get_task(task).kind is TaskKind.CLASSIFICATION
            labels += [int(y) if classify else -1 for _, _, y in items]
            names += [task] * len(items)
        if progress:
            progress(f"{task}: {cfg.per_task} frames ({time.perf_counter() - t0:.0f} s)")
    return PooledFrames(torch.cat(feats), tuple(names), tuple(labels))


def soft_targets(view_task: str, tasks: Sequence[str], labels: Sequence[int]) -> torch.Tensor:
    """Soft targets (N × classes) of frames by task (and own label): one-hot on the class each shows, uniform
    where it shows none."""
    names = get_task(view_task).class_names
    k = len(names)
    out = torch.full((len(tasks), k), 1.0 / k)
    for i, (task, label) in enumerate(zip(tasks, labels)):
        shown = view_label(view_task, task, label)
        if shown is not None:
            out[i] = F.one_hot(torch.tensor(names.index(shown)), k).float()
    return out


def view_targets(view_task: str, frames: PooledFrames) -> torch.Tensor:
    """:func:`soft_targets` of pooled phantom frames."""
    return soft_targets(view_task, frames.tasks, frames.labels)


def batch_view_targets(view_task: str, groups: dict[str, slice], targets: dict[str, torch.Tensor],
                       n: int) -> torch.Tensor:
    """:func:`soft_targets` of a mixed-task batch (:class:`~usedge.train.batches.MixedBatch`'s ``groups`` and
    ``targets``): every image by its task, the two view tasks' images by their own label."""
    tasks, labels = [""] * n, [-1] * n
    for task, sl in groups.items():
        own = targets.get(task)
        classify = get_task(task).kind is TaskKind.CLASSIFICATION and own is not None
        for j, i in enumerate(range(*sl.indices(n))):
            tasks[i], labels[i] = task, int(own[j]) if classify else -1
    return soft_targets(view_task, tasks, labels)


def _weights(view_task: str, frames: PooledFrames, target: torch.Tensor, own_weight: float) -> torch.Tensor:
    """Each class (and "none") carries the same total weight; the view task's own frames ``own_weight`` more."""
    key = torch.where(target.max(dim=1).values < 1, target.shape[1], target.argmax(dim=1))
    count = torch.bincount(key, minlength=target.shape[1] + 1).float()
    w = 1.0 / count[key]
    own = torch.tensor([t == view_task for t in frames.tasks])
    return w * torch.where(own, own_weight, 1.0)


def fit_linear(linear: torch.nn.Linear, x: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
               cfg: ViewFitConfig) -> float:
    """Refit ``linear`` in place (soft-target cross-entropy, full batch, from its weights); the final loss."""
    torch.manual_seed(0)
    opt = torch.optim.AdamW(linear.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weight = weight / weight.sum()
    loss = torch.tensor(0.0)
    for _ in range(cfg.epochs):
        opt.zero_grad()
        loss = -(weight * (target * linear(x).log_softmax(dim=1)).sum(dim=1)).sum()
        loss.backward()
        opt.step()
    return float(loss.detach())


def fit_view_heads(model: torch.nn.Module, config: ModelConfig, cfg: ViewFitConfig = ViewFitConfig(),
                   frames: PooledFrames | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, dict[str, float]]:
    """Refit the linear layer of each view classifier the model has, in place; per view task, its loss and the
    share of the fitting frames it places on their view before and after."""
    present = [t for t in VIEW_TASKS if t in getattr(model, "heads", {})]
    if not present:
        raise ConfigError("This model has neither view classifier (fetal_plane_cls, organ_cls).",
                          fix="fit views on a model trained with those tasks")
    frames = frames if frames is not None else phantom_frames(model, config, cfg, progress=progress)
    report = {}
    for task in present:
        head = model.heads[task]
        if not isinstance(head, ClassificationHead):
            raise ConfigError(f"{task}'s head is a {type(head).__name__}, not a linear classification head.",
                              fix="fit views on a usedge multi-task student")
        target = view_targets(task, frames)
        before = _placed(head.linear, frames.features, target)
        loss = fit_linear(head.linear, frames.features, target, _weights(task, frames, target, cfg.own_weight), cfg)
        report[task] = {"loss": round(loss, 4), "placed_before": before,
                        "placed_after": _placed(head.linear, frames.features, target)}
    return report


def _placed(linear: torch.nn.Linear, x: torch.Tensor, target: torch.Tensor) -> float:
    """Share of the frames that show a class whose argmax is that class."""
    shown = target.max(dim=1).values == 1
    with torch.no_grad():
        hit = linear(x[shown]).argmax(dim=1) == target[shown].argmax(dim=1)
    return round(float(hit.float().mean()) if len(hit) else float("nan"), 4)


__all__ = ["PooledFrames", "ViewFitConfig", "batch_view_targets", "fit_linear", "fit_view_heads", "phantom_frames",
           "pooled_features", "soft_targets", "view_targets"]
