"""End to end on the tiny real bundle: a phantom cine video (lossless), the DICOM echo cine, the live phantom,
the CLI, and the no-torch import."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from usedge.backends import available_backends
from usedge.stream import DicomSource, PhantomSource, SmoothingConfig, Stream, VideoFileSource, stream

#: running the packaged bundle needs OpenVINO or ONNX Runtime
needs_backend = pytest.mark.skipif(not available_backends(), reason="needs an inference backend (pip install 'usedge[cpu]')")


def test_lossless_video_file_every_frame(bundle_dir, tmp_path):
    from usedge.data.phantom import write_cine

    video, _ = write_cine(tmp_path / "cine.avi", "fetal_head", frames=8, fps=30, size=64, seed=1)
    s = stream(VideoFileSource(video), str(bundle_dir), tasks=["fetal_head", "organ_cls"], warmup=1)
    results = list(s)
    assert [r.index for r in results] == list(range(8))
    assert results[0]["fetal_head"].mask.shape == (64, 64)
    assert s.tracker.summary()["latency_ms"]["infer"]["n"] == 7



def test_echo_dicom_cine_with_region(bundle_dir):
    from usedge.errors import SourceError
    from usedge.stream.sources import echo_cine_path

    try:
        path = echo_cine_path()
    except SourceError:
        pytest.skip("pydicom-data's echo cine is not installed")
    s = Stream(DicomSource(path), str(bundle_dir), tasks=["cardiac_multi"], max_frames=3,
               smoothing=SmoothingConfig(alpha=0.5))
    results = list(s)
    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].region == (84, 31, 596, 415)
    assert results[1].timestamp_s == pytest.approx(1 / 30, rel=1e-3)


def test_live_phantom_paced(bundle_dir):
    s = Stream(PhantomSource(fps=60, size=64, frames=12), str(bundle_dir), tasks=["fetal_head"], warmup=0)
    results = list(s)
    assert s.mode == "live" and len(results) >= 1
    assert all(a.index < b.index for a, b in zip(results, results[1:]))
    assert s.tracker.summary()["frames_in"] == 12


def test_cli_phantom_with_bundle(bundle_dir, tmp_path):
    from usedge.cli.stream import stream as stream_cmd

    out = tmp_path / "run.jsonl"
    res = CliRunner().invoke(stream_cmd, ["phantom", "--bundle", str(bundle_dir), "--fps", "60", "--size", "64",
                                          "--max-frames", "4", "--jsonl", str(out), "--tasks", "fetal_head,organ_cls",
                                          "--warmup", "0", "--save", str(tmp_path / "o.avi")])
    assert res.exit_code == 0, res.output
    assert "| stage |" in res.output and "end_to_end" in res.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and all(set(r["tasks"]) == {"fetal_head", "organ_cls"} for r in records)
    assert (tmp_path / "o.avi").is_file()


def test_import_without_torch():
    code = textwrap.dedent("""
        import sys
        for name in ("torch", "torchvision", "timm", "nncf"):
            sys.modules[name] = None
        import usedge.stream, usedge.cli.stream
        from usedge.stream import stream, Stream, PhantomSource, JsonlSink, draw
        print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm") and sys.modules[m]))
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded: []" in proc.stdout


@needs_backend
def test_cli_without_bundle_runs_the_packaged_bundle(tmp_path):
    import usedge.cli.stream as cli_stream

    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(cli_stream.stream, ["phantom", "--max-frames", "2", "--jsonl", str(out)])
    assert res.exit_code == 0, res.output
    assert "default_bundle" in res.output and len(out.read_text().splitlines()) == 2   # its path, named


def test_paced_replay_of_the_echo_cine_is_live_and_keeps_the_scan_region(tmp_path):
    import time

    from usedge.errors import SourceError
    from usedge.stream import PacedReplay, echo_cine_path

    try:
        path = echo_cine_path()
    except SourceError as exc:    # pydicom-data not installed: the reason says so; any other error fails
        pytest.skip(str(exc))
    src = PacedReplay(str(path), fps=200, loops=2, max_frames=10)
    assert src.live
    src.open()
    t0 = time.monotonic()
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    took = time.monotonic() - t0
    assert [f.index for f in frames] == list(range(20)) and frames[0].region is not None
    assert took >= 19 / 200 * 0.9   # paced, not a burst



@pytest.mark.slow
@needs_backend
def test_sigterm_finalises_outputs_and_prints_the_summary(tmp_path):
    """SIGTERM during `usedge stream` ends it like Ctrl-C: the JSON-lines and video are renamed into place,
    no hidden temporary file stays behind, and the latency summary is printed."""
    import signal
    import subprocess
    import sys
    import time

    out, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "usedge.cli.main", "stream", "phantom", "--fps", "20",
                             "--jsonl", str(out), "--save", str(video)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(tmp_path.glob(".*")) and proc.poll() is None:
        time.sleep(0.2)                      # wait for the first frame to be written (hidden temp files)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "frames in" in output and "interrupted" in output
    assert out.is_file() and len(out.read_text().splitlines()) > 0 and video.is_file() and video.stat().st_size > 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".") or p.suffix == ".partial"]


def test_batched_lossless_matches_frame_by_frame_on_the_real_bundle(bundle_dir, tmp_path):
    from usedge.data.phantom import write_cine

    video, _ = write_cine(tmp_path / "cine.avi", "fetal_head", frames=9, fps=30, size=64, seed=2)
    tasks = ["fetal_head", "organ_cls", "FUGC"]
    one = list(stream(VideoFileSource(video), str(bundle_dir), tasks=tasks, mode="lossless"))
    four = list(stream(VideoFileSource(video), str(bundle_dir), tasks=tasks, mode="lossless", batch=4))
    assert [r.index for r in four] == [r.index for r in one] == list(range(9))
    for a, b in zip(one, four):
        assert a["organ_cls"].predicted_class == b["organ_cls"].predicted_class
        assert (a["fetal_head"].mask == b["fetal_head"].mask).mean() >= 0.999
        np.testing.assert_allclose(a["FUGC"].points, b["FUGC"].points, atol=0.05)


@needs_backend
def test_an_exception_in_the_callers_loop_exits_with_it_not_with_an_abort(tmp_path):
    """A script whose own code raises while iterating a stream leaves the generator and the stream's threads
    alive until exit; the process must end with Python's traceback and exit status 1, not an abort of the
    runtime's native threads (SIGABRT, "terminate called without an active exception"). Reproduced on the echo
    cine: a failure on the first result, inside a generator expression, while the inference thread is busy."""
    from usedge.errors import SourceError
    from usedge.stream.sources import echo_cine_path

    try:
        echo_cine_path()
    except SourceError:
        pytest.skip("pydicom-data's echo cine is not installed")
    script = textwrap.dedent("""
        from usedge.assets import shipped_bundle
        from usedge.stream import DicomSource, Stream, echo_cine_path
        s = Stream(DicomSource(echo_cine_path()), shipped_bundle(), mode="lossless", warmup=0)
        def count(result):
            raise RuntimeError("the caller's own bug")
        total = sum(count(result) for result in s)     # raised inside a generator expression over the stream
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "RuntimeError: the caller's own bug" in proc.stderr
    assert "terminate called" not in proc.stderr
