"""Latency and throughput of a stream: per-stage and end-to-end percentiles, fps in/out, drops, errors.

Stages (milliseconds, per processed frame):

* ``capture_wait``: time inside ``source.read()`` (waiting for the camera / decoding the file);
* ``queue_wait``: time the frame sat in the latest-frame slot or the lossless queue;
* ``preprocess``, ``infer``, ``postprocess``: the Predictor's own timings (smoothing counts as postprocess);
* ``sinks``: time spent in the sinks (or the caller's loop body, in the iterator form);
* ``end_to_end``: frame captured (``read`` returned) -> result ready (after postprocess and smoothing);
* ``delivered``: frame captured -> sinks done.

The first ``warmup`` processed frames are counted but left out of the latency statistics (first calls are
slow: lazy allocations, JIT, caches). Samples are kept in bounded windows (the last ``window`` frames).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

__all__ = ["PERCENTILES", "STAGES", "Tracker"]

STAGES = ("capture_wait", "queue_wait", "preprocess", "infer", "postprocess", "sinks", "end_to_end", "delivered")
PERCENTILES = (50.0, 95.0, 99.0, 99.9)
_COUNTERS = ("frames_in", "frames_out", "dropped", "errors", "reconnects", "rejected")


class Tracker:
    """Thread-safe stream statistics. ``summary()`` -> dict, ``table()`` -> markdown, ``plot(path)`` -> PNG."""

    def __init__(self, warmup: int = 5, window: int = 100_000) -> None:
        self.warmup = max(0, int(warmup))
        self._lock = threading.Lock()
        self._samples: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._seen = 0                        # processed frames, warm-up included
        self._t_first: float | None = None
        self._t_last_in: float | None = None
        self._t_last_out: float | None = None
        self._recent_out: deque[float] = deque(maxlen=30)

    # -- recording (called by the pipeline threads) ---------------------------------------------------
    def frame_in(self, t: float | None = None) -> None:
        t = time.perf_counter() if t is None else t
        with self._lock:
            self._counts["frames_in"] += 1
            self._t_first = t if self._t_first is None else self._t_first
            self._t_last_in = t

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def set_count(self, name: str, value: int) -> None:
        with self._lock:
            self._counts[name] = int(value)

    def frame_out(self, stages_ms: dict[str, float], t: float | None = None) -> bool:
        """One processed frame and its stage times; False (times not recorded) during warm-up."""
        t = time.perf_counter() if t is None else t
        with self._lock:
            self._counts["frames_out"] += 1
            self._seen += 1
            self._t_last_out = t
            self._recent_out.append(t)
            if self._seen <= self.warmup:
                return False
            for stage, ms in stages_ms.items():
                if stage in self._samples and ms is not None:
                    self._samples[stage].append(float(ms))
            return True

    def add_stage(self, stage: str, ms: float) -> None:
        """A late stage time (sinks, delivered) of a frame :meth:`frame_out` recorded (returned True)."""
        with self._lock:
            self._samples[stage].append(float(ms))

    # -- reading ---------------------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def recent_fps(self) -> float | None:
        """Output rate over the last 30 results (for an on-screen HUD)."""
        with self._lock:
            times = list(self._recent_out)
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None

    def last(self, stage: str) -> float | None:
        with self._lock:
            samples = self._samples[stage]
            return samples[-1] if samples else None

    def summary(self) -> dict:
        """Counters, fps in/out, elapsed time and per-stage latency stats (ms: p50/p95/p99/p99.9/mean/max/n)."""
        with self._lock:
            counts = dict(self._counts)
            samples = {s: np.fromiter(v, np.float64, len(v)) for s, v in self._samples.items()}
            t0, t_in, t_out = self._t_first, self._t_last_in, self._t_last_out
        end = max((t for t in (t_in, t_out) if t is not None), default=None)
        elapsed = (end - t0) if t0 is not None and end is not None else 0.0
        def rate(n: int) -> float | None:
            return round(n / elapsed, 3) if elapsed > 0 else None

        latency = {s: _stats(v) for s, v in samples.items() if v.size}
        return {**counts, "warmup": self.warmup, "elapsed_s": round(elapsed, 4),
                "fps_in": rate(counts["frames_in"]), "fps_out": rate(counts["frames_out"]),
                "drop_rate": round(counts["dropped"] / counts["frames_in"], 4) if counts["frames_in"] else 0.0,
                "latency_ms": latency}

    def table(self) -> str:
        """A markdown table: one row per stage, then the counters."""
        s = self.summary()
        head = "| stage | p50 ms | p95 ms | p99 ms | p99.9 ms | mean ms | n |\n|---|---:|---:|---:|---:|---:|---:|\n"
        rows = "".join(f"| {stage} | {v['p50']:.2f} | {v['p95']:.2f} | {v['p99']:.2f} | {v['p99.9']:.2f} | "
                       f"{v['mean']:.2f} | {v['n']} |\n" for stage, v in s["latency_ms"].items())
        if not rows:
            rows = f"| (no frames after the {s['warmup']} warm-up frames) | | | | | | |\n"
        def fps(v: float | None) -> str:
            return f"{v:.1f}" if v is not None else "n/a"

        foot = (f"\nframes in {s['frames_in']}, out {s['frames_out']}, dropped {s['dropped']}, errors {s['errors']}, "
                f"reconnects {s['reconnects']}; fps in {fps(s['fps_in'])}, out {fps(s['fps_out'])}; "
                f"{s['elapsed_s']:.2f} s; warm-up {s['warmup']} frames excluded from latency\n")
        return head + rows + foot

    def plot(self, path: str | Path) -> Path | None:
        """Histograms of end-to-end latency and the compute stages as a PNG; None if matplotlib is missing."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        with self._lock:
            data = {s: list(v) for s, v in self._samples.items() if v}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        for stage in ("end_to_end", "infer", "preprocess", "postprocess", "queue_wait"):
            if stage in data:
                ax.hist(data[stage], bins=50, alpha=0.5, label=stage)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("frames")
        ax.set_title("usedge stream latency")
        if data:
            ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path


def _stats(values: np.ndarray) -> dict:
    p = np.percentile(values, PERCENTILES)
    out = {f"p{q:g}": round(float(v), 3) for q, v in zip(PERCENTILES, p)}
    out.update(mean=round(float(values.mean()), 3), max=round(float(values.max()), 3), n=int(values.size))
    return out
