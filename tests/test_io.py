"""Atomic writes publish files and folders with the usual umask-based modes, not mkstemp's 0600 / 0700."""
import os
import re
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
    from usedge.demo.uploads import read_image as demo_read_image
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


# -- outputs that would destroy inputs (issue 26, class 1) ---------------------------------------------------
def test_check_outputs_refuses_outputs_over_inputs_and_over_each_other(tmp_path):
    from usedge._io import check_outputs
    from usedge.errors import ConfigError

    data, video = tmp_path / "data", tmp_path / "in.mp4"
    (data / "val").mkdir(parents=True)
    video.write_bytes(b"video")
    (tmp_path / "link.mp4").symlink_to(video)
    refused = [({"--out": data / "val"}, {"--data": data}, "is inside --data"),
               ({"--out": data}, {"--data": data / "val"}, "holds --data"),
               ({"--jsonl": video}, {"SOURCE": video}, "is SOURCE"),
               ({"--save": tmp_path / "link.mp4"}, {"SOURCE": video}, "is SOURCE"),          # through a symlink
               ({"--save": tmp_path / "x.avi", "--jsonl": tmp_path / "x.avi"}, {}, "are the same path")]
    for outs, ins, why in refused:
        with pytest.raises(ConfigError, match=why):
            check_outputs(outs, ins)
    check_outputs({"--out": tmp_path / "runs", "--jsonl": tmp_path / "o.jsonl", "--plot": None},
                  {"--data": data, "SOURCE": video})                   # siblings: fine
    assert video.read_bytes() == b"video"


def test_check_writable_refuses_an_unwritable_output_before_the_work(tmp_path):
    import os

    from usedge._io import check_writable
    from usedge.errors import ConfigError

    check_writable("--out", tmp_path / "new" / "deeper" / "bundle")    # creatable: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder this process can write to"):
        check_writable("--out", tmp_path / "file" / "bundle")
    if os.geteuid() != 0:                                              # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="can write to"):
            check_writable("--out", locked / "bundle")


def test_cli_stream_and_eval_refuse_to_write_over_their_inputs(tmp_path):
    from click.testing import CliRunner

    from usedge.cli.main import cli

    video = tmp_path / "IN.mp4"
    video.write_bytes(b"not decoded: the check comes first")
    data = tmp_path / "data"
    (data / "val").mkdir(parents=True)
    (data / "val" / "truth.png").write_bytes(b"ground truth")
    runs = [(["stream", str(video), "--jsonl", str(video)], "--jsonl .* is SOURCE"),
            (["stream", str(video), "--save", str(tmp_path / "o.avi"), "--jsonl", str(tmp_path / "o.avi")],
             "are the same path"),
            (["eval", "--data", str(data), "--bundle", str(tmp_path), "--out", str(data / "val")],
             "--out .* is inside --data")]
    for args, why in runs:
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2 and re.search(why, r.output), (args, r.output)
    assert video.read_bytes() == b"not decoded: the check comes first"
    assert (data / "val" / "truth.png").read_bytes() == b"ground truth"


# -- every bounded decode knows the pixel count first (issue 26, class 5) ------------------------------------
def _tiff_header(w, h):
    import struct

    entries = [(256, 4, 1, w), (257, 4, 1, h)]
    return b"II*\x00" + struct.pack("<IH", 8, len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)


def test_bounded_decodes_read_the_size_of_every_format_first():
    import struct

    import cv2

    from usedge._io import decode_image, header_size
    from usedge.errors import DataError

    img = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg", ".tif", ".bmp", ".webp"):
        data = cv2.imencode(ext, img)[1].tobytes()
        assert header_size(data) == (53, 37), ext
        assert decode_image(data, "x" + ext, max_side=64).shape[:2] == (37, 53)
    # 30000² declared in a few bytes: refused from the header, nothing decoded (an 8 MB LZW TIFF peaked at 2.4 GB)
    huge = {"TIFF": _tiff_header(30000, 30000),
            "BMP": b"BM" + b"\x00" * 16 + struct.pack("<ii", 30000, 30000) + b"\x00" * 32,
            "WebP": b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00" * 8 + (29999).to_bytes(3, "little") * 2}
    for kind, data in huge.items():
        with pytest.raises(DataError, match="30000×30000 pixels; at most 4096"):
            decode_image(data, kind, max_side=4096)
    ppm = cv2.imencode(".ppm", img)[1].tobytes()
    with pytest.raises(DataError, match="pixel size cannot be read first"):
        decode_image(ppm, "x.ppm", max_side=4096)
    assert decode_image(ppm, "x.ppm").shape[:2] == (37, 53)           # unbounded reads still take it


def test_a_staged_output_folder_appears_whole_or_not_at_all(tmp_path):
    """Issue 26, class 2: an interrupted usedge eval into an earlier run's folder left old JSONs beside a mix of
    new and old masks."""
    from usedge._io import staged_dir
    from usedge.errors import ConfigError

    out = tmp_path / "runs" / "eval"
    with staged_dir(out, "eval.json") as stage:
        (stage / "eval.json").write_text("first")
        (stage / "mask_1.png").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(out, "eval.json") as stage:
            (stage / "mask_1.png").write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["eval.json", "mask_1.png"]
    assert (out / "mask_1.png").read_text() == "old"                      # untouched by the interrupted run
    assert [p.name for p in out.parent.iterdir()] == ["eval"]             # and no partial folder left behind
    with staged_dir(out, "eval.json") as stage:
        (stage / "eval.json").write_text("second")
    assert [p.name for p in out.iterdir()] == ["eval.json"]               # replaced whole: no stale mask
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an earlier output of this command"):
        with staged_dir(other, "eval.json"):
            pass
    assert (other / "notes.txt").read_text() == "keep"


def test_reserved_names_never_collide_across_threads(tmp_path):
    """Issue 26, class 1: demo result files were named by the second and the thread id, so two requests in the
    same second overwrote each other."""
    from concurrent.futures import ThreadPoolExecutor

    from usedge._io import reserve_names

    (tmp_path / "result-x-1.json").write_text("earlier")                  # an older run's file keeps its name
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: reserve_names(tmp_path, "result-x", (".webm", ".jsonl")), range(64)))
    stems = {(a.with_suffix(""), b.with_suffix("")) for a, b in got}
    assert len(stems) == 64 and all(a == b for a, b in stems)            # one N per call, shared by its pair
    assert (tmp_path / "result-x-1.json").read_text() == "earlier"
    assert len(list(tmp_path.iterdir())) == 1 + 128
