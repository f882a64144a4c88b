"""Read video files, cameras, network streams and images as :class:`~usedge.data.frames.Frame` s.

:func:`open_video` wraps ``cv2.VideoCapture`` (PyAV for files, where installed); :func:`open_frames` picks the
right reader for any input (DICOM file, image file, folder of images, video file, camera index or URL). Every
reader yields the same :class:`Frame`: BGR (or grey for grey images/DICOM), with a timestamp in seconds since the first frame.

Example::

    with open_frames("scan.mp4") as frames:
        for frame in frames:
            print(frame.index, frame.timestamp_s, frame.image.shape)
"""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from usedge._io import read_image
from usedge.data.dicom import is_dicom_file, open_dicom
from usedge.data.frames import DEFAULT_FPS, Frame, FrameSource
from usedge.errors import DataError, SourceError

__all__ = ["VideoSource", "ImageSequence", "open_video", "open_frames", "IMAGE_SUFFIXES", "DICOM_SUFFIXES"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"})
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _kind(source: str | int | os.PathLike) -> tuple[str, str | int]:
    """Classify ``source`` as ("device", index), ("url", url) or ("file", path string)."""
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return "device", int(source)
    text = os.fspath(source)
    if text.isdigit() and not Path(text).exists():
        return "device", int(text)
    if _URL.match(text):
        return "url", text
    return "file", text


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class _AvCapture:
    """A video file through PyAV (FFmpeg's libraries) behind ``cv2.VideoCapture``'s interface. OpenCV rescales
    every picture of a file to the first picture's size (a clip whose size changes mid-stream arrives distorted,
    its results in the wrong grid); here each frame comes at its own size, so :class:`VideoSource` can see it."""

    def __init__(self, path: str) -> None:
        import av

        self._error = av.FFmpegError
        self._pos_ms = 0.0
        self._container = None
        try:
            self._container = av.open(path)
            self._stream = self._container.streams.video[0]
        except (self._error, IndexError, OSError, ValueError):
            self.release()
            return
        self._stream.thread_type = "AUTO"
        self._frames = self._container.decode(self._stream)
        # one reformatter per file: it keeps its scaling context (to_ndarray makes a new one per frame: 2x slower)
        from av.video.reformatter import VideoReformatter

        self._to_bgr = VideoReformatter()

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's name)
        return self._container is not None

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return float(self._stream.average_rate or 0.0)
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(self._stream.frames or 0)
        if prop == cv2.CAP_PROP_POS_MSEC:
            return self._pos_ms
        return 0.0

    def getBackendName(self) -> str:  # noqa: N802
        return "PyAV"

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._container is None:
            return False, None
        try:
            frame = next(self._frames)
        except (StopIteration, self._error):   # a damaged tail ends the file, as in OpenCV (then _check_complete)
            return False, None
        self._pos_ms = float(frame.time) * 1000.0 if frame.time is not None else math.nan
        return True, self._to_bgr.reformat(frame, format="bgr24").to_ndarray()

    def release(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def _file_capture(path: str) -> cv2.VideoCapture | _AvCapture:
    """PyAV where it is installed (``usedge[cpu]``), else OpenCV (which cannot see a change of frame size)."""
    try:
        import av  # noqa: F401
    except ImportError:
        return cv2.VideoCapture(path)
    return _AvCapture(path)


class VideoSource:
    """Frames from a video file, a camera or a network stream, through ``cv2.VideoCapture``.

    Use :func:`open_video` to create one. The first frame is read when opening, so a source that opens
    but delivers nothing fails at once with a :class:`SourceError`.

    Attributes:
        source: the path, device index or URL as text.
        kind: "file", "device" or "url".
        fps: frames per second reported by the container/driver, or None if unknown.
        num_frames: frame count of a file (as reported by the container), None for live sources.
        frame_size: (width, height) in pixels, like OpenCV.
    """

    def __init__(
        self, source: str | int | os.PathLike, *, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0
    ) -> None:
        self.kind, target = _kind(source)
        self.source = str(target)
        if self.kind == "file" and not Path(target).is_file():
            what = "is a folder" if Path(target).is_dir() else "does not exist"
            raise SourceError(f"Video file {target} {what}.", fix="check the path.")
        self._cap = self._open(target, open_timeout_s, read_timeout_s)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps: float | None = fps if math.isfinite(fps) and 0 < fps <= 1000 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self.kind == "file" else 0
        self.num_frames: int | None = count if count > 0 else None
        self.backend = str(self._cap.getBackendName())
        self._index = 0
        self._last_ts = -1.0
        self._t0: float | None = None
        self._pos0: float | None = None
        self._pending = self._grab()
        if self._pending is None:
            self._cap.release()
            what = "has no decodable frames" if self.kind == "file" else "opened but delivered no frame"
            raise SourceError(f"{self._describe().capitalize()} {what}.", fix=self._fix())
        h, w = self._pending[0].shape[:2]
        self.frame_size = (int(w), int(h))

    def _open(self, target: str | int, open_timeout_s: float, read_timeout_s: float) -> cv2.VideoCapture:
        if self.kind == "url":  # FFmpeg honours the timeouts; other backends may reject unknown parameters
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000),
            ]
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        elif self.kind == "file":
            cap = _file_capture(str(target))
        else:
            cap = cv2.VideoCapture(target)
        if cap.isOpened():
            return cap
        cap.release()
        raise SourceError(f"Could not open {self._describe()}.", fix=self._fix())

    def _describe(self) -> str:
        return {"file": "video file", "device": "camera", "url": "stream"}[self.kind] + f" {self.source}"

    def _fix(self) -> str:
        if self.kind == "file":
            return "check that it is a video OpenCV can decode (e.g. .mp4, .avi); re-encode it with ffmpeg if not."
        if self.kind == "device":
            return "check that the camera or frame grabber is connected and free; try another index (0, 1, ...)."
        return "check the URL, that the server is running and reachable, and any credentials in the URL."

    def _grab(self) -> tuple[np.ndarray, float] | None:
        """Read one image and its timestamp, or None when the source has nothing more."""
        ok, image = self._cap.read()
        if not ok or image is None:
            return None
        return image, self._timestamp()

    def _timestamp(self) -> float:
        """Seconds since the first frame: container time for files, the monotonic clock for live sources."""
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        if self.kind != "file":
            return now - self._t0
        pos_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        if self._pos0 is None:
            self._pos0 = pos_ms if math.isfinite(pos_ms) else 0.0
        return (pos_ms - self._pos0) / 1000.0

    def read(self) -> Frame | None:
        """The next frame, or None at the end of a file or when a live source stops delivering."""
        if self._cap is None:
            return None
        grabbed, self._pending = self._pending or self._grab(), None
        if grabbed is None:
            self._check_complete()
            return None
        image, ts = grabbed
        self._check_size(image)
        if not math.isfinite(ts) or (self._index > 0 and ts <= self._last_ts):
            ts = max(self._index / (self.fps or DEFAULT_FPS), self._last_ts + 1e-6)  # no usable positions
        frame = Frame(
            image=_to_bgr(image), index=self._index, timestamp_s=ts, source=self.source,
            meta={"kind": self.kind, "backend": self.backend},
        )
        self._index += 1
        self._last_ts = ts
        return frame

    def _check_size(self, image: np.ndarray) -> None:
        """One source, one pixel grid: a frame of another size (a clip spliced from two depth settings, a grabber
        that switched resolution) would put its results, trackers, smoothing and overlay in the wrong grid."""
        size = (int(image.shape[1]), int(image.shape[0]))
        if size == self.frame_size:
            return
        self.close()
        raise SourceError(f"{self._describe().capitalize()} changes frame size at frame {self._index}: "
                          f"{size[0]}x{size[1]}, the frames before were {self.frame_size[0]}x{self.frame_size[1]} "
                          f"(those {self._index} frames were read).",
                          fix="split it where the size changes and stream each part, or re-encode it to one size "
                              "(ffmpeg -i IN -vf scale=W:H OUT.mp4).")

    def _check_complete(self) -> None:
        """A file that ends well before the frame count in its header is damaged: say so, once (the frames
        before the damage were delivered). A few frames of slack: some containers round their count."""
        expected, got = self.num_frames, self._index
        if self.kind != "file" or not expected or got >= expected - max(2, expected // 100) or self._cap is None:
            return
        self.close()
        raise SourceError(f"{self._describe().capitalize()} ended after {got} of the {expected} frames its header "
                          "announces: the file is truncated or damaged.",
                          fix="re-copy the file, or re-encode what is left (ffmpeg -i IN -c:v libx264 OUT.mp4); "
                              f"the first {got} frames were read.")

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"VideoSource({self.source!r}, kind={self.kind}, fps={self.fps}, frames={self.num_frames}, "
            f"size={self.frame_size})"
        )


def open_video(
    source: str | int | os.PathLike, *, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0
) -> VideoSource:
    """Open a video file, a camera (an int or a digit string) or a stream URL (rtsp://, http(s)://, ...).

    Args:
        source: the path, device index or URL.
        open_timeout_s: how long to wait for a stream to connect (FFmpeg backend).
        read_timeout_s: how long to wait for one frame of a stream (FFmpeg backend).

    Raises:
        SourceError: missing file, undecodable or empty video, unavailable camera, unreachable stream.
    """
    return VideoSource(source, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s)


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageSequence:
    """Frames from image files (one image, or a folder's images in natural order: 2 before 10).

    Images keep their depth; grey images stay H×W, colour ones are BGR. Images carry no timing, so frames
    are spaced ``1 / fps`` apart.
    """

    def __init__(
        self, paths: Sequence[str | os.PathLike], *, fps: float = DEFAULT_FPS, source: str | None = None
    ) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            suffixes = "/".join(sorted(IMAGE_SUFFIXES))
            raise SourceError(f"No images found in {source}.", fix=f"put {suffixes} files there.")
        self.source = source or str(self.paths[0])
        self.fps: float | None = fps
        self.num_frames: int | None = len(self.paths)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, *, fps: float = DEFAULT_FPS) -> ImageSequence:
        folder = Path(folder)
        images = (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        return cls(sorted(images, key=_natural_key), fps=fps, source=str(folder))

    def frame(self, index: int) -> Frame:
        if not 0 <= index < len(self.paths):
            raise SourceError(f"Frame index {index} is out of range for {self.source} ({len(self.paths)} images).")
        try:
            image = read_image(self.paths[index])
        except DataError as exc:
            raise SourceError(exc.message, fix="replace or remove the file.") from exc
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        timestamp_s = index / (self.fps or DEFAULT_FPS)
        return Frame(image=image, index=index, timestamp_s=timestamp_s, source=str(self.paths[index]))

    def __iter__(self) -> Iterator[Frame]:
        return (self.frame(i) for i in range(len(self.paths)))

    def __len__(self) -> int:
        return len(self.paths)

    def close(self) -> None:
        pass

    def __enter__(self) -> ImageSequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def source_kind(source: str | int | os.PathLike, fix: str = "check the path.") -> tuple[str, str | int | Path]:
    """What a user-given source is, decided in one place for :func:`open_frames` and ``usedge.stream``:
    ("device", index), ("url", url), ("folder" | "dicom" | "image" | "video", path). DICOM is recognised by its
    suffix or its ``DICM`` header.

    Raises:
        SourceError: a path that does not exist (``fix`` says what else may be passed).
    """
    kind, target = _kind(source)
    if kind != "file":
        return kind, target
    path = Path(target)
    if path.is_dir():
        return "folder", path
    if not path.exists():
        raise SourceError(f"{path} does not exist.", fix=fix)
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES or is_dicom_file(path):
        return "dicom", path
    return ("image" if suffix in IMAGE_SUFFIXES else "video"), path


#: source kind -> reader (fps: the frame rate given to images and folders, which carry no timing)
FRAME_READERS = {
    "device": lambda target, fps: open_video(target),
    "url": lambda target, fps: open_video(target),
    "folder": lambda path, fps: ImageSequence.from_folder(path, fps=fps),
    "dicom": lambda path, fps: open_dicom(path),
    "image": lambda path, fps: ImageSequence([path], fps=fps),
    "video": lambda path, fps: open_video(path),
}


def open_frames(source: str | int | os.PathLike, *, fps: float = DEFAULT_FPS) -> FrameSource:
    """Open any frame source: DICOM file, image file, folder of images, video file, camera index or URL
    (:func:`source_kind`, then :data:`FRAME_READERS`).

    Args:
        source: what to read. DICOM is recognised by its suffix or its ``DICM`` header.
        fps: frame rate given to image files and folders (they carry no timing).

    Raises:
        SourceError: the source does not exist or cannot be read.
    """
    kind, target = source_kind(source)
    return FRAME_READERS[kind](target, fps)
