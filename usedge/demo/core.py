"""What the demo does, without Gradio: read an upload, run the Predictor, draw, tabulate; process a video /
DICOM cine through :class:`usedge.stream.Stream`; keep one live stream per browser session.

Everything here runs without torch (runtime + stream only) and raises :class:`usedge.errors.UsedgeError`
subclasses with a fix for bad input; ``usedge.demo.app`` turns those into messages in the page.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from usedge.errors import ConfigError, DataError
from usedge.runtime.results import (ClassificationResult, DetectionResult, FrameResult, LandmarkResult,
                                    SegmentationResult)
from usedge.tasks import get_task

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".dcm", ".dicom")
RESULT_COLUMNS = ("task", "organ", "kind", "result", "score", "detail")
LATENCY_COLUMNS = ("stage", "ms")
ALL = "all tasks"


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo server (``usedge demo`` options)."""

    bundle: str | None = None            # None: the packaged default bundle
    backend: str = "auto"
    precision: str = "auto"
    max_upload_mb: float = 64.0
    max_video_frames: int = 900
    max_video_seconds: float = 120.0
    max_image_side: int = 4096
    live_fps: float = 10.0               # frames/s the browser sends from a webcam
    live_idle_s: float = 10.0            # a live stream with no frame for this long ends
    live_max_side: int = 640             # camera frames are downscaled to this (px) before inference
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_video_seconds", "live_fps", "live_idle_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"DemoConfig.{name} must be a positive number, got {value!r}.")
        for name in ("max_video_frames", "max_image_side", "live_max_side"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ConfigError(f"DemoConfig.{name} must be a positive integer, got {getattr(self, name)!r}.")


# -- reading uploads -------------------------------------------------------------------------------------
def _checked_file(path: str | Path | None, suffixes: Sequence[str], what: str, max_mb: float) -> Path:
    if path is None or str(path) == "":
        raise DataError(f"no {what} given.", fix=f"upload a {what} ({', '.join(suffixes)}) or pick an example.")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p.name} is not a readable file.", fix=f"upload the {what} again.")
    size_mb = p.stat().st_size / (1 << 20)
    if size_mb > max_mb:
        raise DataError(f"{p.name} is {size_mb:.1f} MB; this demo accepts at most {max_mb:g} MB.",
                        fix="upload a smaller file, or restart the demo with a larger --max-upload-mb.")
    from usedge.data.dicom import is_dicom_file

    if p.suffix.lower() not in suffixes and not is_dicom_file(p):
        raise DataError(f"{p.name}: unsupported file type {p.suffix or '(none)'} for a {what}.",
                        fix=f"use one of: {', '.join(suffixes)}.")
    return p


def read_image(path: str | Path, config: DemoConfig = DemoConfig()) -> tuple[np.ndarray, Any, str]:
    """(image as H×W grey or H×W×3 BGR, its scan region or None, a one-line description) of a PNG/JPEG/DICOM.
    A multi-frame DICOM gives its middle frame."""
    from usedge.data.dicom import is_dicom_file, open_dicom

    p = _checked_file(path, IMAGE_SUFFIXES, "image", config.max_upload_mb)
    if is_dicom_file(p):
        with open_dicom(p) as series:
            n = series.num_frames or 1
            frame = series.frame(n // 2)
        image, region = frame.image, frame.region
        info = f"{p.name}: DICOM, {n} frame(s), showing frame {frame.index}, {image.shape[1]}×{image.shape[0]}"
    else:
        from usedge._io import decode_image

        # strict (a truncated JPEG is refused, not grey-filled); the size is checked from the header first
        image = decode_image(p.read_bytes(), p.name, max_side=config.max_image_side)
        region, info = None, f"{p.name}: {image.shape[1]}×{image.shape[0]}"
    return _checked_image(image, config), region, info


def _checked_image(image: np.ndarray, config: DemoConfig) -> np.ndarray:
    if image.ndim not in (2, 3) or image.size == 0 or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise DataError(f"unsupported image shape {image.shape}.", fix="use a grey or RGB image.")
    if max(image.shape[:2]) > config.max_image_side:
        raise DataError(f"image is {image.shape[1]}×{image.shape[0]}; the demo accepts at most "
                        f"{config.max_image_side} px per side.", fix="downscale the image first.")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def fit_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` downscaled (area interpolation) so its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    k = max_side / max(h, w)
    return image if k >= 1 else cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                                           interpolation=cv2.INTER_AREA)


def rgb_to_bgr(image: np.ndarray) -> np.ndarray:
    """Gradio hands RGB arrays; usedge frames are BGR (or grey)."""
    return image[..., ::-1].copy() if image.ndim == 3 and image.shape[2] == 3 else image


# -- tables ------------------------------------------------------------------------------------------------
def _fmt_pt(p: np.ndarray) -> str:
    return f"({p[0]:.0f}, {p[1]:.0f})"


def result_rows(result: FrameResult, mm_per_px: float | None = None) -> list[list[Any]]:
    """One row per task: task, organ, kind, result, score, detail (see :data:`RESULT_COLUMNS`)."""
    rows = []
    for name, r in result.tasks.items():
        spec = get_task(name)
        kind = spec.kind.value
        if isinstance(r, ClassificationResult):
            top = np.argsort(r.probs)[::-1][:3]
            rows.append([name, spec.organ, kind, r.label, round(r.score, 3),
                         "top-3: " + ", ".join(f"{r.class_names[i]} {r.probs[i]:.2f}" for i in top)])
        elif isinstance(r, DetectionResult):
            x0, y0, x1, y1 = (float(v) for v in r.box)
            rows.append([name, spec.organ, kind, f"box ({x0:.0f}, {y0:.0f}) – ({x1:.0f}, {y1:.0f})",
                         round(float(r.score), 3), f"{x1 - x0:.0f}×{y1 - y0:.0f} px"])
        elif isinstance(r, LandmarkResult):
            pts = "; ".join(f"{n} {_fmt_pt(p)}" for n, p in zip(r.point_names, r.points))
            rows.append([name, spec.organ, kind, f"{len(r.points)} landmarks", None, pts])
        elif isinstance(r, SegmentationResult):
            areas = {k: v for k, v in r.areas.items() if v > 0}
            unit = (lambda a: f"{a * mm_per_px ** 2:.0f} mm²") if mm_per_px else (lambda a: f"{a} px")
            detail = ", ".join(f"{k} {unit(v)}" for k, v in areas.items()) or "nothing found"
            rows.append([name, spec.organ, kind, f"{len(areas)} structure(s)", None, detail])
    return rows


def latency_rows(timings_ms: dict[str, float], overlay_ms: float | None = None) -> list[list[Any]]:
    rows = [[k, round(float(timings_ms[k]), 2)] for k in ("preprocess", "infer", "postprocess") if k in timings_ms]
    if overlay_ms is not None:
        rows.append(["overlay", round(overlay_ms, 2)])
    total = sum(r[1] for r in rows)
    rows.append(["total", round(total, 2)])
    rows.append(["fps (1 / total)", round(1e3 / total, 1) if total > 0 else None])
    return rows


# -- the engine: predictors per (backend, precision) ------------------------------------------------------------
@dataclass(frozen=True)
class Analysis:
    overlay_rgb: np.ndarray
    rows: list[list[Any]]
    latency: list[list[Any]]
    ran: str                                   # "openvino int8"
    result: FrameResult
    info: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ran": self.ran, "info": self.info, "latency_ms": {r[0]: r[1] for r in self.latency},
                "result": self.result.to_json(contours=False)}


class DemoEngine:
    """The bundle, its predictors (one per backend × precision, opened on first use) and the task groups."""

    def __init__(self, config: DemoConfig = DemoConfig()) -> None:
        from usedge.bundle import load_bundle
        from usedge.export.defaults import shipped_bundle

        self.config = config
        self.bundle = load_bundle(config.bundle or shipped_bundle())
        self.tasks: tuple[str, ...] = tuple(self.bundle.tasks)
        self._predictors: dict[tuple[str, str], Any] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    # choices ------------------------------------------------------------------------------------------------
    def backends(self) -> list[str]:
        from usedge.runtime.backends import available_backends

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
                predictor = usedge.load(self.bundle, backend=backend, precision=precision, **options)
                blank = np.zeros((predictor.spec.size, predictor.spec.size), np.uint8)
                for _ in range(2):  # warm-up: the first calls allocate; the page should show steady-state latency
                    draw_for_display(blank, predictor.predict(blank), 0.4)
                self._predictors[key] = predictor
                self._locks[key] = threading.Lock()
            return self._predictors[key], self._locks[key]

    def close(self) -> None:
        with self._lock:
            for p in self._predictors.values():
                p.close()
            self._predictors.clear()

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
        return Analysis(overlay[..., ::-1].copy(), result_rows(result, mm), latency_rows(result.timings_ms, overlay_ms),
                        f"{predictor.choice.backend} {predictor.choice.precision}", result, info)


#: frames smaller than this (shorter side, px) are enlarged for display so labels stay legible
DISPLAY_MIN_SIDE = 512


def scaled_result(result: FrameResult, k: int) -> FrameResult:
    """``result`` in the pixel grid of the frame enlarged ``k`` times (display only; tables keep original pixels)."""
    from dataclasses import replace

    tasks: dict[str, Any] = {}
    for name, r in result.tasks.items():
        if isinstance(r, SegmentationResult):
            tasks[name] = replace(r, mask=np.repeat(np.repeat(r.mask, k, axis=0), k, axis=1))
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


# -- videos / DICOM cines -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoAnalysis:
    video: Path                                # overlay video (.webm, plays in browsers)
    jsonl: Path                                # one JSON result per frame
    summary: list[list[Any]]                   # latency per stage + counters
    ran: str
    frames: int


def video_length(path: Path) -> tuple[int | None, float | None]:
    """(frames, fps) of a video file or DICOM cine, from its header (None where unknown)."""
    from usedge.data.dicom import is_dicom_file, open_dicom

    if is_dicom_file(path):
        with open_dicom(path) as series:
            return series.num_frames, series.fps
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"{path.name} could not be opened as a video.", fix="upload an MP4/AVI/WebM video or a DICOM cine.")
        n, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS))
        return (n if n > 0 else None), (fps if fps > 0 else None)
    finally:
        cap.release()


def check_video_length(path: Path, config: DemoConfig) -> tuple[int | None, float | None]:
    frames, fps = video_length(path)
    if frames is not None and frames > config.max_video_frames:
        raise DataError(f"{path.name} has {frames} frames; this demo processes at most {config.max_video_frames}.",
                        fix="trim the clip, or restart the demo with a larger --max-video-frames.")
    if frames is not None and fps and frames / fps > config.max_video_seconds:
        raise DataError(f"{path.name} lasts {frames / fps:.0f} s; this demo processes at most "
                        f"{config.max_video_seconds:g} s.", fix="trim the clip, or raise --max-video-seconds.")
    return frames, fps


def analyze_video(engine: DemoEngine, path: str | Path | None, out_dir: str | Path, tasks=None,
                  backend: str = "auto", precision: str = "auto", opacity: float = 0.4, smooth: bool = False,
                  progress: Callable[[int, int | None], None] | None = None) -> VideoAnalysis:
    """Every frame of a video / DICOM cine, in order (lossless), into an overlay .webm and a JSON-lines file."""
    from usedge.stream import CallbackSink, JsonlSink, Stream, VideoSink, open_source

    p = _checked_file(path, VIDEO_SUFFIXES, "video or DICOM cine", engine.config.max_upload_mb)
    total, fps = check_video_length(p, engine.config)
    chosen = engine.select(tasks)
    predictor, lock = engine.predictor(backend, precision)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{p.stem}-{time.strftime('%H%M%S')}-{threading.get_ident() % 10000}"
    video, jsonl = out / f"{stem}.webm", out / f"{stem}.jsonl"
    count = [0]

    def tick(_event: Any) -> None:
        count[0] += 1
        if progress is not None:
            progress(count[0], total)

    sinks = [VideoSink(video, fps=fps or 30.0, opacity=_opacity(opacity)), JsonlSink(jsonl), CallbackSink(tick)]
    # the predictor is shared: hold its lock per frame, so live sessions and image requests interleave with a video
    s = Stream(open_source(str(p)), _Locked(predictor, lock), tasks=chosen, mode="lossless",
               smoothing=smoothing_config(smooth), sinks=sinks, warmup=0, max_frames=engine.config.max_video_frames)
    summary = s.run()
    if count[0] == 0:
        raise DataError(f"{p.name}: no frame could be decoded.", fix="check the file plays elsewhere; re-encode it.")
    return VideoAnalysis(video, jsonl, summary_rows(summary), f"{predictor.choice.backend} {predictor.choice.precision}",
                         count[0])


def summary_rows(summary: dict) -> list[list[Any]]:
    """Tracker summary -> rows of (what, p50 ms, p99 ms / value)."""
    rows = [[stage, round(v["p50"], 2), round(v["p99"], 2)] for stage, v in summary.get("latency_ms", {}).items()]
    for key in ("frames_in", "frames_out", "dropped", "errors", "fps_out"):
        if summary.get(key) is not None:
            rows.append([key, summary[key], None])
    return rows


# -- live (webcam / capture device) ---------------------------------------------------------------------------
class LiveSession:
    """One browser's live stream: frames pushed by the page go through :class:`usedge.stream.Stream` in live mode
    (latest frame wins: a slow model skips frames instead of lagging); each push returns the newest result."""

    def __init__(self, engine: DemoEngine, tasks=None, backend: str = "auto", precision: str = "auto",
                 smooth: bool = False) -> None:
        from usedge.stream import CallbackSink, PushSource, Stream

        self.key = (engine.select(tasks), backend, precision, bool(smooth))
        predictor, self._predict_lock = engine.predictor(backend, precision)
        self.source = PushSource("webcam", idle_timeout_s=engine.config.live_idle_s)
        self._latest: Any = None
        self._cond = threading.Condition()
        self.stream = Stream(self.source, _Locked(predictor, self._predict_lock), tasks=self.key[0], mode="live",
                             smoothing=smoothing_config(smooth), sinks=[CallbackSink(self._store)], warmup=3)
        self.ran = f"{predictor.choice.backend} {predictor.choice.precision}"
        self._thread = threading.Thread(target=self._run, name="usedge-demo-live", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.stream.run()
        except Exception:  # noqa: BLE001 - the page sees `alive` turn False and starts a new session
            pass

    def _store(self, event: Any) -> None:
        with self._cond:
            self._latest = event
            self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.source.ended

    def push(self, image_bgr: np.ndarray, wait_s: float = 0.5) -> Any:
        """Offer a frame; return the newest result event (waits up to ``wait_s`` for the first one)."""
        self.source.push(image_bgr)
        with self._cond:
            if self._latest is None:
                self._cond.wait_for(lambda: self._latest is not None, timeout=wait_s)
            return self._latest

    def stats(self) -> list[list[Any]]:
        return summary_rows(self.stream.tracker.summary())

    def close(self) -> None:
        self.source.end()
        self._thread.join(timeout=5.0)


class _Locked:
    """A Predictor shared with other sessions: calls are serialised by its lock."""

    def __init__(self, predictor: Any, lock: threading.Lock) -> None:
        self._p, self._lock = predictor, lock
        self.tasks, self.model_tasks = predictor.tasks, predictor.model_tasks

    def select(self, tasks):
        return self._p.select(tasks)

    def __call__(self, frame, region=None, tasks=None):
        with self._lock:
            return self._p(frame, region=region, tasks=tasks)

    def __repr__(self) -> str:
        return repr(self._p)


def write_json(analysis: Analysis, out_dir: str | Path) -> Path:
    from usedge._io import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out / f"result-{time.strftime('%H%M%S')}-{threading.get_ident() % 10000}.json",
                             json.dumps(analysis.to_json(), indent=2))


__all__ = ["ALL", "Analysis", "DemoConfig", "DemoEngine", "LATENCY_COLUMNS", "LiveSession", "RESULT_COLUMNS",
           "VideoAnalysis", "analyze_video", "latency_rows", "read_image", "result_rows", "rgb_to_bgr",
           "summary_rows"]
