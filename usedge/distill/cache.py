"""Cached teacher targets: each teacher runs ONCE per (image, geometric variant) of a fixed training set, and
distillation steps read its answers from disk instead of calling it.

On a CPU the teacher's forward dominates a distillation step (benchmarks/bench_distill_step.py measures
it); a fixed set whose teacher answers are computed once makes every later step — and every later run on the
same set (labels-only ablations, other students, other weights) — cost what a labels-only step costs.

What is cached, per entry: the student's input image (uint8 RGB at the student's size), its label, the
teacher outputs of the entry's own task (float32, exactly what the teacher returns) and, when feature
distillation is on, each teacher's dense map average-pooled to ``feature_size`` (float16). Entries are
the set's images under a fixed list of geometric **variants** (``identity``, ``hflip``) applied to image
and label together before either network sees them, so a cached answer is the teacher's live answer to that
very input. Each teacher gets the image at its OWN input size and normalisation (resized from the source,
not from the student's smaller image). Photometric augmentation may still be applied to the student's
image at training time: the target is then the teacher's answer on the clean image (the student learns to
give it on a degraded one).

A cache lives in ``<root>/<key>/`` where the key is a digest of the teachers' weights and configs, the
student's preprocessing, the variants and the source (phantom seed and size, or the stored images' bytes):
a changed teacher or data set gets a new cache, a path that moved does not. Writes are atomic (a temporary
folder renamed into place).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from usedge.data.transforms import (
    AugmentConfig,
    apply_affine,
    normalize,
    photometric,
    resize_sample,
    task_policy,
    ultrasound_artifacts,
)
from usedge.errors import ConfigError, DataError
from usedge.models.presets import ModelConfig
from usedge.tasks import TaskSpec, get_task
from usedge.train.batches import Key, key_rng, target_tensor

VARIANTS = ("identity", "hflip")
MANIFEST = "manifest.json"
FORMAT = 1


@dataclass(frozen=True)
class CacheSpec:
    """Which entries a cache holds: ``per_task`` source images per task (phantom: generated with ``seed`` at
    ``phantom_size``), each under every allowed ``variant``; ``feature_size``: side of the pooled teacher dense
    maps kept for feature distillation (0: none)."""

    per_task: int = 200
    seed: int = 0
    variants: tuple[str, ...] = VARIANTS
    phantom_size: int = 256
    feature_size: int = 32
    acquisition: str = "default"
    student_acquisition: str = ""   # "": the student sees the teacher's render; else a paired render (same anatomy)

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ConfigError(f"Unknown cache variants {unknown or '(none)'}.", fix=f"use some of: {', '.join(VARIANTS)}")
        if self.per_task < 1:
            raise ConfigError(f"A teacher cache needs at least one image per task, got {self.per_task}.",
                              fix="e.g. --cache-per-task 200")


def variant_affine(name: str, size: int) -> np.ndarray:
    """The 2×3 affine of a variant on a size×size image (pixel centres at integers: the mirror is x -> S - 1 - x,
    exactly numpy's fliplr for the image and its mask)."""
    if name == "hflip":
        return np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]])
    return np.eye(3)[:2]


def task_variants(spec: TaskSpec, variants: Sequence[str]) -> list[str]:
    """The variants a task allows (no flip where its policy forbids one)."""
    return [v for v in variants if v != "hflip" or task_policy(spec).flip]


#: (task id, RGB uint8 image at any size, label in its pixels[, the student's own render of the same anatomy])
Source = Iterable[tuple]


def phantom_source(tasks: Sequence[str], spec: CacheSpec) -> Iterator[tuple]:
    """``spec.per_task`` fixed phantom images per task (a stream no training or held-out set uses). With
    ``spec.student_acquisition`` each item also carries the student's render: the same seed, hence the same
    anatomy and label, under the student's scanner ranges (the teacher answers the image it was trained on)."""
    from usedge.data.phantom.generator import PhantomConfig, generate_sample
    from usedge.data.phantom.physics import ACQUISITIONS
    from usedge.data.transforms import to_rgb

    for name in (spec.acquisition, spec.student_acquisition):
        if name and name not in ACQUISITIONS:
            raise ConfigError(f"Unknown acquisition ranges '{name}'.", fix=f"use one of: {', '.join(ACQUISITIONS)}")
    phantom = PhantomConfig(size=spec.phantom_size, acquisition=ACQUISITIONS[spec.acquisition])
    paired = (PhantomConfig(size=spec.phantom_size, acquisition=ACQUISITIONS[spec.student_acquisition])
              if spec.student_acquisition else None)
    for task in tasks:
        for i in range(spec.per_task):
            sample = generate_sample(task, key_rng(spec.seed, (task, i, i), stream=3), phantom)
            if paired is None:
                yield task, to_rgb(sample.image), sample.label
                continue
            own = generate_sample(task, key_rng(spec.seed, (task, i, i), stream=3), paired)
            yield task, to_rgb(sample.image), sample.label, to_rgb(own.image)


def phantom_digest(tasks: Sequence[str], spec: CacheSpec) -> str:
    from usedge import __version__

    student = f">{spec.student_acquisition}" if spec.student_acquisition else ""
    return (f"phantom:{spec.phantom_size}:{spec.seed}:{spec.per_task}:{spec.acquisition}{student}:{','.join(tasks)}:"
            f"usedge-{__version__}")


def model_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_key(teacher_set, student: ModelConfig, spec: CacheSpec, source_digest: str) -> str:
    parts = {"format": FORMAT, "spec": asdict(spec), "source": source_digest,
             "student": [student.input_size, list(student.mean), list(student.std), student.resize],
             "owner": teacher_set.assignment(),
             "teachers": [[t.name, t.config.to_dict(), model_digest(t.model)] for t in teacher_set.teachers]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cache_path(teacher_set, student: ModelConfig, spec: CacheSpec, source_digest: str, root: str | Path) -> Path:
    """Where the cache of these teachers, student preprocessing, entries and source lives under ``root``."""
    return Path(root) / cache_key(teacher_set, student, spec, source_digest)


def teacher_input(image: np.ndarray, label: object, spec: TaskSpec, config: ModelConfig) -> torch.Tensor:
    """The normalised 1×3×S×S tensor a teacher with ``config`` gets for a square source image."""
    resized, _ = resize_sample(image, label, spec, config.input_size, config.resize)
    return torch.from_numpy(normalize(resized, config.mean, config.std))[None]


def entries(source: Source, student: ModelConfig, teachers: Sequence, spec: CacheSpec
            ) -> Iterator[tuple[str, np.ndarray, object, dict[str, torch.Tensor]]]:
    """Each source image under each allowed variant: (task, student RGB, student label, {teacher: input}).
    A source item with a fourth element (the student's paired render) gives the student that image, under the
    same variant; the teachers still answer the first."""
    side = max([student.input_size, *(t.config.input_size for t in teachers)])
    for task, image, label, *own in source:
        task_spec = get_task(task)
        square, square_label = resize_sample(image, label, task_spec, side, student.resize)
        own_square = resize_sample(own[0], label, task_spec, side, student.resize)[0] if own else None
        for variant in task_variants(task_spec, spec.variants):
            affine = variant_affine(variant, side)
            img, lab = apply_affine(affine, square, square_label, task_spec, side)
            rgb, y = resize_sample(img, lab, task_spec, student.input_size, student.resize)
            if own_square is not None:
                rgb = resize_sample(apply_affine(affine, own_square, square_label, task_spec, side)[0], lab, task_spec,
                                    student.input_size, student.resize)[0]
            yield task, rgb, y, {t.name: teacher_input(img, lab, task_spec, t.config) for t in teachers}


@torch.no_grad()
def teacher_answers(teacher_set, task: str, inputs: Mapping[str, torch.Tensor], feature_size: int
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The owner's outputs for ``task`` and every teacher's pooled dense map, one teacher call each."""
    from usedge.distill.teachers import FeatureTap

    outputs: dict[str, torch.Tensor] = {}
    feats: dict[str, torch.Tensor] = {}
    owner = teacher_set.owner.get(task)
    for teacher in teacher_set.teachers:
        asked = [task] if teacher is owner else []
        dense = [k for k, s in teacher.model.task_specs.items() if s.kind.value in ("segmentation", "detection")]
        if feature_size and dense and not any(k in dense for k in asked):
            asked.append(dense[0])
        if not asked:
            continue
        x = inputs[teacher.name].to(next(teacher.model.parameters()).device)
        with FeatureTap(teacher.model, enabled=feature_size > 0) as tap:
            out = teacher.model(x, tasks=asked)
        if teacher is owner:
            outputs.update({k: v.float().cpu() for k, v in out.items() if k.startswith(task + ".")})
        if tap.value is not None:
            m = tap.value.float()
            if m.shape[-1] > feature_size:
                m = F.adaptive_avg_pool2d(m, feature_size)
            feats[teacher.name] = m.half().cpu()
    return outputs, feats


def build_cache(teacher_set, source: Source, source_digest: str, student: ModelConfig, spec: CacheSpec,
                root: str | Path, progress: bool = True, batch: int = 16) -> TeacherCache:
    """The cache of ``source`` under ``root`` (built if absent; an existing one with the same key is reused)."""
    from rich.progress import Progress

    final = cache_path(teacher_set, student, spec, source_digest, root)
    if (final / MANIFEST).is_file():
        return TeacherCache(final)
    key = final.name
    tmp = final.parent / f".{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    columns: dict[str, dict[str, list[np.ndarray]]] = {}
    with Progress(disable=not progress, transient=True) as bar:
        job = bar.add_task("teacher cache", total=None)
        pending: list = []
        for entry in entries(source, student, teacher_set.teachers, spec):
            if pending and (entry[0] != pending[0][0] or len(pending) == batch):
                _answer(teacher_set, pending, spec, columns)
                bar.advance(job, len(pending))
                pending = []
            pending.append(entry)
        if pending:
            _answer(teacher_set, pending, spec, columns)
    from safetensors.numpy import save_file

    sizes = {}
    for task, cols in columns.items():
        save_file({k: np.ascontiguousarray(np.concatenate(v)) for k, v in cols.items()},
                  str(tmp / f"{task}.safetensors"))
        sizes[task] = int(sum(len(a) for a in cols["image"]))
    (tmp / MANIFEST).write_text(json.dumps({"format": FORMAT, "key": key, "spec": asdict(spec), "source": source_digest,
                                            "sizes": sizes, "owner": teacher_set.assignment(),
                                            "student_size": student.input_size}, indent=1))
    try:
        os.replace(tmp, final)
    except OSError:            # another process finished the same cache first
        shutil.rmtree(tmp, ignore_errors=True)
    return TeacherCache(final)


def _answer(teacher_set, pending: list, spec: CacheSpec, columns: dict) -> None:
    task = pending[0][0]
    inputs = {name: torch.cat([e[3][name] for e in pending]) for name in pending[0][3]}
    outputs, feats = teacher_answers(teacher_set, task, inputs, spec.feature_size)
    col = columns.setdefault(task, {})
    size = pending[0][1].shape[0]
    col.setdefault("image", []).append(np.stack([e[1] for e in pending]))
    col.setdefault("target", []).append(np.stack([target_tensor(get_task(task), e[2], size).numpy() for e in pending]))
    for k, v in outputs.items():
        col.setdefault(f"out/{k}", []).append(v.numpy())
    for name, v in feats.items():
        col.setdefault(f"feature/{name}", []).append(v.numpy())


class TeacherCache:
    """A built cache, read lazily (one memory-mapped safetensors file per task)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            raise DataError(f"{self.path} is not a teacher cache (no {MANIFEST}).",
                            fix="build one with `usedge distill --teacher-cache DIR` (it is created there).")
        self.manifest = json.loads(manifest.read_text())
        if self.manifest.get("format") != FORMAT:
            raise DataError(f"Teacher cache {self.path} has format {self.manifest.get('format')}, not {FORMAT}.",
                            fix="delete it; the next run rebuilds it.")
        self._files: dict[str, object] = {}

    def sizes(self) -> dict[str, int]:
        return dict(self.manifest["sizes"])

    def _file(self, task: str):
        if task not in self._files:
            from safetensors import safe_open

            self._files[task] = safe_open(str(self.path / f"{task}.safetensors"), framework="np")
        return self._files[task]

    def entry(self, task: str, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(student RGB uint8, target, {output name: teacher value}, {teacher: pooled dense map})."""
        f = self._file(task)
        get = lambda k: f.get_slice(k)[index:index + 1][0]  # noqa: E731
        names = list(f.keys())
        outputs = {k.removeprefix("out/"): get(k) for k in names if k.startswith("out/")}
        feats = {k.removeprefix("feature/"): get(k) for k in names if k.startswith("feature/")}
        return get("image"), get("target"), outputs, feats

    def __getstate__(self) -> dict:   # DataLoader workers re-open the files
        return {"path": self.path, "manifest": self.manifest, "_files": {}}


class CachedDataset(torch.utils.data.Dataset):
    """Mixed-batch samples from a cache: ``key -> (task, x, target, teacher)`` with ``teacher`` the cached
    outputs and pooled feature maps; ``aug`` (photometric only) jitters the student's image."""

    def __init__(self, cache: TeacherCache, config: ModelConfig, aug: AugmentConfig | None, seed: int = 0) -> None:
        if cache.manifest.get("student_size") != config.input_size:
            raise ConfigError(f"Teacher cache {cache.path} holds {cache.manifest.get('student_size')} px student "
                              f"images; this student takes {config.input_size} px.",
                              fix="use another --teacher-cache folder (or the same --input-size).")
        self.cache, self.config, self.aug, self.seed = cache, config, aug, seed

    def sizes(self) -> dict[str, int]:
        return self.cache.sizes()

    def __len__(self) -> int:
        return sum(self.sizes().values())

    def __getitem__(self, key: Key) -> tuple[str, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        task, index, _ = key
        image, target, outputs, feats = self.cache.entry(task, index)
        if self.aug is not None:
            rng = key_rng(self.seed, key, 13)
            image = photometric(rng, image, self.aug)
            if self.aug.ultrasound > 0 and rng.random() < self.aug.ultrasound:
                image = ultrasound_artifacts(rng, image)
        x = torch.from_numpy(normalize(image, self.config.mean, self.config.std))
        teacher = {k: torch.from_numpy(np.array(v)) for k, v in outputs.items()}
        teacher.update({f"feature/{k}": torch.from_numpy(np.array(v)).float() for k, v in feats.items()})
        return task, x, torch.from_numpy(np.array(target)), teacher
