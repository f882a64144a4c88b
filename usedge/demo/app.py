"""The Gradio page of ``usedge demo``: Image, Video / cine and Live tabs over one set of controls.

Named API endpoints (``gradio_client.Client(url).predict(..., api_name=...)``):

* ``/analyze_image`` (file, tasks, backend, precision, opacity) -> overlay, results table, latency table, status, JSON
* ``/analyze_video`` (file, tasks, backend, precision, opacity, smoothing) -> overlay video, JSON-lines, summary, status
* ``/live_frame`` (RGB frame, tasks, backend, precision, opacity, smoothing) -> overlay, results, latency, status
* ``/tasks`` (group) -> the task ids of a picker group ("all tasks", "organ: fetus", "kind: detection", ...)

``tasks`` is a list of task ids (empty: all). Bad input becomes a message in the page (``gr.Error``), never a
stack trace; the server keeps serving.
"""
from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from usedge.demo.config import ALL, LATENCY_COLUMNS, RESULT_COLUMNS, DemoConfig
from usedge.demo.core import DemoEngine, write_json
from usedge.demo.examples import Examples, ensure_examples
from usedge.demo.sessions import LiveSession, analyze_video
from usedge.demo.uploads import fit_side, read_image, rgb_to_bgr
from usedge.errors import UsedgeError, require

log = logging.getLogger(__name__)

TITLE = "usedge: multi-task ultrasound at the point of care"
SUMMARY_COLUMNS = ("stage / counter", "p50 ms / value", "p99 ms")
CSS = """
#usedge-header h1 {margin-bottom: 0}
.usedge-measurements td, .usedge-measurements th {padding: 2px 8px; text-align: left}
.usedge-withheld td {color: #888; font-style: italic}
#usedge-status {min-height: 2.2em}
footer {display: none !important}
"""


def _message(exc: BaseException) -> str:
    if isinstance(exc, UsedgeError):
        return f"{exc.args[0].splitlines()[0] if exc.args else exc} — Fix: {exc.fix}" if exc.fix else str(exc)
    return f"Could not process this input ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})."


def user_errors(fn: Callable) -> Callable:
    """Turn any exception of a handler into a gr.Error (shown in the page); log unexpected ones in full."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except UsedgeError as exc:
            raise gr.Error(_message(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - the page gets one line, the log the traceback
            log.exception("demo: %s failed", fn.__name__)
            raise gr.Error(_message(exc), print_exception=False) from None

    return wrapped


class DemoHandlers:
    """The page's callbacks, bound to one engine; plain methods so tests can call them without a browser."""

    def __init__(self, engine: DemoEngine, out_dir: Path, keep_s: float = 3600.0) -> None:
        self.engine = engine
        self.out = out_dir
        self.keep_s = keep_s

    def prune(self) -> int:
        """Delete result files older than ``keep_s`` (a demo left running must not fill the disk)."""
        import time

        cutoff, removed = time.time() - self.keep_s, 0
        for f in self.out.glob("*") if self.out.is_dir() else ():
            try:
                if f.is_file() and f.stat().st_mtime < cutoff:
                    f.unlink()
                    removed += 1
            except OSError:  # another request removed it first
                pass
        return removed

    def tasks(self, group: str) -> list[str]:
        """The tasks of a picker group ([] for "all tasks": an empty selection means all)."""
        groups = self.engine.groups()
        if group not in groups:
            from usedge.errors import ConfigError

            raise ConfigError(f"unknown task group {group!r}.", fix=f"use one of: {', '.join(groups)}")
        return [] if group == ALL else groups[group]

    def analyze_image(self, file: str | None, tasks: list[str] | None, backend: str, precision: str,
                      opacity: float) -> tuple:
        self.prune()
        image, region, info = read_image(file, self.engine.config)
        a = self.engine.analyze(image, region, tasks or None, backend, precision, opacity, info=info)
        status = f"**{a.ran}** · {len(a.rows)} task(s) · {info} · {a.latency[-2][1]:.1f} ms"
        return a.overlay_rgb, a.rows, a.latency, status, str(write_json(a, self.out)), a.measurements_html

    def analyze_video(self, file: str | None, tasks: list[str] | None, backend: str, precision: str,
                      opacity: float, smooth: bool, progress: Callable | None = None) -> tuple:
        def tick(done: int, total: int | None) -> None:
            if progress is not None:
                progress((done, total) if total else done / (done + 1), desc="frames", unit="frames")

        self.prune()
        v = analyze_video(self.engine, file, self.out, tasks or None, backend, precision, opacity, bool(smooth), tick)
        status = f"**{v.ran}** · {v.frames} frames · overlay video and JSON-lines ready"
        return str(v.video), str(v.jsonl), v.summary, status

    def live_frame(self, frame, tasks: list[str] | None, backend: str, precision: str, opacity: float,
                   smooth: bool, session: LiveSession | None = None) -> tuple:
        import numpy as np

        from usedge.errors import DataError

        if frame is None:
            raise DataError("no frame received from the camera.", fix="allow camera access in the browser.")
        frame = np.asarray(frame)
        if frame.ndim not in (2, 3) or frame.size == 0 or min(frame.shape[:2]) < 2 or (
                frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
            # an empty or 1-D frame raised an IndexError deep in the colour conversion
            raise DataError(f"the camera sent a frame of shape {frame.shape}, not an image.",
                            fix="check the camera (or the browser's camera permission) and start it again.")
        image = fit_side(rgb_to_bgr(frame), self.engine.config.live_max_side)
        key = (self.engine.select(tasks or None), backend, precision, bool(smooth))
        if session is None or not session.alive or session.key != key:
            if session is not None:
                session.close()
            session = LiveSession(self.engine, tasks or None, backend, precision, bool(smooth))
        event = session.push(image)
        if event is None:  # the model has not answered the first frame yet
            return frame, [], session.stats(), f"**{session.ran}** · starting…", "", session
        from usedge.demo.core import _opacity, draw_for_display
        from usedge.demo.tables import latency_rows, measurement_html, result_rows

        overlay = draw_for_display(event.frame.image, event.result, _opacity(opacity), hud=event.hud)[..., ::-1]
        fps, lat = event.hud.get("fps", 0.0), event.latency_ms or 0.0
        status = (f"**{session.ran}** · live, latest frame wins · {fps:.1f} fps · capture→result {lat:.1f} ms · "
                  f"frames skipped {session.stream.tracker.summary().get('dropped', 0)}")
        measured = measurement_html(event.result.measurements, event.result.tracked)
        return overlay, result_rows(event.result), latency_rows(event.result.timings_ms), status, measured, session


def _close_session(session: LiveSession | None) -> None:
    if session is not None:
        session.close()


def build_app(config: DemoConfig = DemoConfig(), examples: Examples | None = None, out_dir: str | Path | None = None):
    """The gr.Blocks of the demo (call ``.launch()`` on it, or :func:`launch`)."""
    gr = require("gradio", "demo", "the browser demo")
    engine = DemoEngine(config)
    examples = examples or ensure_examples()
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="usedge-demo-"))
    h = DemoHandlers(engine, out)
    groups = engine.groups()
    meta = engine.bundle.meta

    # Gradio's own upload / output cache: files older than an hour are removed every 30 minutes
    with gr.Blocks(title="usedge demo", fill_width=True, delete_cache=(1800, 3600)) as app:
        app.usedge_engine = engine
        gr.Markdown(f"# {TITLE}\nOne backbone pass answers every task you pick. Model **{meta.model.get('name', 'unnamed')}** "
                    f"({len(engine.tasks)} tasks, {engine.bundle.preprocess.size}² input, precisions "
                    f"{', '.join(engine.bundle.precisions)}) from `{Path(engine.bundle.path).name}`. "
                    "Phantom and public example images only — not for diagnosis.", elem_id="usedge-header")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                group = gr.Dropdown(list(groups), value=ALL, label="Task group", elem_id="task-group")
                tasks = gr.Dropdown(list(engine.tasks), value=[], multiselect=True, label="Tasks (empty = all)",
                                    elem_id="tasks")
                backend = gr.Dropdown(engine.backends(), value=config.backend, label="Backend", elem_id="backend")
                precision = gr.Dropdown(engine.precisions(), value=config.precision, label="Precision",
                                        elem_id="precision")
                smooth = gr.Checkbox(False, label="Temporal smoothing (video / live)", elem_id="smooth")
                opacity = gr.Slider(0.0, 1.0, value=0.4, step=0.05, label="Overlay opacity", elem_id="opacity")
            with gr.Column(scale=3):
                status = gr.Markdown("Pick an example or upload a file.", elem_id="usedge-status")
                with gr.Tabs():
                    with gr.Tab("Image", id="image"):
                        with gr.Row():
                            img_in = gr.File(label="Image (PNG / JPEG / DICOM)", file_types=list(_IMAGE_TYPES),
                                             type="filepath", elem_id="image-input")
                            img_out = gr.Image(label="Overlay", type="numpy", interactive=False, height=420, elem_id="overlay")
                        img_btn = gr.Button("Analyze image", variant="primary", elem_id="analyze-image")
                        gr.Examples([[str(e.path)] for e in examples.images], inputs=[img_in],
                                    example_labels=[e.label for e in examples.images], label="Examples (offline)")
                        measurements = gr.HTML(label="Measurements", elem_id="measurements")
                        results = gr.Dataframe(headers=list(RESULT_COLUMNS), label="Per-task results",
                                               interactive=False, wrap=True, elem_id="results")
                        with gr.Row():
                            latency = gr.Dataframe(headers=list(LATENCY_COLUMNS), label="Latency (this frame)",
                                                   interactive=False, elem_id="latency")
                            img_json = gr.File(label="Result JSON", interactive=False, elem_id="result-json")
                    with gr.Tab("Video / cine", id="video"):
                        with gr.Row():
                            vid_in = gr.File(label="Video or DICOM cine", file_types=list(_VIDEO_TYPES),
                                             type="filepath", elem_id="video-input")
                            vid_out = gr.Video(label="Overlay video", interactive=False, elem_id="video-output")
                        vid_btn = gr.Button("Process video", variant="primary", elem_id="process-video")
                        gr.Examples([[str(e.path)] for e in examples.videos], inputs=[vid_in],
                                    example_labels=[e.label for e in examples.videos], label="Examples (offline)")
                        with gr.Row():
                            vid_summary = gr.Dataframe(headers=list(SUMMARY_COLUMNS), label="Stream latency",
                                                       interactive=False, elem_id="video-summary")
                            vid_jsonl = gr.File(label="Results (JSON lines)", interactive=False, elem_id="video-jsonl")
                    with gr.Tab("Live", id="live"):
                        gr.Markdown("Webcam or capture device (a probe on a USB grabber shows up as a camera). "
                                    "Frames go through `usedge.stream` in live mode: the newest frame wins.")
                        with gr.Row():
                            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                                           elem_id="camera")
                            live_out = gr.Image(label="Live overlay", type="numpy", interactive=False,
                                                elem_id="live-overlay")
                        live_measure = gr.HTML(label="Measurements (latest, and over the stream)",
                                               elem_id="live-measurements")
                        live_results = gr.Dataframe(headers=list(RESULT_COLUMNS), label="Per-task results (latest)",
                                                    interactive=False, wrap=True)
                        live_latency = gr.Dataframe(headers=list(LATENCY_COLUMNS), label="Latency (latest)",
                                                    interactive=False)
                        session = gr.State(None, delete_callback=_close_session)

        common = [tasks, backend, precision, opacity]
        group.change(user_errors(h.tasks), group, tasks, api_name="tasks")
        img_btn.click(user_errors(h.analyze_image), [img_in, *common],
                      [img_out, results, latency, status, img_json, measurements], api_name="analyze_image")

        @user_errors
        def analyze_video_ui(file, tasks_, backend_, precision_, opacity_, smooth_, progress=gr.Progress()):
            return h.analyze_video(file, tasks_, backend_, precision_, opacity_, smooth_, progress)

        vid_btn.click(analyze_video_ui, [vid_in, *common, smooth], [vid_out, vid_jsonl, vid_summary, status],
                      api_name="analyze_video", concurrency_limit=2)
        cam.stream(user_errors(h.live_frame), [cam, *common, smooth, session],
                   [live_out, live_results, live_latency, status, live_measure, session], api_name="live_frame",
                   stream_every=1.0 / config.live_fps, time_limit=600, concurrency_limit=4)
    return app


_IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm")
_VIDEO_TYPES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".dcm")


def launch(config: DemoConfig = DemoConfig(), host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           block: bool = True, examples: Examples | None = None, quiet: bool = False):
    """Build and serve the demo; returns the gr.Blocks (already serving when ``block`` is False)."""
    gr = require("gradio", "demo", "the browser demo")
    app = build_app(config, examples)
    example_dirs = sorted({str(Path(e.path).parent) for e in (examples or ensure_examples()).images +
                           (examples or ensure_examples()).videos})
    app.queue(default_concurrency_limit=2, max_size=32)
    app.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block, quiet=quiet,
               max_file_size=f"{int(config.max_upload_mb)}mb", allowed_paths=example_dirs, show_error=True,
               theme=gr.themes.Soft(primary_hue="teal"), css=CSS, footer_links=["api"])
    return app


__all__ = ["DemoHandlers", "build_app", "launch", "user_errors"]
