"""``usedge serve``: serve a bundle over a WebSocket (docs/serve.md)."""
from __future__ import annotations

import click

from usedge.cli.stream import default_bundle


@click.command("serve")
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="Bundle folder/.zip from `usedge export` (default: the packaged INT8 default bundle).")
@click.option("--backend", default="auto", show_default=True, help="auto, openvino, onnxruntime, tensorrt, torch.")
@click.option("--precision", default="auto", show_default=True, help="auto, int8, fp32, fp16.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Keep 127.0.0.1 and put a TLS reverse proxy in front for other machines.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="TCP port.")
@click.option("--token", envvar="USEDGE_TOKEN", default=None, show_envvar=True,
              help="Access token clients must send (default: a random one, printed at start).")
@click.option("--max-clients", type=click.IntRange(min=1), default=4, show_default=True,
              help="Concurrent WebSocket clients; the next one is refused with close code 1013.")
@click.option("--max-message-mb", type=click.FloatRange(min=0, min_open=True), default=8.0, show_default=True,
              help="Largest client message (MiB); larger ones get an error and close code 1009.")
@click.option("--max-side", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Frames with a longer side above this are downscaled at ingest (results still in the sent "
                   "frame's pixels); bounds each frame's memory and time under the inference lock.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="uvicorn log level.")
def serve(bundle, backend, precision, host, port, token, max_clients, max_message_mb, max_side, log_level) -> None:
    """Serve a bundle to scanners over a WebSocket at ws://HOST:PORT/ws (plus GET /health and /metrics).

    Clients send JPEG/PNG frames or raw pixels (b'USR1' header) and get one JSON result per processed frame;
    the newest frame wins when the model is slower than the scanner. Protocol: docs/serve.md."""
    import usedge
    from usedge.serve import ServeConfig, create_app, new_token, run

    generated = not token
    config = ServeConfig(token=token or new_token(), host=host, port=port, max_clients=max_clients,
                         max_message_bytes=int(max_message_mb * (1 << 20)), max_side=max_side)
    predictor = usedge.load(bundle or str(default_bundle()), backend=backend, precision=precision)
    app = create_app(predictor, config)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.secho(f"warning: binding {host}: frames and the token travel unencrypted; prefer 127.0.0.1 behind a "
                    "TLS reverse proxy (docs/serve.md).", fg="yellow", err=True)
    click.echo(f"serving {predictor!r} at ws://{host}:{port}/ws", err=True)
    if generated:
        click.echo(f"token (generated; pass --token or USEDGE_TOKEN to fix one): {config.token}", err=True)
    try:
        run(app, config, log_level=log_level)
    finally:
        predictor.close()
