"""Atomic writes publish files and folders with the usual umask-based modes, not mkstemp's 0600 / 0700."""
import os
import stat

import numpy as np
import pytest

from usedge._io import DIR_MODE, FILE_MODE, atomic_write_text, publish, swap_in_dir


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_and_publish_modes(tmp_path):
    f = atomic_write_text(tmp_path / "a.txt", "x")
    assert _mode(f) == FILE_MODE and f.read_text() == "x"
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=tmp_path)
    os.close(fd)
    assert _mode(publish(tmp, tmp_path / "b.bin")) == FILE_MODE


def test_swapped_in_folder_mode(tmp_path):
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp(dir=tmp_path))
    (tmp / "f").write_text("1")
    out = swap_in_dir(tmp, tmp_path / "bundle")
    assert _mode(out) == DIR_MODE and (out / "f").read_text() == "1"


def test_a_truncated_jpeg_is_refused_the_same_way_by_files_uploads_and_the_server(tmp_path):
    """cv2.imread returned a truncated JPEG with its missing half grey; the server refused the same bytes."""
    import cv2

    from usedge._io import read_image
    from usedge.demo.core import read_image as demo_read_image
    from usedge.errors import DataError
    from usedge.serve.protocol import ProtocolError, decode_frame

    image = np.zeros((200, 300), np.uint8)
    image[::7], image[:, ::5] = 200, 90
    data = cv2.imencode(".jpg", image)[1].tobytes()
    (tmp_path / "whole.jpg").write_bytes(data)
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert np.array_equal(read_image(tmp_path / "whole.jpg"), cv2.imdecode(np.frombuffer(data, np.uint8), -1))
    assert cv2.imread(str(tmp_path / "cut.jpg")) is not None          # what the old code accepted
    with pytest.raises(DataError, match="truncated JPEG"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(DataError, match="truncated JPEG"):
        demo_read_image(tmp_path / "cut.jpg")
    with pytest.raises(ProtocolError, match="truncated JPEG"):
        decode_frame(data[: len(data) // 2])
    assert decode_frame(data).shape == (200, 300)
