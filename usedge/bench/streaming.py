"""Live streaming rows behind ``usedge bench --stream``: each source replayed as a live probe at each frame
rate through one Predictor (latest frame wins), with the stream tracker's end-to-end latency and drops.

Sources: ``echo`` (the SonoSite echo cine of pydicom-data, 640×480 with a colour Doppler region, replayed
live and looped) and ``phantom`` (a live phantom fetal-head cine rendered at 256²). A source that cannot be
opened here (pydicom-data missing) is an explained row. The first ``warmup_s`` seconds of each row are left
out of the latency statistics. Concurrent server clients: ``benchmarks/bench_serve.py``.
"""
from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from usedge.bench.harness import _error_status, machine_info, open_predictor, parse_batches
from usedge.bench.rows import OK, Result, Row
from usedge.errors import ConfigError, SourceError

SOURCES = {"echo": "echo cine (pydicom-data, replayed live)", "phantom": "phantom fetal_head 256²"}
FPS = (30, 60)


@dataclass(frozen=True)
class StreamRow(Row):
    source: str
    fps: float
    frames_in: int | None = None
    frames_out: int | None = None
    dropped: int | None = None
    e2e_p50_ms: float | None = None
    e2e_p99_ms: float | None = None
    infer_p50_ms: float | None = None
    fps_out: float | None = None
    status: str = OK

    def extras(self) -> dict[str, bool | None]:
        return {"within_interval": self.within_interval}

    @property
    def within_interval(self) -> bool | None:
        """End-to-end p99 within one frame interval (None when the row did not run)."""
        return None if self.e2e_p99_ms is None else self.e2e_p99_ms <= 1000.0 / self.fps


@dataclass(frozen=True)
class StreamResult(Result):
    bundle: str
    predictor: str
    rows: tuple[StreamRow, ...]
    machine: dict[str, object]
    command: str
    settings: dict[str, object] = field(default_factory=dict)
    row_type = StreamRow


def make_source(name: str, fps: float):
    """A live source by name ("echo", "phantom"); raises SourceError when it is not available here."""
    import usedge.stream as us

    if name == "echo":
        return us.PacedReplay(us.echo_cine_path(), fps=fps, loops=None)
    if name == "phantom":
        return us.PhantomSource(fps=fps, task="fetal_head", size=256)
    raise ConfigError(f"Unknown stream source '{name}'.", fix=f"use some of: {', '.join(SOURCES)}")


def stream_row(predictor, name: str, fps: float, seconds: float, warmup_s: float,
               tasks: Sequence[str] | None = None) -> StreamRow:
    """One source at one frame rate for ``seconds`` (warm-up included) through ``predictor`` (left open)."""
    from usedge.stream import Stream

    label = SOURCES.get(name, name)
    try:
        source = make_source(name, fps)
    except SourceError as exc:
        fix = f" Fix: {exc.fix}" if exc.fix else ""
        return StreamRow(label, float(fps), status=f"not available here: {exc.message}{fix}")
    try:
        s = Stream(source, predictor, tasks=tasks, mode="live", warmup=int(warmup_s * fps),
                   max_frames=max(1, int(seconds * fps)))
        summary = s.run()
    except Exception as exc:  # noqa: BLE001 - a failed stream is the row's status
        return StreamRow(label, float(fps), status=_error_status(exc))
    lat = summary.get("latency_ms", {})
    if "end_to_end" not in lat:
        return StreamRow(label, float(fps), summary["frames_in"], summary["frames_out"], summary["dropped"],
                         status="no frames after the warm-up")
    return StreamRow(label, float(fps), summary["frames_in"], summary["frames_out"], summary["dropped"],
                     lat["end_to_end"]["p50"], lat["end_to_end"]["p99"], lat.get("infer", {}).get("p50"),
                     summary.get("fps_out"))


def run_stream_bench(bundle, sources: Sequence[str] = tuple(SOURCES), fps: str | Sequence[int] = FPS,
                     seconds: float = 4.0, warmup_s: float = 1.0, backend: str = "auto", precision: str = "auto",
                     tasks: Sequence[str] | None = None, threads: int | None = None, command: str | None = None,
                     progress: Callable[[StreamRow], None] | None = None) -> StreamResult:
    """Every source × frame rate, one Predictor (``usedge.load(bundle, backend, precision)``) for all rows.

    Args:
        seconds: length of each row, warm-up included; warmup_s: left out of the latency statistics.
        tasks: tasks decoded per frame (None: all the bundle's).
        threads: pin the backend's threads.
    """

    rates = parse_batches(fps)
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise ConfigError(f"Unknown stream source(s): {', '.join(unknown) or '(none)'}.",
                          fix=f"use some of: {', '.join(SOURCES)}")
    if not (math.isfinite(seconds) and math.isfinite(warmup_s) and 0 <= warmup_s < seconds):
        raise ConfigError(f"seconds={seconds}, warmup_s={warmup_s}.",
                          fix="give a row length longer than its warm-up, e.g. seconds=4, warmup_s=1.")
    predictor = open_predictor(bundle, backend, precision, threads)
    rows = []
    try:
        for name in sources:
            for rate in rates:
                rows.append(stream_row(predictor, name, rate, seconds, warmup_s, tasks))
                if progress:
                    progress(rows[-1])
        described = f"{predictor.choice.backend} {predictor.choice.precision} ({predictor.choice.reason})"
        chosen = len(predictor.select(tasks))
    finally:
        predictor.close()
    settings = {"sources": list(sources), "fps": rates, "seconds": seconds, "warmup_s": warmup_s, "tasks": chosen,
                "threads": threads, "mode": "live (latest frame wins)"}
    return StreamResult(str(bundle), described, tuple(rows), machine_info(), command or shlex.join(sys.argv),
                        settings)


def _f(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def stream_markdown(result: StreamResult) -> str:
    s = result.settings
    lines = [f"# usedge bench --stream: {result.bundle}", "", f"`{result.command}`", "",
             f"- predictor: {result.predictor}; {s.get('tasks')} tasks decoded per frame; {s.get('mode')}",
             f"- {s.get('seconds')} s per row, the first {s.get('warmup_s')} s excluded from latency",
             *[f"- {k}: {v}" for k, v in result.machine.items()], "",
             "| source | fps | e2e p50 ms | e2e p99 ms | infer p50 ms | fps out | dropped / frames in | "
             "p99 within one frame interval | status |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        counts = f"{r.dropped} / {r.frames_in}" if r.frames_in is not None else ""
        within = {True: "yes", False: "no", None: ""}[r.within_interval]
        lines.append(f"| {r.source} | {r.fps:g} | {_f(r.e2e_p50_ms)} | {_f(r.e2e_p99_ms)} | {_f(r.infer_p50_ms)} | "
                     f"{_f(r.fps_out)} | {counts} | {within} | {r.status.replace('|', '/')} |")
    lines += ["", "End to end: frame captured -> result decoded (usedge.stream's tracker). Concurrent server "
              "clients: benchmarks/bench_serve.py."]
    return "\n".join(lines) + "\n"


def write_stream_reports(result: StreamResult, out: str | Path) -> dict[str, Path]:
    """stream.md and stream.json in ``out``, atomically."""
    from usedge.bench.report import write_outputs

    return write_outputs(out, {"stream_md": ("stream.md", stream_markdown(result)),
                               "stream_json": ("stream.json", result.to_dict())})


__all__ = ["SOURCES", "StreamResult", "StreamRow", "make_source", "run_stream_bench", "stream_markdown",
           "stream_row", "write_stream_reports"]
