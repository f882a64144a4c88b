"""The demo's streams: a video / DICOM cine through :class:`usedge.stream.Stream` to an overlay video + JSON
lines, and one live (webcam) stream per browser session, latest frame wins. No Gradio, no torch."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from usedge._io import reserve_names
from usedge.demo.config import VIDEO_SUFFIXES, DemoConfig
from usedge.demo.core import DemoEngine, _opacity, smoothing_config
from usedge.demo.tables import summary_rows
from usedge.demo.uploads import _checked_file
from usedge.errors import DataError


# -- videos / DICOM cines -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoAnalysis:
    video: Path                                # overlay video (.webm, plays in browsers)
    jsonl: Path                                # one JSON result per frame
    summary: list[list[Any]]                   # latency per stage + counters
    ran: str
    frames: int


def video_length(path: Path, max_decoded_mb: float = DemoConfig.max_decoded_mb) -> tuple[int | None, float | None]:
    """(frames, fps) of a video file or DICOM cine, from its header (None where unknown); a DICOM whose frames
    (or, deflated, whole data set) decode past ``max_decoded_mb`` is refused here, before the run."""
    from usedge.data.dicom import is_dicom_file, open_dicom

    if is_dicom_file(path):
        with open_dicom(path, max_decoded_mb) as series:
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
    frames, fps = video_length(path, config.max_decoded_mb)
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
    video, jsonl = reserve_names(out_dir, f"{p.stem}-{time.strftime('%Y%m%d-%H%M%S')}", (".webm", ".jsonl"))
    count = [0]

    def tick(_event: Any) -> None:
        count[0] += 1
        if progress is not None:
            progress(count[0], total)

    sinks = [VideoSink(video, fps=fps or 30.0, opacity=_opacity(opacity)), JsonlSink(jsonl), CallbackSink(tick)]
    # the predictor is shared: hold its lock per frame, so live sessions and image requests interleave with a video
    s = Stream(open_source(str(p)), _Locked(predictor, lock), tasks=chosen, mode="lossless",
               smoothing=smoothing_config(smooth), sinks=sinks, warmup=0, max_frames=engine.config.max_video_frames,
               measure=True)     # every JSON-lines record carries the frame's measurements and the tracked ones
    try:
        summary = s.run()
        if count[0] == 0:
            raise DataError(f"{p.name}: no frame could be decoded.", fix="check the file plays elsewhere; re-encode it.")
    except BaseException:
        video.unlink(missing_ok=True)
        jsonl.unlink(missing_ok=True)
        raise
    return VideoAnalysis(video, jsonl, summary_rows(summary), f"{predictor.choice.backend} {predictor.choice.precision}",
                         count[0])


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
                             smoothing=smoothing_config(smooth), sinks=[CallbackSink(self._store)], warmup=3,
                             measure=True)
        self.ran = f"{predictor.choice.backend} {predictor.choice.precision}"
        self._thread = threading.Thread(target=self._run, name="usedge-demo-live", daemon=True)
        engine.track(self)
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
        """End the source and wait for the stream: its threads are joined (Stream.close) before this returns,
        so no frame of this session is still in the predictor afterwards."""
        self.source.end()
        self._thread.join(timeout=15.0)      # Stream.close joins its own threads (up to 10 s each)
        if self._thread.is_alive():
            self.stream.stop()               # then Stream.close (on that thread) joins the capture/infer threads
            self._thread.join(timeout=15.0)


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
