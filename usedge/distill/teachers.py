"""Teachers: frozen models that give soft targets, each task answered by the teacher that owns it.

A teacher is a usedge checkpoint folder (any architecture) or an official-baseline ``.pth``. Teachers may
expect a different input size or normalisation than the student; :meth:`TeacherSet.predict` converts the
student's batch (resize + re-normalise) before calling a teacher, so one student batch serves all teachers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from usedge.errors import ConfigError
from usedge.models.presets import ModelConfig


@dataclass
class Teacher:
    name: str
    path: str
    model: torch.nn.Module
    config: ModelConfig

    @property
    def tasks(self) -> list[str]:
        return list(self.config.tasks)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load_teacher(path: str | Path, device: str = "cpu", name: str | None = None) -> Teacher:
    """Load one teacher in eval mode with gradients off (checkpoint folder or baseline ``.pth``)."""
    from usedge.models.checkpoint import load_checkpoint

    model, config, _ = load_checkpoint(path, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    return Teacher(name or teacher_name(path), str(path), model.eval(), config)


def teacher_name(path: str | Path) -> str:
    """A default teacher name that is a valid module key: ``runs/t1/best`` -> ``t1``, ``best_model.pth`` ->
    ``best_model`` (no dots: the name keys the feature adapters' ModuleDict)."""
    p = Path(path)
    stem = p.stem if p.is_file() else (p.parent.name if p.name in ("best", "last") and p.parent.name else p.name)
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem) or "teacher"


def parse_task_teachers(pairs: Sequence[str]) -> dict[str, str]:
    """``["fetal_head=b4", ...]`` -> ``{"fetal_head": "b4"}`` (CLI ``--task-teacher``)."""
    out: dict[str, str] = {}
    for pair in pairs:
        task, sep, teacher = pair.partition("=")
        if not sep or not task.strip() or not teacher.strip():
            raise ConfigError(f"--task-teacher '{pair}' is not TASK=TEACHER.", fix="e.g. --task-teacher fetal_head=t0")
        out[task.strip()] = teacher.strip()
    return out


class TeacherSet:
    """Several teachers and the map task -> the teacher that answers it.

    Args:
        teachers: the loaded teachers; names must be unique (default name: the folder name; or ``t0``, ``t1``
            ... by position, which the map may also use).
        student_tasks: the tasks the student learns.
        task_teacher: explicit owners (task id -> teacher name or position); every other task goes to the
            first teacher that has it.
    """

    def __init__(self, teachers: Sequence[Teacher], student_tasks: Sequence[str],
                 task_teacher: Mapping[str, str] | None = None) -> None:
        if not teachers:
            raise ConfigError("No teacher given.", fix="pass --teacher CKPT (a usedge checkpoint or a baseline .pth).")
        self.teachers = list(teachers)
        seen = [t.name for t in self.teachers]
        if len(set(seen)) != len(seen):
            raise ConfigError(f"Two teachers have the same name ({', '.join(seen)}).",
                              fix="give each a folder of its own name (runs/<name>/best), or use t0, t1, ... "
                                  "in --task-teacher.")
        names = {t.name: t for t in self.teachers} | {f"t{i}": t for i, t in enumerate(self.teachers)}
        self.owner: dict[str, Teacher] = {}
        for task, who in (task_teacher or {}).items():
            if who not in names:
                raise ConfigError(f"--task-teacher {task}={who}: no teacher named '{who}'.",
                                  fix=f"use one of: {', '.join(names)}")
            if task not in student_tasks:
                raise ConfigError(f"--task-teacher names task '{task}', which the student does not learn.",
                                  fix=f"student tasks: {', '.join(student_tasks)}")
            if task not in names[who].tasks:
                raise ConfigError(f"teacher '{who}' has no head for '{task}'.", fix=f"it has: {', '.join(names[who].tasks)}")
            self.owner[task] = names[who]
        for task in student_tasks:
            if task not in self.owner:
                found = next((t for t in self.teachers if task in t.tasks), None)
                if found is not None:
                    self.owner[task] = found
        if not self.owner:
            raise ConfigError(
                f"The teachers ({', '.join(t.name for t in self.teachers)}) and the student share no task.",
                fix=f"student tasks: {', '.join(student_tasks)}; teacher tasks: "
                    f"{', '.join(sorted({x for t in self.teachers for x in t.tasks}))}")

    @property
    def tasks(self) -> list[str]:
        return list(self.owner)

    def assignment(self) -> dict[str, str]:
        return {task: t.name for task, t in self.owner.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, tasks: Sequence[str], student: ModelConfig,
                features: bool = False, groups: Mapping[str, slice] | None = None,
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Soft targets for ``tasks`` on a student-normalised batch, grouped so each teacher runs once.
        With ``groups`` (task -> slice, a mixed-task batch) each head answers only its task's samples.

        Returns (named outputs, {teacher name: dense feature map}) — features only when asked and captured.
        """
        outputs: dict[str, torch.Tensor] = {}
        feats: dict[str, torch.Tensor] = {}
        by_teacher: dict[str, list[str]] = {}
        for task in tasks:
            if task in self.owner:
                by_teacher.setdefault(self.owner[task].name, []).append(task)
        for name, ts in by_teacher.items():
            teacher = next(t for t in self.teachers if t.name == name)
            x = adapt_input(images, student, teacher.config)
            with FeatureTap(teacher.model, enabled=features) as tap:
                out = (teacher.model(x, tasks=ts) if groups is None else
                       teacher.model(x, groups={t: groups[t] for t in ts}))
                outputs.update({k: v.float() for k, v in out.items()})
            if tap.value is not None:
                feats[name] = tap.value.float()
        return outputs, feats


def adapt_input(images: torch.Tensor, src: ModelConfig, dst: ModelConfig) -> torch.Tensor:
    """Re-normalise and resize a batch prepared for ``src`` into what ``dst`` expects."""
    if tuple(src.mean) != tuple(dst.mean) or tuple(src.std) != tuple(dst.std):
        s_mean, s_std = (torch.tensor(v, device=images.device).view(1, 3, 1, 1) for v in (src.mean, src.std))
        d_mean, d_std = (torch.tensor(v, device=images.device).view(1, 3, 1, 1) for v in (dst.mean, dst.std))
        images = ((images * s_std + s_mean) - d_mean) / d_std
    if images.shape[-1] != dst.input_size or images.shape[-2] != dst.input_size:
        images = F.interpolate(images, size=(dst.input_size, dst.input_size), mode="bilinear", align_corners=False)
    return images


def dense_module(model: torch.nn.Module) -> torch.nn.Module | None:
    """The module whose output is the model's fused dense (FPN) map: the student neck or the baseline decoder."""
    return getattr(model, "neck", None) or getattr(model, "fpn_decoder", None)


class FeatureTap:
    """Context manager capturing the dense FPN map of one forward pass (None if the pass skipped it)."""

    def __init__(self, model: torch.nn.Module, enabled: bool = True) -> None:
        self.module = dense_module(model) if enabled else None
        self.value: torch.Tensor | None = None
        self._handle = None

    def _hook(self, _module, _inputs, output) -> None:
        self.value = output[0] if isinstance(output, tuple) else output

    def __enter__(self) -> FeatureTap:
        if self.module is not None:
            self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
