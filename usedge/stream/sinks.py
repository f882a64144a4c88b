"""Where stream results go: subclasses of :class:`Sink` (``write(event)``, ``error(event)`` for frames the
predictor failed on, ``close()``, ``abort()`` when the stream failed before anything was written).
``event`` is a :class:`~usedge.stream.events.StreamEvent`: ``.result`` (FrameResult), ``.frame`` (the Frame),
``.seq``, ``.latency_ms``, ``.hud`` (fps / latency for overlays).

Files are written so that nothing is lost and nothing half-written is mistaken for a finished file:
videos and JSON-lines go to a temporary name next to the target and are renamed on ``close()``; JSON-lines
are flushed line by line (after a crash the ``.partial`` file holds every record written so far).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from usedge._io import publish
from usedge.errors import ConfigError, DataError
from usedge.stream.overlay import draw, to_bgr8

__all__ = ["CallbackSink", "ImageFolderSink", "JsonlSink", "Sink", "VideoSink", "WindowSink", "as_sink"]


class Sink:
    """The sink contract the stream calls: :meth:`write` per result, :meth:`error` per failed frame (ignored
    unless overridden), then :meth:`close` at the end, or :meth:`abort` instead when the stream failed and
    :attr:`empty` says nothing was written (a sink drops its partial output there; by default it closes)."""

    def write(self, event: Any) -> None:
        raise NotImplementedError

    def error(self, event: Any) -> None:
        """A frame the predictor failed on (``event.message``); nothing by default."""

    def close(self) -> None:
        """The stream ended: finish and publish the output."""

    def abort(self) -> None:
        """The stream failed before this sink wrote anything: leave no output behind (default: close)."""
        self.close()

    @property
    def empty(self) -> bool:
        """Whether nothing was written yet (then a failed stream aborts instead of closing)."""
        return False


class _Adapted(Sink):
    """Any object with ``write(event)`` (and optionally ``error``, ``close``) used as a sink."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def write(self, event: Any) -> None:
        self.obj.write(event)

    def error(self, event: Any) -> None:
        if callable(getattr(self.obj, "error", None)):
            self.obj.error(event)

    def close(self) -> None:
        if callable(getattr(self.obj, "close", None)):
            self.obj.close()


def as_sink(obj: Any) -> Sink:
    """``obj`` itself when it is a :class:`Sink`; else wrapped, when it has ``write(event)``."""
    if isinstance(obj, Sink):
        return obj
    if not callable(getattr(obj, "write", None)):
        raise ConfigError(f"{type(obj).__name__} is not a sink: it has no write(event).",
                          fix="subclass usedge.stream.Sink, or pass an object with write(event) and close().")
    return _Adapted(obj)


def _overlay(event: Any, overlay: bool, opacity: float) -> np.ndarray:
    image = event.frame.image
    return draw(image, event.result, opacity=opacity, hud=event.hud) if overlay else to_bgr8(image)


class CallbackSink(Sink):
    """Calls ``fn(event)`` for every result (and ``on_error(event)`` for failed frames, if given)."""

    def __init__(self, fn: Callable[[Any], Any], on_error: Callable[[Any], Any] | None = None) -> None:
        self.fn = fn
        self.on_error = on_error

    def write(self, event: Any) -> None:
        self.fn(event)

    def error(self, event: Any) -> None:
        if self.on_error is not None:
            self.on_error(event)

    def close(self) -> None:
        pass


class WindowSink(Sink):
    """Shows the overlay in an OpenCV window; 'q' or Esc ends the stream. Needs a display."""

    def __init__(self, title: str = "usedge", overlay: bool = True, opacity: float = 0.4) -> None:
        self.title = title
        self.overlay = overlay
        self.opacity = opacity
        self._open = False

    def write(self, event: Any) -> None:
        from usedge.stream.events import StopStream

        try:
            cv2.imshow(self.title, _overlay(event, self.overlay, self.opacity))
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as exc:
            raise DataError(f"cannot open a window ({exc.msg.strip()}).",
                            fix="run on a machine with a display and a GUI build of OpenCV (opencv-python), or "
                                "drop --show and use --save / --jsonl.") from None
        self._open = True
        if key in (ord("q"), 27):
            raise StopStream()

    def close(self) -> None:
        if self._open:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._open = False


#: container suffix -> the OpenCV fourcc written (VP8 WebM is the one browsers play that pip OpenCV can encode)
FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".webm": "VP80"}
#: the smallest frame side the encoders take (a 1×1 cine made OpenCV's VP8 writer fail to open)
MIN_VIDEO_SIDE = 2


class VideoSink(Sink):
    """Writes overlays (or raw frames) to a video: mp4v for .mp4, MJPG for .avi, VP8 for .webm (plays in
    browsers); atomic on close.

    The size is fixed by the first frame (later frames of another size are resized to it); ``fps`` defaults
    to 30.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None, overlay: bool = True,
                 opacity: float = 0.4) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC:
            raise ConfigError(f"video sink {self.path}: unsupported suffix.", fix="use a .mp4, .avi or .webm file name.")
        self.fps = float(fps or 30.0)
        self.overlay = overlay
        self.opacity = opacity
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None

    def _open(self, width: int, height: int) -> None:
        if width < MIN_VIDEO_SIDE or height < MIN_VIDEO_SIDE:
            # the encoders refuse such frames, which read as "OpenCV cannot write VP80 video": blame the frame
            raise DataError(f"video sink {self.path}: the frames are {width}×{height} pixels, too small to encode "
                            f"as video (at least {MIN_VIDEO_SIDE}×{MIN_VIDEO_SIDE}).",
                            fix="check the source's frames; write them as images (--frames-dir) instead.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = FOURCC[self.path.suffix.lower()]
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix, dir=self.path.parent)
        os.close(fd)
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), self.fps, (width, height), True)
        if not writer.isOpened():
            Path(tmp).unlink(missing_ok=True)
            raise DataError(f"OpenCV cannot write {fourcc} video to {self.path}.",
                            fix="try another container (.avi / .mp4 / .webm), or install opencv-python-headless.")
        self._writer, self._tmp, self._size = writer, Path(tmp), (width, height)

    def write(self, event: Any) -> None:
        image = _overlay(event, self.overlay, self.opacity)
        h, w = image.shape[:2]
        if self._writer is None:
            self._open(w, h)
        if (w, h) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.release()
        publish(self._tmp, self.path)


class ImageFolderSink(Sink):
    """One image per result, ``<folder>/frame_<index>.png`` (atomic per file)."""

    def __init__(self, folder: str | os.PathLike, overlay: bool = True, opacity: float = 0.4, ext: str = ".png") -> None:
        self.folder = Path(folder)
        self.overlay = overlay
        self.opacity = opacity
        self.ext = ext if ext.startswith(".") else f".{ext}"
        self.frames = 0

    def write(self, event: Any) -> None:
        image = _overlay(event, self.overlay, self.opacity)
        ok, buf = cv2.imencode(self.ext, image)
        if not ok:
            raise DataError(f"cannot encode frames as {self.ext}.", fix="use .png or .jpg.")
        self.folder.mkdir(parents=True, exist_ok=True)
        index = event.frame.index if event.frame is not None else event.seq
        path = self.folder / f"frame_{index:06d}{self.ext}"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
        self.frames += 1

    def close(self) -> None:
        pass


class JsonlSink(Sink):
    """One JSON object per line per processed frame, in order; flushed per line; renamed into place on close.

    Result records: ``{"event": "result", "seq", "frame_index", "timestamp_s", "latency_ms", "width",
    "height", "region", "timings_ms", "tasks": {...}}`` (the tasks as in ``FrameResult.to_json``). Failed
    frames: ``{"event": "frame_error", "seq", "frame_index", "timestamp_s", "error"}``.
    """

    def __init__(self, path: str | os.PathLike, contours: bool = False) -> None:
        self.path = Path(path)
        self.contours = contours
        self.records = 0
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._fh = None
        self._closed = False

    def _file(self):
        if self._closed:
            raise DataError(f"JSON-lines sink {self.path} is already closed.", fix="use a new JsonlSink per stream.")
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        return self._fh

    def _line(self, record: dict) -> None:
        fh = self._file()
        fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        fh.flush()
        self.records += 1

    def write(self, event: Any) -> None:
        body = event.result.to_json(contours=self.contours)
        frame = event.frame
        record = {"event": "result", "seq": event.seq, "frame_index": frame.index if frame else body.get("frame_index"),
                  "timestamp_s": frame.timestamp_s if frame else body.get("timestamp_s"),
                  "latency_ms": round(event.latency_ms, 3) if event.latency_ms is not None else None}
        body.pop("frame_index", None)
        body.pop("timestamp_s", None)
        self._line({**record, **body})

    def error(self, event: Any) -> None:
        frame = event.frame
        self._line({"event": "frame_error", "seq": event.seq, "frame_index": frame.index if frame else None,
                    "timestamp_s": frame.timestamp_s if frame else None, "error": event.message})

    @property
    def empty(self) -> bool:
        return self.records == 0

    def abort(self) -> None:
        """The stream failed: drop what was written, leave any existing file at ``path`` untouched."""
        if self._closed:
            return
        self._closed = True
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.partial.unlink(missing_ok=True)

    def close(self) -> None:
        if self._closed:
            return
        fh = self._file()          # an empty stream still leaves an (empty) file: nothing is implied lost
        self._fh, self._closed = None, True
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(self.partial, self.path)
