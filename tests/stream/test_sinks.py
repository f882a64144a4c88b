"""Sinks: JSON-lines complete and ordered, video and image files written atomically."""
import json

import cv2

from usedge.stream import ImageFolderSink, ImageFolderSource, JsonlSink, Stream, VideoSink


def test_jsonl_complete_and_ordered(image_folder, fake_predictor, tmp_path):
    out = tmp_path / "log" / "out.jsonl"
    sink = JsonlSink(out)
    s = Stream(ImageFolderSource(image_folder), fake_predictor, sinks=[sink])
    for n, _ in enumerate(s):
        if n == 2:
            assert not out.exists() and sink.partial.exists()       # flushed per line while running
            assert len(sink.partial.read_text().splitlines()) >= 3
    assert out.exists() and not sink.partial.exists()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame_index"] for r in records] == list(range(12)) == [r["seq"] for r in records]
    assert all(r["event"] == "result" and "organ_cls" in r["tasks"] and r["timestamp_s"] is not None
               and r["latency_ms"] > 0 for r in records)


def test_video_and_image_folder_sinks(image_folder, fake_predictor, tmp_path):
    video, folder = tmp_path / "out.avi", tmp_path / "png"
    Stream(ImageFolderSource(image_folder), fake_predictor, sinks=[VideoSink(video, fps=10), ImageFolderSink(folder)]).run()
    assert video.is_file() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert _frames(video) == 12
    assert sorted(p.name for p in folder.iterdir())[:2] == ["frame_000000.png", "frame_000001.png"]
    assert len(list(folder.iterdir())) == 12


def test_webm_sink_writes_vp8_the_browser_plays(image_folder, fake_predictor, tmp_path):
    video = tmp_path / "out.webm"
    Stream(ImageFolderSource(image_folder), fake_predictor, sinks=[VideoSink(video, fps=10)]).run()
    assert video.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML magic: a Matroska / WebM container
    assert _frames(video) == 12


def _frames(video) -> int:
    cap = cv2.VideoCapture(str(video))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def test_frames_too_small_to_encode_are_named_not_blamed_on_the_codec(tmp_path):
    """Issue 26, class 8: a 1×1 cine said "OpenCV cannot write VP80 video"."""
    from types import SimpleNamespace

    import numpy as np
    import pytest

    from usedge.errors import DataError

    sink = VideoSink(tmp_path / "out.webm", overlay=False)
    event = SimpleNamespace(frame=SimpleNamespace(image=np.zeros((1, 1, 3), np.uint8)), result=None, hud={})
    with pytest.raises(DataError, match="frames are 1×1 pixels, too small to encode"):
        sink.write(event)
    sink.close()
    assert list(tmp_path.iterdir()) == []                 # nothing half-written
