"""Demo fixtures: the engine on the packaged default bundle, examples in a temp folder, a served app."""
from __future__ import annotations

import socket

import pytest


@pytest.fixture(scope="session")
def demo_examples(tmp_path_factory):
    from usedge.demo.examples import ensure_examples

    return ensure_examples(tmp_path_factory.mktemp("demo-examples"), size=128)


@pytest.fixture(scope="session")
def engine():
    from usedge.backends import available_backends
    from usedge.demo.config import DemoConfig
    from usedge.demo.core import DemoEngine

    if not available_backends():
        pytest.skip("the demo needs an inference backend (pip install 'usedge[cpu]')")

    e = DemoEngine(DemoConfig(max_video_frames=200, threads=1))
    yield e
    e.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(demo_examples, tmp_path_factory):
    """(url, app) of the demo served on localhost for the module."""
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    from usedge.demo.app import launch
    from usedge.demo.config import DemoConfig

    port = free_port()
    app = launch(DemoConfig(max_upload_mb=2.0, max_video_frames=200, threads=1), port=port, block=False,
                 examples=demo_examples, quiet=True)
    yield f"http://127.0.0.1:{port}/", app
    app.close()
    app.usedge_engine.close()     # stops the live sessions the browser tests left (gr.State is not cleared by close)
