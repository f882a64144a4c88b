"""Atomic writes publish files and folders with the usual umask-based modes, not mkstemp's 0600 / 0700."""
import os
import stat

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
