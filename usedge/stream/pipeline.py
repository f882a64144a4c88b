"""The streaming pipeline: capture thread -> inference thread -> sinks (the calling thread), overlapped.

    for result in usedge.stream.stream("phantom", "out/bundle", tasks=["fetal_head"]):
        print(result.index, result["fetal_head"].areas)

    s = Stream("scan.mp4", predictor, sinks=[JsonlSink("out.jsonl"), VideoSink("out.mp4")])
    summary = s.run()                      # -> s.tracker.summary(); print(s.tracker.table())

Modes: ``live`` puts a latest-frame-wins slot (one frame) between capture and inference, so a slow model
drops frames (counted) instead of falling behind; ``lossless`` puts a bounded queue with back-pressure there,
so every frame is processed in order and the reader waits. ``auto`` picks live for live sources.
Results are never dropped: the inference -> sinks queue is bounded and blocking in both modes.
"""
from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from usedge.errors import ConfigError, SourceError
from usedge.measure.compute import with_views
from usedge.measure.tracker import Measurer
from usedge.runtime.results import FrameResult
from usedge.stream.events import MODES, TERMINAL, Captured, FrameBuffer, ReconnectPolicy, StopStream, StreamEvent
from usedge.stream.sinks import as_sink
from usedge.stream.smoothing import Smoother, SmoothingConfig
from usedge.stream.sources import Source, open_source
from usedge.stream.tracker import Tracker

__all__ = ["Stream", "stream"]

log = logging.getLogger("usedge.stream")

#: Lossless mode's default batch: on the echo cine (2 cores, packaged bundle) batch 4 gave 1.2-1.4× the frames/s
#: of batch 1 and batch 8 no more than 4 (``python benchmarks/bench_stream_batch.py``); results are the same.
LOSSLESS_BATCH = 4

#: Streams whose threads were started and not closed yet: closed at interpreter exit (see _close_running).
_RUNNING: weakref.WeakSet[Stream] = weakref.WeakSet()


@atexit.register
def _close_running() -> None:
    """A script that leaves a stream's loop by an exception keeps the generator (and its threads) alive until
    exit; the runtime's native threads were then torn down mid-inference and the process aborted ("terminate
    called without an active exception", exit 134) instead of reporting the exception. Close them first."""
    for stream in list(_RUNNING):
        try:
            stream.close()
        except Exception as exc:  # noqa: BLE001 - exiting anyway; say what failed
            log.warning("stream: while closing at exit: %s", exc)


class Stream:
    """A running (or runnable) stream of one source through one Predictor into sinks.

    Args:
        source: a :class:`~usedge.stream.sources.Source` or anything :func:`open_source` accepts.
        model: a bundle path (opened with ``usedge.load(model, backend, precision)`` and closed at the end) or a
            Predictor (anything callable as ``model(frame, tasks=...) -> FrameResult``; left open).
        tasks: tasks to decode (None: the model's default selection).
        mode: "auto", "live" or "lossless" (module doc).
        smoothing: None (off) or a :class:`SmoothingConfig`.
        sinks: :class:`~usedge.stream.sinks.Sink` s (or any object with ``write(event)``; see ``sinks.py``).
        reconnect: what to do when a live source faults.
        warmup: processed frames left out of the latency statistics.
        max_frames: stop after this many processed frames (results + frame errors); None: until the end.
        queue_size: lossless queue between capture and inference; out_size: inference -> sinks queue.
        batch: lossless mode only: up to this many queued frames go through the model in one call (results
            still one per frame, in order; a failing batch is retried frame by frame so one bad frame is
            skipped alone). 1: frame by frame; None: ``LOSSLESS_BATCH`` (4, measured: benchmarks/RESULTS.md), at
            most ``queue_size``.
            Live mode is always one frame (the newest).
        measure: None / False (off), True (every measurement the tasks allow, the frame's DICOM calibration) or a
            :class:`~usedge.measure.Measurer` (names, mm per pixel, tracker window): each result then carries
            ``measurements`` (this frame's) and ``tracked`` (filtered over the stream; ``stream.measurer.tracker``
            freezes them).
    """

    def __init__(self, source: Any, model: Any, tasks: Sequence[str] | str | None = None, *, backend: str = "auto",
                 precision: str = "auto", mode: str = "auto", smoothing: SmoothingConfig | None = None,
                 sinks: Sequence[Any] = (), reconnect: ReconnectPolicy | None = None, warmup: int = 5,
                 max_frames: int | None = None, queue_size: int = 8, out_size: int = 4, batch: int | None = None,
                 measure: Measurer | bool | None = None, region: str | Sequence[int] = "dicom") -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown stream mode {mode!r}.", fix=f"use one of: {', '.join(MODES)}.")
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
            raise ConfigError(f"max_frames must be a positive integer or None, got {max_frames!r}.")
        if batch is None:
            batch = min(LOSSLESS_BATCH, max(int(queue_size), 1))  # the default never enlarges the given queue
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"batch must be a positive integer, got {batch!r}.", fix="e.g. 4 for files.")
        if smoothing is not None and not isinstance(smoothing, SmoothingConfig):
            raise ConfigError(f"smoothing must be a SmoothingConfig or None, got {type(smoothing).__name__}.",
                              fix="e.g. smoothing=SmoothingConfig(alpha=0.5).")
        self.source: Source = open_source(source)
        self.predictor, self._owns_predictor = _predictor(model, backend, precision, region)
        if tasks is None:
            self.tasks = getattr(self.predictor, "tasks", None)
        else:
            self.tasks = self.predictor.select(tasks) if hasattr(self.predictor, "select") else tasks
        self.live = self.source.live if mode == "auto" else mode == "live"
        self.mode = "live" if self.live else "lossless"
        self.smoother = Smoother(smoothing) if smoothing is not None else None
        if measure is not None and not isinstance(measure, (bool, Measurer)):
            raise ConfigError(f"measure must be True, False, None or a Measurer, got {type(measure).__name__}.",
                              fix="e.g. measure=Measurer(mm_per_pixel=0.2).")
        self.measurer = Measurer() if measure is True else (measure or None)
        if self.measurer is not None and self.tasks is not None:    # the view classifiers the measurements check
            self.tasks = with_views(self.tasks, getattr(self.predictor, "tasks", None) or ())
        self.sinks = [as_sink(s) for s in sinks]
        self.reconnect = reconnect or ReconnectPolicy()
        self.max_frames = max_frames
        self.tracker = Tracker(warmup=warmup)
        self.buffer = FrameBuffer(1, True) if self.live else FrameBuffer(max(queue_size, batch), False)
        self.batch = 1 if self.live else batch
        self._out: queue.Queue = queue.Queue(maxsize=max(1, int(out_size)))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._capture_terminal: StreamEvent | None = None
        self._failures = 0
        self._processed = 0
        self._closed = False
        self.terminal: StreamEvent | None = None
        self.first_frame_error: str | None = None   # the message of the first frame that failed
        self._frozen = None                          # the frame gate's frozen-screen check (on the first result)

    # -- public ---------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[FrameResult]:
        """Results in order; frame errors and reconnects are logged and skipped; a stream error raises."""
        for ev in self.iter_events():
            if ev.kind == "result":
                yield ev.result
        self.raise_for_error()

    def iter_events(self) -> Iterator[StreamEvent]:
        """Every :class:`StreamEvent`, ending with one terminal event ("end" or "error")."""
        self.start()
        try:
            while (ev := self._next_event()) is not None:
                yield from self._handle(ev)
                if self.terminal is not None:
                    break
        except BaseException:
            try:
                self.close()
            except Exception as exc:  # noqa: BLE001 - the first failure is the one to report
                log.warning("stream: while closing after an error: %s", exc)
            raise
        self.close()

    def run(self, sinks: Sequence[Any] | None = None) -> dict:
        """Run to the end (callback form); returns the tracker summary. Raises on a stream error."""
        if sinks is not None:
            self.sinks = [as_sink(s) for s in sinks]
        for _ in self.iter_events():
            pass
        self.raise_for_error()
        return self.tracker.summary()

    def raise_for_error(self) -> None:
        ev = self.terminal
        if ev is not None and ev.kind == "error":
            fix = getattr(ev.error, "fix", None) or "see the log for the cause."
            if self.source.live and ev.error is not None:
                fix += " (a live source is retried per ReconnectPolicy; raise max_attempts to keep trying longer.)"
            raise SourceError(ev.message, fix=fix) from ev.error

    def start(self) -> None:
        if self._threads or self._closed:
            return
        self._threads = [threading.Thread(target=self._capture_main, name="usedge-capture", daemon=True),
                         threading.Thread(target=self._infer_main, name="usedge-infer", daemon=True)]
        _RUNNING.add(self)
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self.buffer.close()

    def close(self) -> None:
        """Stop the threads, close the source, the sinks (files are finalised) and an owned predictor."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        for t in self._threads:
            t.join(timeout=10.0)
            if t.is_alive():
                log.warning("stream: %s did not stop within 10 s (blocked in the source?)", t.name)
        if self.terminal is None:
            self.terminal = StreamEvent("end", message="stopped")
        failed = self.terminal.kind == "error"
        # a stream that failed before any frame leaves no empty output file behind (and an earlier one intact)
        errors = [exc for exc in (_safe_abort(s) if failed and s.empty else _safe_close(s) for s in self.sinks)
                  if exc is not None]
        if self._owns_predictor:
            _safe_close(self.predictor)
        if errors:
            raise errors[0]

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consumer side (calling thread) ---------------------------------------------------------------
    def _next_event(self) -> StreamEvent | None:
        while True:
            try:
                return self._out.get(timeout=0.1)
            except queue.Empty:
                if not any(t.is_alive() for t in self._threads) and self._out.empty():
                    return None

    def _handle(self, ev: StreamEvent) -> Iterator[StreamEvent]:
        if ev.kind in ("result", "frame_error"):
            self._processed += 1
            if ev.kind == "frame_error" and self.first_frame_error is None:
                self.first_frame_error = ev.message
            self._deliver(ev)
        elif ev.kind in TERMINAL:
            self.terminal = ev
            self._log_terminal(ev)
        yield ev
        if self.terminal is None and self.max_frames is not None and self._processed >= self.max_frames:
            self.terminal = StreamEvent("end", message=f"max_frames ({self.max_frames}) reached")
            self.stop()
            yield self.terminal

    def _deliver(self, ev: StreamEvent) -> None:
        t0 = time.perf_counter()
        if ev.kind == "result":
            ev.hud = {"fps": self.tracker.recent_fps() or 0.0, "latency ms": ev.latency_ms or 0.0}
        try:
            for sink in self.sinks:
                if ev.kind == "result":
                    sink.write(ev)
                else:
                    sink.error(ev)
        except StopStream:
            self.terminal = StreamEvent("end", message="stopped by a sink")
            self.stop()
        except Exception:
            self.terminal = StreamEvent("error", message="a sink failed")
            self.stop()
            raise
        t1 = time.perf_counter()
        if ev.counted:
            self.tracker.add_stage("sinks", (t1 - t0) * 1e3)
            self.tracker.add_stage("delivered", (t1 - ev.t_capture) * 1e3)

    def _log_terminal(self, ev: StreamEvent) -> None:
        if ev.kind == "error":
            log.error("stream: %s", ev.message)
        else:
            log.info("stream: %s", ev.message)

    # -- capture thread -------------------------------------------------------------------------------
    def _capture_main(self) -> None:
        try:
            self._capture_terminal = self._capture()
        except BaseException as exc:  # noqa: BLE001 - reported as the terminal event
            self._capture_terminal = StreamEvent("error", error=exc, message=f"capture failed: {exc!r}")
        finally:
            _safe_close(self.source)
            self.buffer.close()

    def _capture(self) -> StreamEvent:
        name = self.source.name
        if (ev := self._open_first()) is not None:
            return ev
        seq = 0
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                frame = self.source.read()
            except Exception as exc:  # noqa: BLE001 - a source fault
                if (ev := self._fault(exc)) is not None:
                    return ev
                continue
            t1 = time.perf_counter()
            if frame is None:
                return StreamEvent("end", message=f"end of {name}")
            self._failures = 0
            self.tracker.frame_in(t1)
            self.buffer.put(Captured(frame, seq, t1, (t1 - t0) * 1e3), self._stop)
            self.tracker.set_count("dropped", self.buffer.dropped)
            seq += 1
            if not self.live and self.max_frames is not None and seq >= self.max_frames:
                return StreamEvent("end", message=f"max_frames ({self.max_frames}) reached")
        return StreamEvent("end", message="stopped")

    def _open_first(self) -> StreamEvent | None:
        try:
            self.source.open()
            return None
        except Exception as exc:  # noqa: BLE001
            return self._fault(exc)

    def _fault(self, exc: Exception) -> StreamEvent | None:
        """A source fault: reconnect a live source (None: carry on), else the terminal error event."""
        name = self.source.name
        if not self.source.live:
            return StreamEvent("error", error=exc, message=f"{name} failed: {_one_line(exc)}")
        while True:
            self._failures += 1
            if self._failures > self.reconnect.max_attempts:
                return StreamEvent("error", error=exc, message=(
                    f"{name} failed and did not come back after {self.reconnect.max_attempts} reconnect attempts: "
                    f"{_one_line(exc)}"))
            delay = self.reconnect.delay(self._failures)
            self.tracker.count("reconnects")
            log.warning("stream: %s faulted (%s); reconnect %d/%d in %.2f s", name, _one_line(exc),
                        self._failures, self.reconnect.max_attempts, delay)
            self._emit(StreamEvent("reconnect", error=exc, message=(
                f"{name}: reconnect attempt {self._failures}/{self.reconnect.max_attempts} in {delay:.2f} s")))
            if self._stop.wait(delay):
                return StreamEvent("end", message="stopped")
            try:
                _safe_close(self.source)
                self.source.open()
                return None
            except Exception as again:  # noqa: BLE001
                exc = again

    # -- inference thread -----------------------------------------------------------------------------
    def _infer_main(self) -> None:
        terminal = None
        try:
            while (item := self.buffer.get(self._stop)) is not None:
                items = [item, *self.buffer.take_ready(self.batch - 1)] if self.batch > 1 else [item]
                if not all(self._emit(ev) for ev in self._process_batch(items)):
                    break
        except BaseException as exc:  # noqa: BLE001 - reported as the terminal event
            terminal = StreamEvent("error", error=exc, message=f"inference failed: {exc!r}")
            self.stop()
        for t in self._threads[:1]:
            t.join(timeout=10.0)
        terminal = terminal or self._capture_terminal or StreamEvent("end", message="stopped")
        self._emit(terminal)

    def _process_batch(self, items: list[Captured]) -> list[StreamEvent]:
        """One event per item, in order: one model call for the batch, or frame by frame if it fails."""
        if len(items) == 1 or not hasattr(self.predictor, "predict_batch"):
            return [self._process(it) for it in items]
        t_start = time.perf_counter()
        try:
            results = self.predictor.predict_batch([it.frame for it in items], tasks=self.tasks)
        except Exception:  # noqa: BLE001 - find the bad frame: each one alone
            return [self._process(it) for it in items]
        return [self._finish(it, res, t_start) for it, res in zip(items, results)]

    def _process(self, item: Captured) -> StreamEvent:
        t_start = time.perf_counter()
        frame = item.frame
        try:
            result = self.predictor(frame, tasks=self.tasks)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not end the stream
            self.tracker.count("errors")
            log.warning("stream: frame %s of %s failed and was skipped: %s", frame.index, frame.source, _one_line(exc))
            return StreamEvent("frame_error", item.seq, frame, error=exc, t_capture=item.t_capture,
                               message=f"frame {frame.index}: {_one_line(exc)}")
        return self._finish(item, result, t_start)

    def _finish(self, item: Captured, result: Any, t_start: float) -> StreamEvent:
        """Smoothing, timings and the tracker for one frame's result."""
        frame = item.frame
        timings = dict(getattr(result, "timings_ms", {}) or {})
        t0 = time.perf_counter()     # the Predictor defers masks; a stream's result is decoded when it leaves here
        if isinstance(result, FrameResult):
            result.decode_all()
        timings["postprocess"] = timings.get("postprocess", 0.0) + (time.perf_counter() - t0) * 1e3
        if isinstance(result, FrameResult) and result.gate is not None:
            self._check_frozen(result, frame)
            if not result.accepted:
                self.tracker.count("rejected")
        if self.smoother is not None and getattr(result, "accepted", True):
            t0 = time.perf_counter()
            result = self.smoother(result)
            timings["postprocess"] = timings.get("postprocess", 0.0) + (time.perf_counter() - t0) * 1e3
        if self.measurer is not None and isinstance(result, FrameResult):
            t0 = time.perf_counter()
            self.measurer(result, frame)
            timings["measure"] = (time.perf_counter() - t0) * 1e3
        t_ready = time.perf_counter()
        e2e = (t_ready - item.t_capture) * 1e3
        timings.update(capture_wait=item.capture_wait_ms, queue_wait=(t_start - item.t_capture) * 1e3, end_to_end=e2e)
        result.timings_ms = timings
        counted = self.tracker.frame_out(timings, t_ready)
        return StreamEvent("result", item.seq, frame, result, latency_ms=e2e, t_capture=item.t_capture, counted=counted)

    def _check_frozen(self, result: FrameResult, frame: Any) -> None:
        """The frame gate's stream check: a frozen screen (the same image several frames in a row) is rejected."""
        if self._frozen is None:
            from usedge.data.quality import FrozenCheck

            self._frozen = FrozenCheck(result.gate.thresholds.frozen_frames)
        if self._frozen(frame.image):
            result.gate = result.gate.rejected_by(
                f"frozen screen (the same image {self._frozen.repeats + 1} frames in a row)", "frozen_repeats",
                float(self._frozen.repeats))

    def _emit(self, ev: StreamEvent) -> bool:
        """Put an event for the consumer, waiting while its queue is full (results are never dropped)."""
        while True:
            try:
                self._out.put(ev, timeout=0.1)
                return True
            except queue.Full:
                if self._stop.is_set():
                    return False


def stream(source: Any, model: Any, tasks: Sequence[str] | str | None = None, *, backend: str = "auto",
           mode: str = "auto", smoothing: SmoothingConfig | None = None, **options: Any) -> Stream:
    """A :class:`Stream`; iterate it for :class:`FrameResult` s (``for result in stream(...)``).

    ``options`` go to :class:`Stream` (precision, sinks, reconnect, warmup, max_frames, queue_size, ...).
    The returned object also has ``.tracker``, ``.run()``, ``.iter_events()`` and ``.close()``.
    """
    return Stream(source, model, tasks, backend=backend, mode=mode, smoothing=smoothing, **options)


def _predictor(model: Any, backend: str, precision: str, region: Any = "dicom") -> tuple[Any, bool]:
    if callable(model) and not isinstance(model, (str, bytes)) and not hasattr(model, "__fspath__"):
        return model, False
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from usedge.runtime.predictor import load

        return load(model, backend=backend, precision=precision, region=region), True
    raise ConfigError(f"cannot run a stream on a {type(model).__name__}.",
                      fix="pass a bundle folder (usedge export) or a Predictor from usedge.load(...).")


def _safe_abort(sink: Any) -> BaseException | None:
    try:
        sink.abort()
    except Exception as exc:  # noqa: BLE001
        log.warning("stream: aborting %r failed: %s", sink, exc)
        return exc
    return None


def _safe_close(obj: Any) -> BaseException | None:
    try:
        close = getattr(obj, "close", None)
        if close is not None:
            close()
    except Exception as exc:  # noqa: BLE001
        log.warning("stream: closing %r failed: %s", obj, exc)
        return exc
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
