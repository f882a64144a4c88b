"""The Gradio page: handlers, the named API endpoints over gradio_client, and a real browser (Playwright driving
Debian's headless Chromium)."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")

CHROMIUM = os.environ.get("USEDGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def test_handlers_wrap_errors_as_page_messages(engine, tmp_path):
    import gradio as gr

    from usedge.demo.app import DemoHandlers, user_errors

    h = DemoHandlers(engine, tmp_path)
    bad = tmp_path / "x.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(gr.Error) as info:
        user_errors(h.analyze_image)(str(bad), [], "auto", "auto", 0.4)
    assert "could not be decoded" in info.value.message and "Fix:" in info.value.message
    assert "Traceback" not in info.value.message

    def boom():
        raise RuntimeError("internal detail")

    with pytest.raises(gr.Error, match="Could not process this input"):
        user_errors(boom)()


def test_live_mode_names_a_frame_that_is_not_an_image(engine, tmp_path):
    """Issue 26, class 6: an empty or 1-D camera frame failed inside the colour conversion."""
    import gradio as gr

    from usedge.demo.app import DemoHandlers, user_errors

    h = DemoHandlers(engine, tmp_path)
    for frame in (np.zeros((0,), np.uint8), np.zeros(5, np.uint8), np.zeros((1, 1, 3), np.uint8),
                  np.zeros((8, 8, 7), np.uint8)):
        with pytest.raises(gr.Error, match="not an image") as info:
            user_errors(h.live_frame)(frame, [], "auto", "auto", 0.4, False, None)
        assert "Fix:" in info.value.message


def test_handlers_outputs(engine, demo_examples, tmp_path):
    from usedge.demo.app import DemoHandlers

    h = DemoHandlers(engine, tmp_path)
    overlay, rows, latency, status, json_path, measured = h.analyze_image(str(demo_examples.images[0].path),
                                                                           ["fetal_head"], "auto", "auto", 0.5)
    assert overlay.dtype == np.uint8 and rows[0][0] == "fetal_head" and Path(json_path).is_file()
    assert "<td>HC</td>" in measured and "calibration" in measured
    # an image file has no calibration: lengths in px, and gestational age (which needs mm) greyed with its reason
    assert "none: lengths in px" in measured and "class='usedge-withheld'" in measured and "calibrated frame" in measured
    saved = json.loads(Path(json_path).read_text())["result"]["measurements"]
    assert {m["name"] for m in saved} >= {"HC", "BPD"}
    assert status.startswith("**") and "1 task(s)" in status
    assert h.tasks("all tasks") == [] and "fetal_head" in h.tasks("organ: fetus")
    frame = np.zeros((96, 96, 3), np.uint8)
    out = h.live_frame(frame, ["fetal_head"], "auto", "auto", 0.4, False, None)
    session = out[-1]
    try:
        assert session.alive and out[0].shape[2] == 3
        again = h.live_frame(frame, ["fetal_head"], "auto", "auto", 0.4, False, session)
        assert again[-1] is session  # same settings: the same live stream keeps running
        changed = h.live_frame(frame, ["thyroid_nodule_det"], "auto", "auto", 0.4, False, session)
        assert changed[-1] is not session and not session.alive
        changed[-1].close()
    finally:
        session.close()


def test_named_endpoints_over_gradio_client(served, demo_examples, request):
    from gradio_client import Client, handle_file

    url, _ = served
    client = Client(url, verbose=False)
    request.addfinalizer(client.close)       # its heartbeat thread would keep polling the closed server
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/analyze_image", "/analyze_video", "/live_frame", "/tasks"} <= set(endpoints)

    assert "thyroid_nodule_det" in client.predict("kind: detection", api_name="/tasks")
    overlay, results, latency, status, result_json, measured = client.predict(
        handle_file(str(demo_examples.images[0].path)), ["fetal_head", "breast_2cls"], "auto", "auto", 0.4,
        api_name="/analyze_image")
    assert Path(overlay).is_file() and Path(result_json).is_file()
    assert [r[0] for r in results["data"]] == ["fetal_head", "breast_2cls"]
    assert any(r[0] == "infer" for r in latency["data"])

    cine = [e for e in demo_examples.videos if e.path.suffix == ".webm"][0]
    video, jsonl, summary, status = client.predict(handle_file(str(cine.path)), ["fetal_head"], "auto", "auto", 0.4,
                                                   True, api_name="/analyze_video")
    video = video["video"] if isinstance(video, dict) else video
    assert Path(video).stat().st_size > 0 and len(Path(jsonl).read_text().splitlines()) > 10


def test_bad_upload_is_an_error_and_the_server_keeps_serving(served, demo_examples, tmp_path, request):
    from gradio_client import Client, handle_file

    url, _ = served
    client = Client(url, verbose=False)
    request.addfinalizer(client.close)
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"this is not a PNG")
    with pytest.raises(Exception, match="could not be decoded"):
        client.predict(handle_file(str(bad)), [], "auto", "auto", 0.4, api_name="/analyze_image")
    ok = client.predict(handle_file(str(demo_examples.images[1].path)), [], "auto", "auto", 0.4,
                        api_name="/analyze_image")
    assert len(ok[1]["data"]) == 27 or len(ok[1]["data"]) == len(served[1].usedge_engine.tasks)


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium; "
                    ".ci/run does) or set USEDGE_CHROMIUM")
    return sync_api


@contextlib.contextmanager
def _page(url: str, camera: bool = False):
    """A page of the served demo in headless Chromium (with a fake camera when asked), closed afterwards."""
    sync_api = _browser()
    args = [*CHROMIUM_ARGS, *(("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream") if camera else ())]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                          permissions=["camera"] if camera else [])
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("#analyze-image", timeout=60_000)
            yield page
        finally:
            browser.close()


def test_real_browser_upload_pick_task_and_see_overlay_and_table(served, demo_examples, tmp_path):
    url, _ = served
    det = [e for e in demo_examples.images if "thyroid_nodule_det" in e.path.name][0]
    with _page(url) as page:
        # pick a task group: the task picker fills with that group's tasks
        page.locator("#task-group input").click()
        page.get_by_role("option", name="organ: thyroid").click()
        page.wait_for_function("document.querySelectorAll('#tasks .token').length >= 2", timeout=30_000)
        page.locator("#image-input input[type=file]").set_input_files(str(det.path))
        page.wait_for_timeout(500)
        page.click("#analyze-image")
        page.wait_for_selector("#overlay img", timeout=60_000)
        page.wait_for_function("document.querySelector('#results') && "
                               "document.querySelector('#results').innerText.includes('thyroid_nodule_det')",
                               timeout=60_000)
        table = page.locator("#results").inner_text()
        assert "thyroid_nodule" in table and "box (" in table and "fetal_head" not in table
        assert "ms" in page.locator("#usedge-status").inner_text()
        shot = tmp_path / "demo.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    out = os.environ.get("USEDGE_TEST_ARTIFACTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "demo.png").write_bytes(shot.read_bytes())


def test_real_browser_live_webcam_streams_through_usedge_stream(served):
    """Chromium's fake camera (--use-fake-device-for-media-stream) stands in for a webcam / frame grabber."""
    url, _ = served
    with _page(url, camera=True) as page:
        page.locator("#task-group input").click()
        page.get_by_role("option", name="organ: fetus").click()
        page.get_by_role("tab", name="Live").click()
        page.locator("#camera").get_by_role("button", name="Click to Access Webcam").click()
        page.locator("#camera button", has_text="Record").click()
        page.wait_for_function("document.querySelector('#usedge-status').innerText.includes('latest frame wins')",
                               timeout=60_000)
        page.wait_for_selector("#live-overlay img", timeout=60_000)
        status = page.locator("#usedge-status").inner_text()
        assert "live" in status and "capture→result" in status


def test_real_browser_video_tab_plays_the_overlay_video(served, demo_examples):
    url, _ = served
    cine = [e for e in demo_examples.videos if e.path.suffix == ".webm"][0]
    with _page(url) as page:
        page.get_by_role("tab", name="Video / cine").click()
        page.locator("#video-input input[type=file]").set_input_files(str(cine.path))
        page.wait_for_timeout(500)
        page.click("#process-video")
        page.wait_for_selector("#video-output video", timeout=90_000)
        # the browser decodes the VP8 WebM: it knows the duration and the picture size
        page.wait_for_function("(() => { const v = document.querySelector('#video-output video');"
                               " return v && v.readyState >= 1 && v.videoWidth > 0 && v.duration > 0; })()",
                               timeout=60_000)
        assert "frames" in page.locator("#usedge-status").inner_text()
        assert page.locator("#video-jsonl").inner_text().strip() != ""


def test_demo_builds_and_analyzes_without_torch(demo_examples):
    """A scanner / laptop installs usedge[demo,cpu] without torch: the page must build and answer."""
    import subprocess
    import sys
    import textwrap

    image = str(demo_examples.images[0].path)
    code = textwrap.dedent(f"""
        import sys
        for name in ("torch", "torchvision", "timm", "segmentation_models_pytorch", "nncf"):
            sys.modules[name] = None
        from usedge.demo.app import DemoHandlers, build_app
        from usedge.demo.examples import ensure_examples
        app = build_app(examples=ensure_examples({str(Path(image).parent)!r}, size=128))
        h = DemoHandlers(app.usedge_engine, __import__("pathlib").Path({str(Path(image).parent)!r}))
        overlay, rows, *_ = h.analyze_image({image!r}, ["fetal_head"], "auto", "auto", 0.4)
        assert rows[0][0] == "fetal_head"
        print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm", "nncf") and sys.modules[m]))
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded: []" in proc.stdout


def test_old_result_files_are_pruned(engine, demo_examples, tmp_path):
    import time

    from usedge.demo.app import DemoHandlers

    h = DemoHandlers(engine, tmp_path, keep_s=60)
    old = tmp_path / "result-old.json"
    old.write_text("{}")
    past = time.time() - 120
    os.utime(old, (past, past))
    h.analyze_image(str(demo_examples.images[0].path), ["fetal_head"], "auto", "auto", 0.4)
    assert not old.exists() and len(list(tmp_path.glob("result-*.json"))) == 1
