"""Frame sources for streaming: a small protocol and adapters for every input usedge reads.

A :class:`Source` is opened once, then read until it returns ``None`` (a clean end: end of file, or a
finite phantom). A *live* source (camera, URL, capture card, phantom) delivers frames in real time whether or
not anyone reads them; a *file* source (video file, DICOM cine, image folder) waits for the reader. A fault
is an exception from ``open`` or ``read``: the stream reconnects live sources (close, back off, ``open``
again) and ends file sources with a terminal error event.

    class MyGrabber:                     # any object with these members is a Source
        live = True
        name = "grabber:0"
        def open(self) -> None: ...      # connect; raise SourceError if it cannot
        def read(self) -> Frame | None:  # block until the next frame; raise on a fault
            ...
        def close(self) -> None: ...     # release; must be safe to call twice
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from usedge.data.frames import DEFAULT_FPS, Frame
from usedge.errors import ConfigError, SourceError
from usedge.stream.slot import LatestSlot

__all__ = ["CameraSource", "DicomSource", "ImageFolderSource", "PacedReplay", "PhantomSource", "ReaderSource", "Source",
           "PushSource", "UrlSource", "VideoFileSource", "echo_cine_path", "open_source"]

#: The 120-frame SonoSite echo cine shipped in pydicom-data (JPEG baseline, 30 frames/s, with a scan region).
ECHO_CINE = "color3d_jpeg_baseline.dcm"


@runtime_checkable
class Source(Protocol):
    """What the stream reads. ``read`` returns the next :class:`Frame`, ``None`` at a clean end, or raises."""

    live: bool
    name: str

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


class ReaderSource:
    """A Source over any usedge reader factory (``open_video``, ``open_dicom``, ``ImageSequence``, ...).

    Args:
        factory: called by :meth:`open` (and again on every reconnect); returns an object with ``read()``
            or an iterable of :class:`Frame`.
        name: the path, index or URL, for messages.
        live: True for cameras and streams.
        end_is_fault: a live reader returning None means the feed stopped, not the end: raise so the stream
            reconnects (OpenCV reports a dropped camera/stream this way).

    Frames of a live source are renumbered so indices keep increasing across reconnects.
    """

    def __init__(self, factory: Callable[[], Any], name: str, live: bool = False, end_is_fault: bool | None = None):
        self.factory = factory
        self.name = name
        self.live = live
        self.end_is_fault = live if end_is_fault is None else end_is_fault
        self.fps: float | None = None
        self._reader: Any = None
        self._iter: Iterator[Frame] | None = None
        self._count = 0

    def open(self) -> None:
        self.close()
        self._reader = self.factory()
        fps = getattr(self._reader, "fps", None)
        self.fps = float(fps) if fps else None
        if not hasattr(self._reader, "read"):
            self._iter = iter(self._reader)

    def read(self) -> Frame | None:
        if self._reader is None:
            raise SourceError(f"{self.name} is not open.", fix="call open() first (the stream does this for you).")
        frame = self._reader.read() if self._iter is None else next(self._iter, None)
        if frame is None:
            if self.end_is_fault:
                raise SourceError(f"{self.name} stopped delivering frames.",
                                  fix="check the cable / network; the stream reconnects automatically.")
            return None
        if self.live:
            frame = replace(frame, index=self._count)
        self._count += 1
        return frame

    def close(self) -> None:
        reader, self._reader, self._iter = self._reader, None, None
        if reader is not None and hasattr(reader, "close"):
            reader.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, live={self.live})"


def wait_tick(next_t: float, fps: float) -> tuple[float, float]:
    """Sleep until ``next_t`` (monotonic clock); return (now, the next tick). A late caller gets no burst:
    the next tick is counted from now."""
    delay = next_t - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    now = time.monotonic()
    return now, max(next_t + 1.0 / fps, now)


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{what} {path} does not exist.", fix="check the path.")
    return path


class VideoFileSource(ReaderSource):
    """Every frame of a video file, in order (a file source)."""

    def __init__(self, path: str | os.PathLike):
        from usedge.data.video import open_video

        path = _existing_file(path, "video file")
        super().__init__(lambda: open_video(path), str(path), live=False)


class CameraSource(ReaderSource):
    """A camera or frame grabber that OpenCV can open by index (a live source)."""

    def __init__(self, index: int, *, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0):
        from usedge.data.video import open_video

        super().__init__(lambda: open_video(int(index), open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s),
                         f"camera {index}", live=True)


class UrlSource(ReaderSource):
    """A network stream (rtsp://, http(s)://, udp://, ...) through OpenCV/FFmpeg (a live source)."""

    def __init__(self, url: str, *, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0):
        from usedge.data.video import open_video

        super().__init__(lambda: open_video(url, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s),
                         url, live=True)


class DicomSource(ReaderSource):
    """A DICOM cine (or single image): frames carry the file's frame time and its 2D tissue scan region."""

    def __init__(self, path: str | os.PathLike):
        from usedge.data.dicom import open_dicom

        path = _existing_file(path, "DICOM file")
        super().__init__(lambda: open_dicom(path), str(path), live=False)


class ImageFolderSource(ReaderSource):
    """The images of a folder in natural order (2 before 10), spaced ``1 / fps`` apart."""

    def __init__(self, folder: str | os.PathLike, fps: float = DEFAULT_FPS):
        from usedge.data.video import ImageSequence

        folder = Path(folder)
        if not folder.is_dir():
            raise SourceError(f"image folder {folder} does not exist.", fix="check the path.")
        super().__init__(lambda: ImageSequence.from_folder(folder, fps=fps), str(folder), live=False)


class PhantomSource:
    """A live phantom cine (smoothly moving probe) paced at ``fps`` frames per second.

    Frames are rendered on demand by :func:`usedge.data.phantom.iter_cine`; ``read`` sleeps until the next
    tick (never bursts to catch up after a stall). ``frames=None`` runs until the stream is stopped.
    Timestamps are seconds since :meth:`open` on the monotonic clock, like a camera.
    """

    live = True

    def __init__(self, fps: float = 30.0, task: str = "fetal_head", size: int = 256, seed: int = 0,
                 frames: int | None = None):
        from usedge.data.phantom.generator import check_size
        from usedge.tasks import get_task

        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise ConfigError(f"phantom fps must be a positive number, got {fps!r}.", fix="e.g. fps=30.")
        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
            raise ConfigError(f"phantom frames must be a positive integer or None, got {frames!r}.")
        self.task = get_task(task).id
        self.size = check_size(size)
        self.fps = float(fps)
        self.seed = int(seed)
        self.frames = frames
        self.name = f"phantom:{self.task}@{self.fps:g}fps"
        self._iter: Iterator | None = None
        self._t0 = 0.0
        self._next = 0.0
        self._index = 0

    def open(self) -> None:
        from usedge.data.phantom.cine import iter_cine

        # continue the same cine across reconnects (frame numbers keep increasing)
        remaining = (self.frames - self._index) if self.frames is not None else 1 << 40
        self._iter = iter_cine(self.task, max(remaining, 1), self.seed, self.size) if remaining > 0 else iter(())
        self._t0 = time.monotonic() - self._index / self.fps
        self._next = time.monotonic()

    def read(self) -> Frame | None:
        if self._iter is None:
            raise SourceError(f"{self.name} is not open.", fix="call open() first (the stream does this for you).")
        if self.frames is not None and self._index >= self.frames:
            return None
        now, self._next = wait_tick(self._next, self.fps)
        sample = next(self._iter, None)
        if sample is None:
            return None
        from usedge.data.phantom.generator import mm_per_pixel

        frame = Frame(image=sample.image, index=self._index, timestamp_s=now - self._t0, source=self.name,
                      meta={"kind": "phantom", "task": self.task, "mm_per_pixel": mm_per_pixel(sample.meta)})
        self._index += 1
        return frame

    def close(self) -> None:
        self._iter = None

    def __repr__(self) -> str:
        return f"PhantomSource(task={self.task!r}, fps={self.fps:g}, size={self.size}, seed={self.seed})"


class PushSource:
    """A live source fed from outside: ``push(image)`` from any thread (a browser webcam callback, a scanner SDK),
    the stream's capture thread ``read``s. Only the newest pushed frame is kept, so a slow model never builds a
    backlog (latest frame wins here as well as in the stream). ``read`` returns None (a clean end) once no frame
    has arrived for ``idle_timeout_s`` or after :meth:`end`."""

    live = True

    def __init__(self, name: str = "push", idle_timeout_s: float = 10.0) -> None:
        if not (isinstance(idle_timeout_s, (int, float)) and idle_timeout_s > 0):
            raise ConfigError(f"idle_timeout_s must be a positive number, got {idle_timeout_s!r}.")
        self.name = name
        self.idle_timeout_s = float(idle_timeout_s)
        self._cond = threading.Condition()
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._ended = False
        self._index = 0
        self._t0: float | None = None

    def push(self, image: np.ndarray, region: Any = None) -> bool:
        """Offer a frame (H×W grey or H×W×3 BGR); False once the source has ended."""
        with self._cond:
            if self._ended:
                return False
            now = time.monotonic()
            self._t0 = now if self._t0 is None else self._t0
            self._slot.put(Frame(image=image, index=self._index, timestamp_s=now - self._t0, source=self.name,
                                 region=region, meta={"kind": "push"}))
            self._index += 1
            self._cond.notify_all()
            return True

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        with self._cond:
            deadline = time.monotonic() + self.idle_timeout_s
            while self._slot.empty and not self._ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._ended = True
                    break
                self._cond.wait(left)
            return self._slot.take()

    @property
    def replaced(self) -> int:
        """Frames overwritten before the stream read them."""
        return self._slot.dropped

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended

    def close(self) -> None:
        self.end()

    def __repr__(self) -> str:
        return f"PushSource(name={self.name!r}, idle_timeout_s={self.idle_timeout_s:g})"


class PacedReplay:
    """Replay a recording (DICOM cine, video, image folder) as a live probe: frames are read once into memory
    (capped by ``max_frames``) and delivered at ``fps`` on the monotonic clock, looping ``loops`` times
    (None: forever). For latency benchmarks and demos that need live-source semantics from a file.

    Frames keep their scan region; indices keep increasing across loops.
    """

    live = True

    def __init__(self, inner: Any, fps: float = 30.0, loops: int | None = 1, max_frames: int = 2000):
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise ConfigError(f"replay fps must be a positive number, got {fps!r}.", fix="e.g. fps=30.")
        if loops is not None and (isinstance(loops, bool) or not isinstance(loops, int) or loops < 1):
            raise ConfigError(f"loops must be a positive integer or None, got {loops!r}.")
        self.inner = open_source(inner)
        self.fps, self.loops, self.max_frames = float(fps), loops, int(max_frames)
        self.name = f"replay:{self.inner.name}@{self.fps:g}fps"
        self._frames: list[Frame] = []
        self._i = 0
        self._next = 0.0

    def open(self) -> None:
        if not self._frames:
            self.inner.open()
            try:
                while len(self._frames) < self.max_frames and (f := self.inner.read()) is not None:
                    self._frames.append(f)
            finally:
                self.inner.close()
            if not self._frames:
                raise SourceError(f"{self.inner.name} holds no frames to replay.", fix="check the file.")
        self._next = time.monotonic()

    def read(self) -> Frame | None:
        n = len(self._frames)
        if n == 0:
            raise SourceError(f"{self.name} is not open.", fix="call open() first (the stream does this for you).")
        if self.loops is not None and self._i >= n * self.loops:
            return None
        now, self._next = wait_tick(self._next, self.fps)
        frame = replace(self._frames[self._i % n], index=self._i, timestamp_s=self._i / self.fps)
        self._i += 1
        return frame

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"PacedReplay({self.inner.name!r}, fps={self.fps:g}, loops={self.loops})"


def echo_cine_path() -> Path:
    """The SonoSite echo cine of pydicom-data (120 frames, 30 frames/s), without downloading anything."""
    try:
        from pydicom.data import get_testdata_file

        path = get_testdata_file(ECHO_CINE, download=False)
    except Exception as exc:  # noqa: BLE001 - pydicom-data missing or broken
        path, why = None, f" ({exc})"
    else:
        why = ""
    if not path or not Path(path).is_file():
        raise SourceError(f"the demo echo cine {ECHO_CINE} is not installed{why}.",
                          fix="pip install pydicom-data, or pass a DICOM / video path instead of 'echo'.")
    return Path(path)


def open_source(spec: Any, *, fps: float | None = None, task: str = "fetal_head", size: int = 256,
                seed: int = 0) -> Source:
    """Turn what a user typed into a Source.

    Args:
        spec: a Source (returned as is); "phantom" (live phantom at ``fps``, default 30); "echo" (the
            pydicom-data SonoSite cine); a camera index (int or digit string); a URL; a DICOM file; a folder
            of images; an image or video file.
        fps: phantom pace, or the frame spacing of image folders.
        task, size, seed: phantom settings.
    """
    if isinstance(spec, Source) and not isinstance(spec, (str, bytes)):
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return CameraSource(int(spec))
    if not isinstance(spec, (str, os.PathLike)):
        raise ConfigError(f"cannot stream from a {type(spec).__name__}.",
                          fix="pass a path, a camera index, a URL, 'phantom', 'echo' or a Source object.")
    text = os.fspath(spec)
    if text == "phantom":
        return PhantomSource(fps=fps or 30.0, task=task, size=size, seed=seed)
    if text == "echo":
        return DicomSource(echo_cine_path())
    return _open_path_or_url(text, fps)


def _image_file(path: Path, fps: float | None) -> Source:
    from usedge.data.video import ImageSequence

    return ReaderSource(lambda: ImageSequence([path], fps=fps or DEFAULT_FPS), str(path), live=False)


#: source kind (:func:`usedge.data.video.source_kind`, the one classification) -> stream Source
STREAM_SOURCES: dict[str, Callable[[Any, float | None], Source]] = {
    "device": lambda target, fps: CameraSource(int(target)),
    "url": lambda target, fps: UrlSource(str(target)),
    "folder": lambda path, fps: ImageFolderSource(path, fps=fps or DEFAULT_FPS),
    "dicom": lambda path, fps: DicomSource(path),
    "image": _image_file,
    "video": lambda path, fps: VideoFileSource(path),
}


def _open_path_or_url(text: str, fps: float | None) -> Source:
    from usedge.data.video import source_kind

    kind, target = source_kind(text, fix="pass an existing file or folder, a camera index, a URL, 'phantom' or 'echo'.")
    return STREAM_SOURCES[kind](target, fps)
