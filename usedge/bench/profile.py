"""Where the Predictor's time goes, behind ``usedge bench --profile``: preprocess / infer / postprocess of one
frame at batch 1, per backend × precision.

``predict()``, ``predict()`` + reading every mask, and the bare backend call on the same preprocessed input are
timed call by call in turn (``timed_interleaved``: this VM's speed drifts, so their ratio must come from the same
moments). Each predict() call's own stage timings (``FrameResult.timings_ms``:
validate + crop + resize + normalise; the backend call; decoding every task to frame pixels) are kept and
summarised by their medians, so the split is the Predictor's real one, not a re-implementation of it. Two frames: a model-sized
grey frame, and a 640×480 BGR screen grab whose 512×400 scan region is cropped and decoded back to frame pixels.
"""
from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usedge._timing import timed_interleaved
from usedge.bench.harness import (
    _check_counts,
    _error_status,
    machine_info,
    open_predictor,
    parse_backends,
    parse_precisions,
    precisions_for,
    skip_reason,
)
from usedge.bench.rows import OK, Result, Row

STAGES = ("preprocess", "infer", "postprocess")
SCREEN_REGION = (64, 40, 576, 440)  # x0, y0, x1, y1 of the scan region inside a 640×480 grab


@dataclass(frozen=True)
class ProfileRow(Row):
    backend: str
    precision: str
    frame: str
    tasks: int | None = None
    preprocess_ms: float | None = None
    infer_ms: float | None = None
    postprocess_ms: float | None = None
    stages_ms: float | None = None
    predictor_p50_ms: float | None = None
    with_masks_p50_ms: float | None = None
    bare_p50_ms: float | None = None
    status: str = OK
    #: the one task asked for, on the rows that ask for one (the Predictor still runs the model once)
    task: str = ""

    def extras(self) -> dict[str, float | None]:
        return {f"{s}_share": self.share(s) for s in STAGES}

    def share(self, stage: str) -> float | None:
        """``stage``'s median as a fraction of the sum of the three stage medians."""
        parts = [getattr(self, f"{s}_ms") for s in STAGES]
        if any(p is None for p in parts) or sum(parts) <= 0:
            return None
        return getattr(self, f"{stage}_ms") / sum(parts)


@dataclass(frozen=True)
class ProfileResult(Result):
    bundle: str
    rows: tuple[ProfileRow, ...]
    machine: dict[str, object]
    command: str
    settings: dict[str, object] = field(default_factory=dict)
    row_type = ProfileRow


def profile_frames(size: int) -> dict[str, tuple[np.ndarray, tuple[int, int, int, int] | None]]:
    """{label: (frame, scan region or None)}: a model-sized grey frame and a 640×480 BGR grab with a region."""
    rng = np.random.default_rng(0)
    return {f"{size}² grey": (rng.integers(0, 255, (size, size), np.uint8), None),
            "640×480 BGR, 512×400 region": (rng.integers(0, 255, (480, 640, 3), np.uint8), SCREEN_REGION)}


def profile_predictor(predictor, frame: np.ndarray, region=None, tasks: Sequence[str] | None = None,
                      runs: int = 100, warmup: int = 10) -> dict[str, float]:
    """Medians (ms) of the Predictor's stages over ``runs`` calls, its wall time, and the bare backend call."""
    from usedge.data.preprocess import preprocess

    recorded: list[dict[str, float]] = []

    def call() -> None:
        recorded.append(predictor.predict(frame, region=region, tasks=tasks).timings_ms)

    def call_and_read_masks() -> None:
        predictor.predict(frame, region=region, tasks=tasks).decode_all()

    crop = frame if region is None else frame[region[1]:region[3], region[0]:region[2]]
    x = preprocess(crop, predictor.spec)[None]
    # interleaved call by call: this VM's speed drifts by 2× within seconds, so separate loops gave ratios
    # from different moments (the bare loop once ran at 4.6 ms, the Predictor's a second later at 2.5 ms)
    times = timed_interleaved({"predict": call, "with_masks": call_and_read_masks,
                               "bare": lambda: predictor.backend.infer(x)}, runs, warmup)
    wall, with_masks, bare = times["predict"], times["with_masks"], times["bare"]
    kept = recorded[warmup:]                  # the timed predict() calls' own stage timings
    out = {f"{s}_ms": float(np.median([t[s] for t in kept])) for s in STAGES}
    out["stages_ms"] = float(np.median([t["total"] for t in kept]))
    out["predictor_p50_ms"] = float(np.median(wall))
    out["with_masks_p50_ms"] = float(np.median(with_masks))
    out["bare_p50_ms"] = float(np.median(bare))
    return out


def _profile_pair(bundle, backend: str, precision: str, threads: int | None, runs: int, warmup: int,
                  tasks: Sequence[str] | None) -> list[ProfileRow]:
    labels = list(profile_frames(bundle.preprocess.size))
    reason = skip_reason(bundle, backend, precision)
    if reason:
        return [ProfileRow(backend, precision, label, status=reason) for label in labels]
    try:
        predictor = open_predictor(bundle, backend, precision, threads)
    except Exception as exc:  # noqa: BLE001 - any failure becomes the row's status
        return [ProfileRow(backend, precision, label, status=_error_status(exc)) for label in labels]
    rows = []
    try:
        selections = [tasks] + ([[one]] if tasks is None and (one := _one_task(predictor)) else [])
        for label, (frame, region) in profile_frames(predictor.spec.size).items():
            for chosen in selections:
                n, name = len(predictor.select(chosen)), chosen[0] if chosen and len(chosen) == 1 else ""
                try:
                    rows.append(ProfileRow(backend, precision, label, n, task=name,
                                           **profile_predictor(predictor, frame, region, chosen, runs, warmup)))
                except Exception as exc:  # noqa: BLE001
                    rows.append(ProfileRow(backend, precision, label, n, status=_error_status(exc), task=name))
    finally:
        predictor.close()
    return rows


def _one_task(predictor) -> str | None:
    """The task of the one-task rows: the model's first segmentation task (the costliest to decode), else its
    first task."""
    from usedge.tasks import TaskKind, get_task

    tasks = predictor.model_tasks
    segs = [t for t in tasks if get_task(t).kind is TaskKind.SEGMENTATION]
    return (segs or list(tasks) or [None])[0]


def run_profile(bundle, backends: str | Sequence[str] = "all", precisions: str | Sequence[str] = "all",
                threads: int | None = None, runs: int = 100, warmup: int = 10, tasks: Sequence[str] | None = None,
                command: str | None = None, progress: Callable[[ProfileRow], None] | None = None) -> ProfileResult:
    """The pre / infer / post split of the Predictor on each (backend, precision), batch 1, two frames; with
    ``tasks=None``, for all tasks and for one (the first segmentation task)."""
    from usedge.bundle import Bundle, load_bundle

    _check_counts(runs, warmup, 1)
    names = parse_backends(backends)
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    rows: list[ProfileRow] = []
    for backend in names:
        for precision in precisions_for(backend, precisions):
            for row in _profile_pair(b, backend, precision, threads, runs, warmup, tasks):
                rows.append(row)
                if progress:
                    progress(row)
    settings = {"backends": names, "precisions": "all" if precisions == "all" else parse_precisions(precisions),
                "threads": threads, "runs": runs, "warmup": warmup, "batch": 1,
                "tasks": "all" if tasks is None else list(tasks)}
    return ProfileResult(str(b.path), tuple(rows), machine_info(), command or shlex.join(sys.argv), settings)


def _f(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f} %"


def _ratio(a: float | None, b: float | None) -> str:
    return "" if a is None or not b else f"{a / b:.2f}×"


def profile_markdown(result: ProfileResult) -> str:
    head = ["backend", "precision", "frame", "tasks", "pre ms", "infer ms", "post ms", "pre", "infer", "post",
            "stages ms", "Predictor p50 ms", "+ masks read p50 ms", "bare infer p50 ms", "Predictor / bare",
            "with masks / bare", "status"]
    lines = [f"# usedge bench --profile: {result.bundle}", "", f"`{result.command}`", "",
             *[f"- {k}: {v}" for k, v in result.machine.items()],
             f"- settings: {', '.join(f'{k}={v}' for k, v in result.settings.items())}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result.rows:
        tasks = "" if r.tasks is None else f"{r.tasks}" + (f" ({r.task})" if r.task else "")
        cells = [r.backend, r.precision, r.frame, tasks, _f(r.preprocess_ms), _f(r.infer_ms), _f(r.postprocess_ms),
                 *[_pct(r.share(s)) for s in STAGES], _f(r.stages_ms),
                 _f(r.predictor_p50_ms), _f(r.with_masks_p50_ms), _f(r.bare_p50_ms),
                 _ratio(r.predictor_p50_ms, r.bare_p50_ms), _ratio(r.with_masks_p50_ms, r.bare_p50_ms),
                 r.status.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "pre / infer / post: medians of the Predictor's own stage timings over the timed calls (batch 1); "
              "shares are of their sum. Stages ms: median of the three together per call; Predictor p50: wall time "
              "of predict() (adds task selection and result objects; segmentation masks decode on first read); "
              "+ masks read: predict() and reading every result's mask; bare infer: the backend call alone."]
    return "\n".join(lines) + "\n"


def write_profile_reports(result: ProfileResult, out: str | Path) -> dict[str, Path]:
    """profile.md and profile.json in ``out``, atomically."""
    from usedge.bench.report import write_outputs

    return write_outputs(out, {"profile_md": ("profile.md", profile_markdown(result)),
                               "profile_json": ("profile.json", result.to_dict())})


__all__ = ["ProfileResult", "ProfileRow", "STAGES", "profile_frames", "profile_markdown", "profile_predictor",
           "run_profile", "write_profile_reports"]
