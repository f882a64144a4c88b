"""``usedge demo``: the browser demo (Gradio) on a bundle, the packaged default when none is given."""
from __future__ import annotations

import click

from usedge.cli.stream import region_option


@click.command("demo")
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="Bundle folder/.zip from `usedge export` (default: the packaged INT8 default student).")
@click.option("--backend", default="auto", show_default=True, help="Initial backend: auto, openvino, onnxruntime, ...")
@click.option("--precision", default="auto", show_default=True, help="Initial precision: auto, int8, fp32.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; keep 127.0.0.1 unless a TLS reverse proxy is in front.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="TCP port (0: any free).")
@click.option("--share/--no-share", default=False, show_default=True,
              help="Gradio share link (needs internet; off by default: frames stay on this machine).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=64.0, show_default=True)
@click.option("--max-video-frames", type=click.IntRange(min=1), default=900, show_default=True)
@click.option("--max-video-seconds", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True)
@click.option("--live-fps", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Frames per second the browser sends from the camera.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Pin backend threads.")
@region_option
def demo(bundle, backend, precision, host, port, share, max_upload_mb, max_video_frames, max_video_seconds, live_fps,
         threads, region) -> None:
    """Open the browser demo: images, videos, DICOM cines and live camera streams with overlays, per-task
    results and latency (needs usedge[demo]; runs without torch)."""
    from usedge.demo.app import launch
    from usedge.demo.config import DemoConfig

    config = DemoConfig(bundle=bundle, backend=backend, precision=precision, max_upload_mb=max_upload_mb,
                        max_video_frames=max_video_frames, max_video_seconds=max_video_seconds, live_fps=live_fps,
                        threads=threads, region=region)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.secho(f"warning: binding {host}: anyone who reaches it can upload images; prefer 127.0.0.1 behind a "
                    "TLS reverse proxy with authentication.", fg="yellow", err=True)
    launch(config, host=host, port=port or None, share=share)
