"""Pipeline semantics with fake predictors and sources: lossless order, latest-frame-wins drops, reconnects,
failing frames, terminal events."""
import time

import pytest

from usedge.errors import ConfigError, SourceError
from usedge.stream import (
    CallbackSink,
    FrameBuffer,
    ImageFolderSource,
    JsonlSink,
    ReconnectPolicy,
    StopStream,
    Stream,
    stream,
)

FAST = ReconnectPolicy(max_attempts=3, initial_s=0.01, factor=2.0, max_s=0.05)


def test_lossless_image_folder_every_frame_in_order(image_folder, fake_predictor):
    s = stream(ImageFolderSource(image_folder), fake_predictor)
    indices = [r.index for r in s]
    assert s.mode == "lossless"
    assert indices == list(range(12))
    assert s.terminal.kind == "end" and "end of" in s.terminal.message
    summary = s.tracker.summary()
    assert summary["frames_in"] == summary["frames_out"] == 12 and summary["dropped"] == 0


def test_lossless_back_pressure_keeps_queue_bounded(image_folder, make_predictor):
    s = Stream(ImageFolderSource(image_folder), make_predictor(delay_s=0.01), queue_size=2)
    assert [r.index for r in s] == list(range(12))
    assert s.buffer.high_water <= 2 and s.buffer.dropped == 0


def test_live_latest_frame_wins_drops_under_slow_sink(make_live, make_predictor):
    slow = CallbackSink(lambda ev: time.sleep(0.02))
    s = Stream(make_live(frames=300, period_s=0.001), make_predictor(), sinks=[slow], warmup=0)
    events = [ev for ev in s.iter_events() if ev.kind == "result"]
    indices = [ev.result.index for ev in events]
    assert s.mode == "live"
    assert s.tracker.summary()["dropped"] > 0
    assert s.buffer.high_water == 1                       # the slot never held more than one frame
    assert all(a < b for a, b in zip(indices, indices[1:]))
    assert len(indices) < 300
    assert s.terminal.kind == "end"


def test_live_max_frames_stops(make_live, fake_predictor):
    s = stream(make_live(frames=10_000, period_s=0.001), fake_predictor, max_frames=5)
    assert len(list(s)) == 5
    assert "max_frames" in s.terminal.message


def test_reconnect_after_fault_and_frames_continue(make_live, fake_predictor):
    src = make_live(frames=30, fail_at={5, 12}, open_failures=1)
    s = Stream(src, fake_predictor, reconnect=FAST, mode="lossless")
    events = list(s.iter_events())
    kinds = [e.kind for e in events]
    results = [e.result.index for e in events if e.kind == "result"]
    assert kinds.count("reconnect") == 3                  # fault 1: one try; fault 2: a failed open, then ok
    assert s.tracker.summary()["reconnects"] == 3
    assert results == list(range(30))                     # frames continue after the reconnects
    assert events[-1].kind == "end"


def test_reconnect_gives_up_with_terminal_error(make_live, fake_predictor):
    src = make_live(frames=1000, fail_forever=True)
    s = Stream(src, fake_predictor, reconnect=FAST)
    with pytest.raises(SourceError, match="did not come back after 3 reconnect attempts"):
        list(s)
    assert s.terminal.kind == "error"
    assert s.tracker.summary()["reconnects"] == 3


def test_file_source_fault_is_terminal_without_reconnect(make_live, fake_predictor):
    src = make_live(frames=20, fail_at={4})
    src.live = False
    s = Stream(src, fake_predictor, reconnect=FAST)
    events = list(s.iter_events())
    assert [e.kind for e in events].count("reconnect") == 0
    assert events[-1].kind == "error" and "cable pulled" in events[-1].message
    assert [e.result.index for e in events if e.kind == "result"] == [0, 1, 2]


def test_failing_frame_is_skipped_counted_and_recorded(image_folder, make_predictor, tmp_path):
    out = tmp_path / "out.jsonl"
    s = Stream(ImageFolderSource(image_folder), make_predictor(fail_on={3, 7}), sinks=[JsonlSink(out)])
    assert [r.index for r in s] == [i for i in range(12) if i not in (3, 7)]
    assert s.tracker.summary()["errors"] == 2
    import json

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame_index"] for r in records] == list(range(12))
    assert [r["event"] for r in records if r["frame_index"] in (3, 7)] == ["frame_error"] * 2
    assert "synthetic failure" in records[3]["error"]


def test_sink_can_stop_the_stream(image_folder, fake_predictor):
    seen = []

    def cb(ev):
        seen.append(ev.result.index)
        if len(seen) == 4:
            raise StopStream()

    s = Stream(ImageFolderSource(image_folder), fake_predictor, sinks=[CallbackSink(cb)])
    s.run()
    assert seen == [0, 1, 2, 3] and s.terminal.message == "stopped by a sink"


def test_failing_sink_raises_not_silent(image_folder, fake_predictor):
    def boom(ev):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        Stream(ImageFolderSource(image_folder), fake_predictor, sinks=[CallbackSink(boom)]).run()


def test_breaking_out_of_the_loop_stops_threads(make_live, fake_predictor):
    s = stream(make_live(frames=10_000, period_s=0.001), fake_predictor)
    for n, _ in enumerate(s):
        if n == 3:
            break
    del _
    import gc

    gc.collect()
    deadline = time.monotonic() + 5
    while any(t.is_alive() for t in s._threads) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.is_alive() for t in s._threads)


def test_frame_buffer_modes():
    import threading

    stop = threading.Event()
    slot = FrameBuffer(1, drop_oldest=True)
    for i in range(5):
        slot.put(i, stop)
    assert len(slot) == 1 and slot.dropped == 4 and slot.get(stop) == 4
    with pytest.raises(ConfigError, match="holds one frame"):
        FrameBuffer(2, drop_oldest=True)
    slot.close()
    assert slot.get(stop) is None


def test_bad_options_say_how_to_fix(image_folder, fake_predictor):
    with pytest.raises(ConfigError, match="stream mode"):
        Stream(image_folder, fake_predictor, mode="fast")
    with pytest.raises(ConfigError, match="max_frames"):
        Stream(image_folder, fake_predictor, max_frames=0)
    with pytest.raises(ConfigError, match="max_attempts"):
        ReconnectPolicy(max_attempts=-1)
    with pytest.raises(SourceError, match="does not exist"):
        Stream(image_folder / "nope.mp4", fake_predictor)


def test_a_stream_failing_before_any_frame_leaves_an_existing_jsonl_untouched(make_live, fake_predictor, tmp_path):
    out = tmp_path / "results.jsonl"
    out.write_text('{"event": "result", "from": "yesterday"}\n')
    src = make_live(frames=20, fail_at={1})     # the very first read fails
    src.live = False
    s = Stream(src, fake_predictor, sinks=[JsonlSink(out)], reconnect=FAST)
    with pytest.raises(SourceError):
        s.run()
    assert out.read_text() == '{"event": "result", "from": "yesterday"}\n'      # not replaced by an empty file
    assert not list(tmp_path.glob("*.partial"))


def test_cli_outcome_check_fails_a_run_where_every_frame_failed(image_folder, make_predictor):
    from usedge.cli.stream import check_outcome
    from usedge.errors import UsedgeError

    s = Stream(ImageFolderSource(image_folder), make_predictor(fail_on=set(range(12))))
    s.run()                                        # the library reports; the command must not exit 0
    with pytest.raises(UsedgeError, match=r"every frame failed \(12 of 12\); the first: frame 0: .*synthetic"):
        check_outcome(s)
    ok = Stream(ImageFolderSource(image_folder), make_predictor(fail_on={3}))
    ok.run()
    check_outcome(ok)                              # one good frame is enough: errors are in the summary


class _Batching:
    """A FakePredictor with predict_batch (one call per batch, recorded); a batch holding a failing frame raises,
    as a real backend would."""

    def __init__(self, make_predictor, fail_on=()):
        self.one = make_predictor(delay_s=0.02, fail_on=fail_on)   # slower than capture: frames queue up
        self.tasks = self.one.tasks
        self.batches = []

    def __call__(self, frame, tasks=None):
        return self.one(frame, tasks)

    def predict_batch(self, frames, tasks=None):
        self.batches.append([f.index for f in frames])
        if any(f.index in self.one.fail_on for f in frames):
            raise RuntimeError("a frame of this batch is bad")
        return [self.one(f, tasks) for f in frames]


def test_batched_lossless_gives_the_same_records_in_order(image_folder, make_predictor):
    one = [(r.index, r["organ_cls"].predicted_class) for r in stream(ImageFolderSource(image_folder),
                                                                    make_predictor(), batch=1)]
    batching = _Batching(make_predictor)
    s = Stream(ImageFolderSource(image_folder), batching, batch=4)
    got = [(r.index, r["organ_cls"].predicted_class) for r in s]
    assert got == one and [index for index, _ in got] == list(range(12))
    assert batching.batches and max(len(b) for b in batching.batches) > 1      # frames did go through together
    assert all(len(b) <= 4 for b in batching.batches)
    assert s.tracker.summary()["frames_out"] == 12


def test_lossless_batches_by_default_and_live_does_not(image_folder, make_predictor, make_live):
    from usedge.stream.pipeline import LOSSLESS_BATCH

    assert Stream(ImageFolderSource(image_folder), make_predictor()).batch == LOSSLESS_BATCH == 4
    assert Stream(ImageFolderSource(image_folder), make_predictor(), queue_size=2).batch == 2
    assert Stream(make_live(frames=3, period_s=0.001), make_predictor()).batch == 1


def test_a_bad_frame_in_a_batch_is_skipped_alone(image_folder, make_predictor):
    batching = _Batching(make_predictor, fail_on={5})
    s = Stream(ImageFolderSource(image_folder), batching, batch=4)
    events = list(s.iter_events())
    assert [e.frame.index for e in events if e.kind == "frame_error"] == [5]
    assert [e.result.index for e in events if e.kind == "result"] == [i for i in range(12) if i != 5]
    with pytest.raises(ConfigError, match="batch must be a positive integer"):
        Stream(ImageFolderSource(image_folder), batching, batch=0)
