"""``usedge stream``: run a bundle on a live or recorded source, show / save overlays, log JSON-lines."""
from __future__ import annotations

from pathlib import Path

import click


def default_bundle() -> Path:
    """The packaged INT8 default bundle (usedge/assets/default_bundle): the same default everywhere (`usedge
    stream`, `usedge serve`, `usedge demo`, `usedge.load()`), opened in about a second, never exported on
    first use — whether or not torch is installed."""
    from usedge.assets import shipped_bundle

    return shipped_bundle()


def _check_region(ctx, param, value: str) -> str:
    from usedge.errors import ConfigError
    from usedge.runtime.predictor import check_region_mode

    try:
        check_region_mode(value)
    except ConfigError as exc:
        raise click.BadParameter(f"{exc.message} {exc.fix or ''}".strip()) from None
    return value


def region_option(command):
    """``--region``, shared by stream, serve, demo and eval: which part of each frame the model sees."""
    return click.option("--region", default="dicom", show_default=True, callback=_check_region,
                        help="dicom: the frame's DICOM scan region, else the whole frame; auto: that, else the "
                             "ultrasound image found inside the frame (screen grabs, HDMI capture; found once per "
                             "layout, reported and drawn); none: the whole frame; or x0,y0,x1,y1 in pixels.")(command)


@click.command("stream")
@click.argument("source")
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="Bundle folder/.zip from `usedge export` (default: the packaged INT8 default bundle).")
@click.option("--tasks", default=None, help="Comma-separated tasks to decode (default: all of the bundle's).")
@click.option("--backend", default="auto", show_default=True, help="auto, openvino, onnxruntime, tensorrt, torch.")
@click.option("--precision", default="auto", show_default=True, help="auto, int8, fp32, fp16.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Phantom pace / image-folder frame spacing (default 30).")
@click.option("--phantom-task", default="fetal_head", show_default=True, help="Anatomy of the phantom source.")
@click.option("--size", type=click.IntRange(64, 2048), default=256, show_default=True, help="Phantom frame size.")
@click.option("--show", is_flag=True, help="Show the overlay in a window ('q' quits).")
@click.option("--save", type=click.Path(dir_okay=False), default=None, help="Write the overlay video (.mp4/.avi).")
@click.option("--frames-dir", type=click.Path(file_okay=False), default=None, help="Write overlay PNGs here.")
@click.option("--jsonl", type=click.Path(dir_okay=False), default=None, help="Write one JSON record per frame.")
@click.option("--lossless/--live", "lossless", default=None,
              help="Every frame in order (default for files) / latest frame wins (default for live sources).")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Lossless mode: up to N queued frames per model call (results still one per frame, in order); "
                   "default 4 (measured fastest on the echo cine), 1 for frame by frame.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N processed frames.")
@click.option("--smooth", is_flag=True, help="Temporal smoothing (EMA, alpha 0.5; mask hysteresis).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="Smoothing weight of the newest frame (with --smooth).")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True,
              help="Frames left out of the latency statistics.")
@click.option("--opacity", type=click.FloatRange(0, 1), default=0.4, show_default=True, help="Mask overlay opacity.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Save a latency histogram PNG.")
@click.option("--summary-json", type=click.Path(dir_okay=False), default=None, help="Save the tracker summary.")
@click.option("--measure", "measuring", is_flag=True,
              help="Clinical measurements on every frame (in --jsonl), tracked over the stream; printed at the end.")
@click.option("--mm-per-pixel", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --measure: the pixel size (default: the DICOM's region, a phantom's own scale, else px).")
@region_option
def stream(source, bundle, tasks, backend, precision, fps, phantom_task, size, show, save, frames_dir, jsonl,
           lossless, batch, max_frames, smooth, alpha, warmup, opacity, plot, summary_json, measuring,
           mm_per_pixel, region) -> None:
    """Stream SOURCE through a bundle: 'phantom' (live phantom), 'echo' (pydicom-data's SonoSite cine),
    a video / DICOM / image-folder path, a camera index or a URL. Prints the latency table at the end."""
    from usedge._io import check_outputs
    from usedge.errors import ConfigError
    from usedge.measure import Measurer
    from usedge.stream import ImageFolderSink, JsonlSink, SmoothingConfig, Stream, VideoSink, WindowSink, open_source

    check_outputs({"--save": save, "--frames-dir": frames_dir, "--jsonl": jsonl, "--plot": plot,
                   "--summary-json": summary_json},
                  {"SOURCE": source if Path(source).exists() else None, "--bundle": bundle})
    src = open_source(source, fps=fps, task=phantom_task, size=size)
    sinks = ([WindowSink(opacity=opacity)] if show else []) + ([VideoSink(save, fps=_video_fps(src, fps), opacity=opacity)]
                                                               if save else [])
    sinks += ([ImageFolderSink(frames_dir, opacity=opacity)] if frames_dir else [])
    sinks += ([JsonlSink(jsonl)] if jsonl else [])
    if mm_per_pixel is not None and not measuring:
        raise ConfigError("--mm-per-pixel sets the scale of the measurements: use it with --measure.")
    mode = "auto" if lossless is None else ("lossless" if lossless else "live")
    if not bundle:
        click.echo(f"no --bundle: the packaged INT8 default ({default_bundle()})", err=True)
    s = Stream(src, bundle or str(default_bundle()), tasks, backend=backend, precision=precision, mode=mode,
               smoothing=SmoothingConfig(alpha=alpha) if smooth else None, sinks=sinks, warmup=warmup,
               max_frames=max_frames, batch=batch, measure=Measurer(mm_per_pixel=mm_per_pixel) if measuring else None,
               region=region)
    click.echo(f"streaming {src.name} ({s.mode}) through {s.predictor!r}", err=True)
    _sigterm_as_interrupt()
    try:
        s.run()
    except KeyboardInterrupt:
        s.close()
        click.echo("interrupted", err=True)
    finally:
        _report(s, plot, summary_json)
        if s.measurer is not None:
            _report_measurements(s.measurer)
    check_outcome(s)


def _report_measurements(measurer) -> None:
    """The tracked measurements at the end of the stream (stderr, like the latency table)."""
    for name, t in measurer.tracker.summary().items():
        value = f"{t.value:.2f} {t.unit} (SD {t.spread:.2f}, {t.accepted}/{t.seen} frames, best frame " \
                f"{t.best_frame})" if t.value is not None else f"withheld: {t.withheld}"
        click.echo(f"{name}: {value}", err=True)


def _sigterm_as_interrupt() -> None:
    """SIGTERM (docker stop, systemd, kill) ends the stream like Ctrl-C: outputs finalised, summary printed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def check_outcome(s) -> None:
    """A stream in which frames failed and none succeeded is a failed run (non-zero exit), not an empty one."""
    counts = s.tracker.counts
    if counts["errors"] and not counts["frames_out"]:
        from usedge.errors import UsedgeError

        raise UsedgeError(f"every frame failed ({counts['errors']} of {counts['errors']}); the first: "
                          f"{s.first_frame_error}", fix="check the source's frames and the bundle's input; "
                                                        "the JSON-lines output (--jsonl) lists every failure.")


def _video_fps(src, fps: float | None) -> float:
    return float(fps or getattr(src, "fps", None) or 30.0)


def _report(s, plot: str | None, summary_json: str | None) -> None:
    if s.terminal is not None:
        click.echo(f"{s.terminal.kind}: {s.terminal.message}", err=True)
    click.echo(s.tracker.table())
    if plot:
        saved = s.tracker.plot(plot)
        click.echo(f"latency histogram: {saved}" if saved else "matplotlib is not installed: no plot", err=True)
    if summary_json:
        from usedge._io import atomic_write_json

        atomic_write_json(summary_json, s.tracker.summary())
