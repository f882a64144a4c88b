"""What the demo does, without Gradio: read an upload, run the Predictor, draw, tabulate; process a video /
DICOM cine through :class:`usedge.stream.Stream`; keep one live stream per browser session.

Everything here runs without torch (runtime + stream only) and raises :class:`usedge.errors.UsedgeError`
subclasses with a fix for bad input; ``usedge.demo.app`` turns those into messages in the page.
"""
from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from usedge.data.frames import ScanRegion
from usedge.demo.config import ALL, DemoConfig
from usedge.demo.tables import gate_html, latency_rows, measurement_html, result_rows
from usedge.demo.uploads import _checked_image
from usedge.errors import ConfigError
from usedge.measure import measure
from usedge.measure.tracker import rejected
from usedge.runtime.results import DetectionResult, FrameResult, LandmarkResult, SegmentationResult
from usedge.tasks import get_task


# -- the engine: predictors per (backend, precision) ------------------------------------------------------------
@dataclass(frozen=True)
class Analysis:
    overlay_rgb: np.ndarray
    rows: list[list[Any]]
    latency: list[list[Any]]
    ran: str                                   # "openvino int8"
    result: FrameResult
    info: str = ""
    measurements_html: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ran": self.ran, "info": self.info, "latency_ms": {r[0]: r[1] for r in self.latency},
                "result": self.result.to_json(contours=False)}


class DemoEngine:
    """The bundle, its predictors (one per backend × precision, opened on first use) and the task groups."""

    def __init__(self, config: DemoConfig = DemoConfig()) -> None:
        from usedge.assets import shipped_bundle
        from usedge.bundle import load_bundle

        self.config = config
        self.bundle = load_bundle(config.bundle or shipped_bundle())
        self.tasks: tuple[str, ...] = tuple(self.bundle.tasks)
        self._predictors: dict[tuple[str, str], Any] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        #: live sessions still running on these predictors (closed before the predictors are)
        self._sessions: weakref.WeakSet = weakref.WeakSet()

    # choices ------------------------------------------------------------------------------------------------
    def backends(self) -> list[str]:
        from usedge.backends import available_backends

        return ["auto", *available_backends()]

    def precisions(self) -> list[str]:
        return ["auto", *self.bundle.precisions]

    def groups(self) -> dict[str, list[str]]:
        """Task groups for the picker: all, by organ, by kind (labels -> task ids, in bundle order)."""
        out: dict[str, list[str]] = {ALL: list(self.tasks)}
        specs = [get_task(t) for t in self.tasks]
        for organ in sorted({s.organ for s in specs}):
            out[f"organ: {organ}"] = [s.id for s in specs if s.organ == organ]
        for kind in ("segmentation", "classification", "detection", "regression"):
            ids = [s.id for s in specs if s.kind.value == kind]
            if ids:
                out[f"kind: {kind}"] = ids
        return out

    def select(self, tasks: Sequence[str] | str | None) -> tuple[str, ...]:
        if tasks is None or tasks == "" or tasks == ALL or (not isinstance(tasks, str) and len(tasks) == 0):
            return self.tasks
        chosen = tuple(t.strip() for t in tasks.split(",")) if isinstance(tasks, str) else tuple(tasks)
        unknown = [t for t in chosen if t not in self.tasks]
        if unknown:
            raise ConfigError(f"unknown task(s) {', '.join(unknown)}.", fix=f"pick from: {', '.join(self.tasks)}")
        return chosen

    # predictors ---------------------------------------------------------------------------------------------
    def predictor(self, backend: str = "auto", precision: str = "auto"):
        import usedge

        backend, precision = backend or self.config.backend, precision or self.config.precision
        if backend not in self.backends():
            raise ConfigError(f"backend {backend!r} is not available here.", fix=f"use one of: {', '.join(self.backends())}")
        if precision not in self.precisions():
            raise ConfigError(f"precision {precision!r} is not in this bundle.",
                              fix=f"use one of: {', '.join(self.precisions())}")
        key = (backend, precision)
        with self._lock:
            if key not in self._predictors:
                options = {"threads": self.config.threads} if self.config.threads else {}
                predictor = usedge.load(self.bundle, backend=backend, precision=precision, region=self.config.region,
                                        **options)
                blank = np.zeros((predictor.spec.size, predictor.spec.size), np.uint8)
                for _ in range(2):  # warm-up: the first calls allocate; the page should show steady-state latency
                    draw_for_display(blank, predictor.predict(blank), 0.4)
                self._predictors[key] = predictor
                self._locks[key] = threading.Lock()
            return self._predictors[key], self._locks[key]

    def track(self, session: Any) -> None:
        """Register a live session (anything with ``close()``) so :meth:`close` stops it first."""
        self._sessions.add(session)

    def close(self) -> None:
        """Stop the live sessions still running, then close each predictor under its lock: a request or a
        stream thread in the middle of a frame finishes it before the session is dropped."""
        for session in list(self._sessions):
            session.close()
        with self._lock:
            for key, p in self._predictors.items():
                with self._locks[key]:
                    p.close()
            self._predictors.clear()
            self._locks.clear()

    # one frame ----------------------------------------------------------------------------------------------
    def analyze(self, image: np.ndarray, region: Any = None, tasks=None, backend: str = "auto",
                precision: str = "auto", opacity: float = 0.4, info: str = "",
                smoother: Callable[[FrameResult], FrameResult] | None = None) -> Analysis:
        """Run the chosen tasks on one BGR/grey frame; the overlay comes back RGB for display."""
        chosen = self.select(tasks)
        image = _checked_image(np.asarray(image), self.config)
        predictor, lock = self.predictor(backend, precision)
        with lock:
            result = predictor.predict(image, region=region, tasks=chosen)
        if smoother is not None:
            result = smoother(result)
        t0 = time.perf_counter()
        overlay = draw_for_display(image, result, _opacity(opacity))
        overlay_ms = (time.perf_counter() - t0) * 1e3
        mm = _mm_per_pixel(region)
        # a DICOM's calibrated scan region gives mm; an image file (or an uncalibrated region) px, and says so
        # on a frame the gate rejected every measurement is withheld, and the page says why above everything else
        result.measurements = measure(result, region if isinstance(region, ScanRegion) else None)
        if not result.accepted:
            result.measurements = rejected(result.measurements, result.gate)
        return Analysis(overlay[..., ::-1].copy(), result_rows(result, mm), latency_rows(result.timings_ms, overlay_ms),
                        f"{predictor.choice.backend} {predictor.choice.precision}", result, info,
                        gate_html(result.gate) + measurement_html(result.measurements))


#: frames smaller than this (shorter side, px) are enlarged for display so labels stay legible
DISPLAY_MIN_SIDE = 512


def scaled_result(result: FrameResult, k: int) -> FrameResult:
    """``result`` in the pixel grid of the frame enlarged ``k`` times (display only; tables keep original pixels)."""
    from dataclasses import replace

    tasks: dict[str, Any] = {}
    for name, r in result.tasks.items():
        if isinstance(r, SegmentationResult):
            tasks[name] = SegmentationResult(r.task, np.repeat(np.repeat(r.mask, k, axis=0), k, axis=1), r.class_names)
        elif isinstance(r, DetectionResult):
            tasks[name] = replace(r, box=np.asarray(r.box) * k, width=r.width * k, height=r.height * k,
                                  boxes=None if r.boxes is None else np.asarray(r.boxes) * k)
        elif isinstance(r, LandmarkResult):
            tasks[name] = replace(r, points=(np.asarray(r.points) + 0.5) * k - 0.5, width=r.width * k,
                                  height=r.height * k)
        else:
            tasks[name] = r
    return replace(result, width=result.width * k, height=result.height * k, tasks=tasks)


def draw_for_display(image: np.ndarray, result: FrameResult, opacity: float, hud: dict | None = None) -> np.ndarray:
    """The overlay (BGR), drawn on the frame enlarged by an integer factor when it is small."""
    from usedge.stream.overlay import draw

    k = max(1, -(-DISPLAY_MIN_SIDE // max(1, min(image.shape[:2]))))
    if k > 1:
        image = cv2.resize(image, (image.shape[1] * k, image.shape[0] * k), interpolation=cv2.INTER_LINEAR)
        result = scaled_result(result, k)
    return draw(image, result, opacity=opacity, hud=hud)


def _mm_per_pixel(region: Any) -> float | None:
    """Isotropic mm per pixel of a calibrated DICOM scan region (None when uncalibrated or anisotropic)."""
    x, y = getattr(region, "mm_per_pixel_x", None), getattr(region, "mm_per_pixel_y", None)
    return float(x) if x and y and abs(x - y) <= 0.01 * max(x, y) else None


def _opacity(value: float | None) -> float:
    v = 0.4 if value is None else float(value)
    if not (0.0 <= v <= 1.0):
        raise ConfigError(f"opacity must be within 0..1, got {v}.")
    return v


def smoothing_config(on: bool):
    from usedge.stream.smoothing import SmoothingConfig

    return SmoothingConfig(alpha=0.5) if on else None


def write_json(analysis: Analysis, out_dir: str | Path) -> Path:
    from usedge._io import atomic_write_text, reserve_names

    (path,) = reserve_names(out_dir, f"result-{time.strftime('%Y%m%d-%H%M%S')}", (".json",))
    return atomic_write_text(path, json.dumps(analysis.to_json(), indent=2))


__all__ = ["Analysis", "DemoEngine", "draw_for_display", "smoothing_config", "write_json"]
