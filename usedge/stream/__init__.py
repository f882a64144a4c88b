"""Real-time streaming: sources -> Predictor -> sinks, with latency tracking, smoothing and overlays.

    import usedge.stream as us

    for result in us.stream("phantom", "out/bundle", tasks=["fetal_head"], max_frames=100):
        ...
    s = us.Stream("scan.dcm", "out/bundle", sinks=[us.JsonlSink("out.jsonl"), us.VideoSink("out.mp4")])
    s.run()
    print(s.tracker.table())

No torch anywhere in this package (it runs on a scanner with ``usedge[cpu]``). See docs/stream.md.
"""
from __future__ import annotations

from usedge.stream.events import EVENT_KINDS, FrameBuffer, ReconnectPolicy, StopStream, StreamEvent
from usedge.stream.overlay import draw
from usedge.stream.pipeline import Stream, stream
from usedge.stream.sinks import CallbackSink, ImageFolderSink, JsonlSink, Sink, VideoSink, WindowSink
from usedge.stream.smoothing import Smoother, SmoothingConfig, TaskSmoothing
from usedge.stream.sources import (
    CameraSource,
    DicomSource,
    ImageFolderSource,
    PacedReplay,
    PhantomSource,
    PushSource,
    ReaderSource,
    Source,
    UrlSource,
    VideoFileSource,
    echo_cine_path,
    open_source,
)
from usedge.stream.tracker import Tracker

__all__ = ["EVENT_KINDS", "CallbackSink", "CameraSource", "DicomSource", "FrameBuffer", "ImageFolderSink",
           "ImageFolderSource", "JsonlSink", "PacedReplay", "PhantomSource", "PushSource", "ReaderSource",
           "ReconnectPolicy", "Sink", "Smoother", "SmoothingConfig", "Source", "StopStream", "Stream", "StreamEvent",
           "TaskSmoothing", "Tracker", "UrlSource", "VideoFileSource", "VideoSink", "WindowSink", "draw",
           "echo_cine_path", "open_source", "stream"]
