"""What the streaming pipeline passes around: its events (:class:`StreamEvent`, ``EVENT_KINDS``), the
reconnect policy of live sources, the stop signal a sink raises, and the bounded buffer between capture and
inference (:class:`FrameBuffer`: a latest-frame-wins slot in live mode, a blocking queue in lossless mode)."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from usedge.data.frames import Frame
from usedge.errors import ConfigError
from usedge.runtime.results import FrameResult
from usedge.stream.slot import LatestSlot

__all__ = ["EVENT_KINDS", "MODES", "TERMINAL", "FrameBuffer", "ReconnectPolicy", "StopStream", "StreamEvent"]

#: result: a processed frame; frame_error: the predictor failed on a frame (skipped); reconnect: a live source
#: faulted and is being reopened; end: clean end (end of file, max_frames, stop); error: the stream failed.
EVENT_KINDS = ("result", "frame_error", "reconnect", "end", "error")
TERMINAL = ("end", "error")
MODES = ("auto", "live", "lossless")


class StopStream(Exception):  # noqa: N818 - a signal, not an error
    """Raise from a sink (or a callback) to end the stream cleanly (e.g. 'q' pressed in the window)."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source that faults is reopened: up to ``max_attempts`` consecutive tries, waiting
    ``initial_s * factor ** (n - 1)`` (at most ``max_s``) before try n; a frame read resets the count."""

    max_attempts: int = 5
    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 0:
            raise ConfigError(f"ReconnectPolicy.max_attempts must be an integer >= 0, got {self.max_attempts!r}.",
                              fix="e.g. 5 (0: never reconnect).")
        if not (self.initial_s >= 0 and self.factor >= 1 and self.max_s >= 0):
            raise ConfigError("ReconnectPolicy needs initial_s >= 0, factor >= 1 and max_s >= 0.",
                              fix="e.g. ReconnectPolicy(initial_s=0.5, factor=2.0, max_s=8.0).")

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))


@dataclass(eq=False)
class StreamEvent:
    """One thing that happened in the stream (see :data:`EVENT_KINDS`)."""

    kind: str
    seq: int = -1                               # capture order within this stream (0, 1, ...)
    frame: Frame | None = None
    result: FrameResult | None = None
    error: BaseException | None = None
    message: str = ""
    latency_ms: float | None = None             # capture -> result ready
    t_capture: float | None = None              # time.perf_counter() when the frame was read
    counted: bool = False                       # its latency went into the tracker (after warm-up)
    hud: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> int | None:
        return self.frame.index if self.frame is not None else None


@dataclass(frozen=True, eq=False)
class Captured:
    frame: Frame
    seq: int
    t_capture: float
    capture_wait_ms: float


class FrameBuffer:
    """Between capture and inference: ``drop_oldest`` (live: the one latest-frame-wins slot,
    :class:`~usedge.stream.slot.LatestSlot`, drops counted) or blocking (lossless: a queue of ``capacity``; the
    writer waits while it is full). ``high_water`` is the most items ever held."""

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(f"queue size must be a positive integer, got {capacity!r}.", fix="e.g. 8.")
        if drop_oldest and capacity != 1:
            raise ConfigError(f"a latest-frame-wins buffer holds one frame, not {capacity}.",
                              fix="use capacity 1 with drop_oldest, or a lossless queue (drop_oldest=False).")
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self.high_water = 0
        self._slot: LatestSlot = LatestSlot()
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._closed = False

    @property
    def dropped(self) -> int:
        return self._slot.dropped

    def put(self, item: object, stop: threading.Event) -> bool:
        with self._cond:
            if self.drop_oldest:
                self._slot.put(item)
                self.high_water = 1
            else:
                while len(self._items) >= self.capacity and not stop.is_set():
                    self._cond.wait(0.1)
                if stop.is_set():
                    return False
                self._items.append(item)
                self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
            return True

    def get(self, stop: threading.Event) -> Any:
        """The oldest item (live: the newest); None once closed and empty, or when stopped."""
        with self._cond:
            while not len(self):
                if self._closed or stop.is_set():
                    return None
                self._cond.wait(0.1)
            item = self._slot.take() if self.drop_oldest else self._items.popleft()
            self._cond.notify_all()
            return item

    def take_ready(self, n: int) -> list:
        """Up to ``n`` more items already queued, without waiting (lossless batching)."""
        with self._cond:
            out = []
            while self._items and len(out) < n:
                out.append(self._items.popleft())
            if out:
                self._cond.notify_all()
            return out

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return (0 if self._slot.empty else 1) if self.drop_oldest else len(self._items)
