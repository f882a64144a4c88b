"""Video, camera, stream and image-file frame sources (videos are written here with cv2.VideoWriter)."""
from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGBaseline8Bit

from usedge.data.dicom import DicomSeries
from usedge.data.frames import Frame, FrameSource
from usedge.data.video import ImageSequence, VideoSource, open_frames, open_video
from usedge.errors import SourceError

W, H, N, FPS = 64, 48, 12, 25.0


def write_video(path: Path, fourcc: str = "mp4v", frames: int = N, fps: float = FPS) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    if not writer.isOpened():
        pytest.skip(f"this OpenCV build cannot write {fourcc} to {path.suffix}")
    for i in range(frames):
        image = np.zeros((H, W, 3), np.uint8)
        image[..., 2] = 200  # red in BGR
        image[:16, :16] = (10 * i) % 256
        writer.write(image)
    writer.release()
    return path


@pytest.fixture(params=[("mp4v", ".mp4"), ("MJPG", ".avi")], ids=["mp4v", "mjpg"])
def video(request, tmp_path) -> Path:
    fourcc, suffix = request.param
    return write_video(tmp_path / f"clip{suffix}", fourcc)


def test_read_video_file(video):
    with open_video(video) as source:
        assert isinstance(source, VideoSource) and isinstance(source, FrameSource)
        assert (source.kind, source.num_frames, source.frame_size) == ("file", N, (W, H))
        assert source.fps == pytest.approx(FPS)
        frames = list(source)
        assert source.read() is None
    assert [f.index for f in frames] == list(range(N))
    for frame in frames:
        assert isinstance(frame, Frame) and frame.image.shape == (H, W, 3) and frame.image.dtype == np.uint8
        assert frame.source == str(video) and frame.meta["kind"] == "file"
        b, _, r = frame.image[30:, 30:].reshape(-1, 3).mean(axis=0)
        assert r > 150 and b < 50  # BGR order kept
    stamps = np.array([f.timestamp_s for f in frames])
    assert stamps[0] == 0.0 and np.all(np.diff(stamps) > 0)
    assert stamps == pytest.approx(np.arange(N) / FPS, abs=1e-3)


def test_read_one_by_one_and_close_twice(video):
    source = open_video(str(video))
    first, second = source.read(), source.read()
    assert (first.index, second.index) == (0, 1) and second.timestamp_s > first.timestamp_s
    source.close()
    source.close()
    assert source.read() is None


def test_missing_video(tmp_path):
    with pytest.raises(SourceError, match="does not exist") as info:
        open_video(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(info.value) and "Fix:" in str(info.value)


@pytest.mark.parametrize("name,content", [("garbage.mp4", b"\x00garbage" * 500), ("empty.mp4", b""),
                                          ("text.avi", b"hello\n" * 100)])
def test_not_a_video(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as info:
        open_video(path)
    assert name in str(info.value) and "Fix:" in str(info.value)


def test_video_without_frames(tmp_path):
    path = tmp_path / "zero.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H)).release()
    with pytest.raises(SourceError, match="zero.avi"):
        open_video(path)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("index", [99, "99"])
def test_unavailable_camera_fails_fast(index):
    start = time.monotonic()
    with pytest.raises(SourceError, match="camera 99") as info:
        open_video(index)
    assert time.monotonic() - start < 10
    assert "Fix:" in str(info.value)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("url", ["rtsp://127.0.0.1:9/x", "http://127.0.0.1:9/x.mp4"])
def test_refused_loopback_url(url):
    start = time.monotonic()
    with pytest.raises(SourceError, match="stream") as info:
        open_video(url, open_timeout_s=2)
    assert time.monotonic() - start < 10 and url in str(info.value)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_silent_loopback_server_times_out(scheme):
    """A server that accepts the connection but never answers: the open timeout must bound the wait."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"{scheme}://127.0.0.1:{server.getsockname()[1]}/x"
        start = time.monotonic()
        with pytest.raises(SourceError, match="stream"):
            open_video(url, open_timeout_s=1, read_timeout_s=1)
        assert time.monotonic() - start < 10


# -- open_frames ----------------------------------------------------------------------------------

def test_open_frames_png(tmp_path):
    colour = np.zeros((10, 12, 3), np.uint8)
    colour[..., 0] = 255
    cv2.imwrite(str(tmp_path / "a.png"), colour)
    with open_frames(tmp_path / "a.png") as source:
        (frame,) = list(source)
    assert isinstance(source, ImageSequence) and source.num_frames == 1
    assert frame.image.shape == (10, 12, 3) and frame.image[0, 0].tolist() == [255, 0, 0]
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((5, 6), 9, np.uint16))
    (grey,) = list(open_frames(str(tmp_path / "grey.png")))
    assert grey.image.shape == (5, 6) and grey.image.dtype == np.uint16


def test_open_frames_folder_in_natural_order(tmp_path):
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), np.full((4, 4, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    with open_frames(tmp_path, fps=10) as source:
        frames = list(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert [f.timestamp_s for f in frames] == pytest.approx([0, 0.1, 0.2])
    assert frames[2].source.endswith("frame_10.png")


def test_open_frames_empty_folder_and_bad_image(tmp_path):
    with pytest.raises(SourceError, match="No images"):
        open_frames(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="broken.png"):
        list(open_frames(tmp_path / "broken.png"))


@pytest.mark.skipif(not get_decoder(JPEGBaseline8Bit).is_available, reason="the SonoSite cine is JPEG baseline: needs pillow or "
                                                   "pylibjpeg-libjpeg (pip install 'usedge[dicom]')")
def test_open_frames_dicom_by_suffix_and_by_magic(tmp_path):
    path = get_testdata_file("examples_ybr_color.dcm", download=False)
    with open_frames(path) as source:
        assert isinstance(source, DicomSeries) and source.num_frames == 30
    no_suffix = tmp_path / "IM0001"
    shutil.copy(path, no_suffix)
    with open_frames(no_suffix) as source:
        assert isinstance(source, DicomSeries) and source.frame(0).image.shape == (240, 320, 3)


def test_open_frames_video_camera_and_missing(tmp_path):
    clip = write_video(tmp_path / "clip.avi", "MJPG")
    with open_frames(clip) as source:
        assert isinstance(source, VideoSource) and len(list(source)) == N
    with pytest.raises(SourceError, match="camera 99"):
        open_frames("99")
    with pytest.raises(SourceError, match="does not exist"):
        open_frames(tmp_path / "missing.mp4")


def test_a_truncated_video_is_reported_not_silently_shortened(tmp_path):
    """An MJPG AVI cut in half still opens (its header says 40 frames) and decodes 9: the source must say so
    after delivering them, not end as if the file were complete."""
    full = write_video(tmp_path / "full.avi", "MJPG", frames=40)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    src = VideoSource(cut)
    assert src.num_frames == 40
    frames = []
    with pytest.raises(SourceError, match=r"ended after (\d+) of the 40 frames its header announces") as err:
        for f in src:
            frames.append(f)
    assert 0 < len(frames) < 30 and f"first {len(frames)} frames were read" in err.value.fix
    assert len(list(VideoSource(full))) == 40      # a complete file ends quietly


def test_one_source_classification_serves_both_readers_and_stream(tmp_path):
    """usedge.data.open_frames and usedge.stream.open_source dispatch on the same source_kind."""
    from usedge.data.video import FRAME_READERS, source_kind
    from usedge.stream.sources import STREAM_SOURCES

    assert set(FRAME_READERS) == set(STREAM_SOURCES) == {"device", "url", "folder", "dicom", "image", "video"}
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "clip.avi").write_bytes(b"not really a video")
    assert source_kind(0) == ("device", 0) and source_kind("rtsp://scanner/live")[0] == "url"
    assert source_kind(tmp_path)[0] == "folder" and source_kind(tmp_path / "a.png")[0] == "image"
    assert source_kind(tmp_path / "clip.avi")[0] == "video"
    with pytest.raises(SourceError, match="does not exist"):
        source_kind(tmp_path / "missing.mp4", fix="x")


def test_a_clip_whose_frame_size_changes_is_refused_at_the_change(tmp_path):
    """Issue 26, class 3: two MPEG-1 program streams back to back (64x48 then 96x80 — a clip spliced from two depth
    settings). OpenCV's reader rescaled the second part to 64x48, distorted, with results in the wrong grid."""
    pytest.importorskip("av", reason="PyAV (usedge[cpu]) is what sees each picture's size")
    parts = []
    for i, (w, h) in enumerate([(64, 48), (96, 80)]):
        path = tmp_path / f"part{i}.mpg"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"PIM1"), 25, (w, h))
        if not writer.isOpened():
            pytest.skip("this OpenCV build cannot write MPEG-1")
        for _ in range(10):
            writer.write(np.full((h, w, 3), 128, np.uint8))
        writer.release()
        parts.append(path.read_bytes())
    spliced = tmp_path / "spliced.mpg"
    spliced.write_bytes(b"".join(parts))
    with open_video(spliced) as source:
        assert source.frame_size == (64, 48)
        with pytest.raises(SourceError, match=r"changes frame size at frame (\d+): 96x80, the frames before were "
                                              r"64x48") as err:
            while source.read() is not None:
                pass
    assert int(err.value.args[0].split("at frame ")[1].split(":")[0]) >= 8     # the first part was delivered
    assert "re-encode it to one size" in str(err.value)
