"""The source and sink contracts the stream relies on, as base classes (like tests/runtime/test_backend_contract):
each concrete source and sink subclasses one, so a new one gets the same checks."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from usedge.data.frames import Frame
from usedge.errors import ConfigError
from usedge.stream import (
    CallbackSink,
    DicomSource,
    ImageFolderSink,
    ImageFolderSource,
    JsonlSink,
    PhantomSource,
    Sink,
    Stream,
    VideoFileSource,
    VideoSink,
)
from usedge.stream.sinks import as_sink


# -- sources --------------------------------------------------------------------------------------------------
class SourceContract:
    """open -> frames with increasing index and timestamp, then None at the end of a file; close is idempotent."""

    frames = 3

    def make(self, tmp_path):
        raise NotImplementedError

    def test_frames_in_order_then_a_clean_end(self, tmp_path):
        source = self.make(tmp_path)
        source.open()
        try:
            got = [source.read() for _ in range(self.frames)]
            assert all(isinstance(f, Frame) and f.image.ndim in (2, 3) and f.image.size for f in got)
            assert [f.index for f in got] == sorted(f.index for f in got) and len({f.index for f in got}) == len(got)
            stamps = [f.timestamp_s for f in got]
            assert all(b > a for a, b in zip(stamps, stamps[1:]))
            if not source.live:
                while source.read() is not None:
                    pass
                assert source.read() is None                     # the end stays the end
        finally:
            source.close()
        source.close()                                          # twice is fine
        assert isinstance(source.live, bool) and str(source.name)


class TestImageFolderSource(SourceContract):
    def make(self, tmp_path):
        for i in range(4):
            cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((24, 32), 40 * i, np.uint8))
        return ImageFolderSource(tmp_path)


class TestVideoFileSource(SourceContract):
    def make(self, tmp_path):
        path = tmp_path / "clip.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (32, 24))
        for i in range(5):
            writer.write(np.full((24, 32, 3), 30 * i, np.uint8))
        writer.release()
        return VideoFileSource(path)


class TestDicomSource(SourceContract):
    frames = 2

    def make(self, tmp_path):
        from pydicom.data import get_testdata_file

        return DicomSource(get_testdata_file("OBXXXX1A_2frame.dcm"))


class TestPhantomSource(SourceContract):
    def make(self, tmp_path):
        return PhantomSource(fps=200.0, size=64)


# -- sinks ----------------------------------------------------------------------------------------------------
class SinkContract:
    """Results written by the stream are all there after close; a stream that fails before any frame leaves
    no output of a sink whose :attr:`Sink.empty` is true; every sink is a :class:`Sink`."""

    def make(self, tmp_path) -> Sink:
        raise NotImplementedError

    def written(self, sink, tmp_path) -> int:
        """How many results the finished output holds."""
        raise NotImplementedError

    def test_is_a_sink_and_keeps_every_result(self, tmp_path, image_folder, fake_predictor):
        sink = self.make(tmp_path)
        assert isinstance(sink, Sink)
        summary = Stream(ImageFolderSource(image_folder), fake_predictor, sinks=[sink], warmup=0).run()
        assert self.written(sink, tmp_path) == summary["frames_out"] > 0

    def test_a_stream_that_fails_at_once_leaves_nothing(self, tmp_path, make_predictor):
        from usedge.errors import SourceError

        class Broken:
            live, name = False, "broken"

            def open(self):
                pass

            def read(self):
                raise SourceError("the source broke before its first frame")

            def close(self):
                pass

        sink = self.make(tmp_path)
        with pytest.raises(SourceError):
            Stream(Broken(), make_predictor(), sinks=[sink], warmup=0).run()
        if sink.empty:
            assert self.written(sink, tmp_path) == 0


class TestJsonlSink(SinkContract):
    def make(self, tmp_path):
        return JsonlSink(tmp_path / "out.jsonl")

    def written(self, sink, tmp_path):
        path = tmp_path / "out.jsonl"
        assert not sink.partial.exists()
        return sum(json.loads(ln)["event"] == "result" for ln in path.read_text().splitlines()) if path.exists() else 0


class TestImageFolderSink(SinkContract):
    def make(self, tmp_path):
        return ImageFolderSink(tmp_path / "sink-out")

    def written(self, sink, tmp_path):
        return len(list((tmp_path / "sink-out").glob("*.png"))) if (tmp_path / "sink-out").exists() else 0


class TestVideoSink(SinkContract):
    def make(self, tmp_path):
        return VideoSink(tmp_path / "out.avi", fps=10)

    def written(self, sink, tmp_path):
        from usedge.data.video import open_video

        path = tmp_path / "out.avi"
        if not path.exists():
            return 0
        with open_video(path) as video:
            return sum(1 for _ in video)


class TestCallbackSink(SinkContract):
    def make(self, tmp_path):
        self.seen = []
        return CallbackSink(self.seen.append)

    def written(self, sink, tmp_path):
        return len(self.seen)


def test_a_plain_object_with_write_is_adapted_and_anything_else_refused():
    class Mine:
        def __init__(self):
            self.n, self.closed = 0, False

        def write(self, event):
            self.n += 1

        def close(self):
            self.closed = True

    mine = Mine()
    adapted = as_sink(mine)
    adapted.write(None)
    adapted.error(None)                  # Mine has no error(): ignored, as the base class does
    adapted.close()
    assert (mine.n, mine.closed) == (1, True) and as_sink(adapted) is adapted
    with pytest.raises(ConfigError, match="is not a sink: it has no write"):
        as_sink(object())
