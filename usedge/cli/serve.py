"""``usedge serve``: serve a bundle over a WebSocket (docs/serve.md), or through NVIDIA Triton with ``--triton``
(docs/triton.md); ``usedge triton-repo``: a bundle as a Triton model repository."""
from __future__ import annotations

import click

from usedge.cli.stream import default_bundle, region_option


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
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Close a client that sends nothing for this many seconds (close code 4000), so an idle client "
                   "cannot hold a slot; 0: never.")
@click.option("--head-timeout", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Close a connection that has not sent a whole HTTP request head (request line and headers) "
                   "within this many seconds (slowloris); 0: never.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="uvicorn log level.")
@click.option("--triton", is_flag=True,
              help="Serve through a real NVIDIA Triton server (PyTriton; usedge[triton] in its own venv): KServe v2 "
                   "HTTP and gRPC, dynamic batching across clients, Prometheus metrics. docs/triton.md.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="--triton: HTTP.")
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=8001, show_default=True, help="--triton: gRPC.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=8002, show_default=True,
              help="--triton: Prometheus metrics (GET /metrics).")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="--triton: largest dynamic batch of same-sized frames from different clients.")
@region_option
@click.pass_context
def serve(ctx, bundle, backend, precision, host, port, token, max_clients, max_message_mb, max_side, idle_timeout,
          head_timeout, log_level, triton, http_port, grpc_port, metrics_port, max_batch, region) -> None:
    """Serve a bundle to scanners over a WebSocket at ws://HOST:PORT/ws (plus GET /health and /metrics).

    Clients send JPEG/PNG frames or raw pixels (b'USR1' header) and get one JSON result per processed frame;
    the newest frame wins when the model is slower than the scanner. Protocol: docs/serve.md.

    With --triton the same Predictor is the Triton model 'usedge' (frame UINT8 [N,H,W,C] in, result JSON out)."""
    import usedge
    from usedge.serve import ServeConfig, create_app, new_token, run

    if triton:
        from usedge.serve.triton import TritonServeConfig

        config = TritonServeConfig(host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
                                   max_batch=max_batch, max_side=max_side,
                                   verbose=bool((ctx.find_root().params or {}).get("verbose")))
        _serve_triton(bundle, backend, precision, config, region)
        return

    generated = not token
    config = ServeConfig(token=token or new_token(), host=host, port=port, max_clients=max_clients,
                         max_message_bytes=int(max_message_mb * (1 << 20)), max_side=max_side,
                         idle_timeout_s=idle_timeout, head_timeout_s=head_timeout)
    predictor = usedge.load(bundle or str(default_bundle()), backend=backend, precision=precision, region=region)
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


def _serve_triton(bundle, backend: str, precision: str, config, region: str = "dicom") -> None:
    import usedge
    from usedge.errors import ConfigError
    from usedge.serve.triton import environment_problem, serve_triton

    problem = environment_problem()          # before opening the model: say at once what is missing
    if problem:
        raise ConfigError(f"cannot start Triton: {problem}", fix="docs/triton.md, 'Where it runs'.")
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        click.secho(f"warning: binding {config.host}: Triton has no access token here; frames travel unencrypted "
                    "(docs/triton.md).", fg="yellow", err=True)
    predictor = usedge.load(bundle or str(default_bundle()), backend=backend, precision=precision, region=region)

    def ready(c, log_file) -> None:
        click.echo(f"serving {predictor!r} as Triton model 'usedge': http://{c.host}:{c.http_port}/v2/models/usedge, "
                   f"grpc {c.host}:{c.grpc_port}, metrics http://{c.host}:{c.metrics_port}/metrics"
                   + (f"; Triton's log: {log_file}" if log_file else ""), err=True)

    try:
        serve_triton(predictor, config, on_ready=ready)     # returns after Ctrl-C / SIGTERM, raises on a failure
        click.echo("stopped", err=True)
    finally:
        predictor.close()


@click.command("triton-repo")
@click.argument("repo", type=click.Path(file_okay=False))
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="Bundle folder/.zip (default: the packaged INT8 default bundle).")
@click.option("--target", default=None, help="Target profile name or YAML path (batch, devices; default: cpu).")
@click.option("--prefix", default="usedge", show_default=True, help="Model name prefix.")
@click.option("--no-predictor", is_flag=True, help="Only the tensor models (no Python pre/post model).")
@click.option("--overwrite", is_flag=True, help="Replace a repository usedge wrote earlier (other folders are refused).")
def triton_repo(repo, bundle, target, prefix, no_predictor, overwrite) -> None:
    """Write a bundle as a Triton model repository in REPO: one model per
    precision × backend (onnxruntime_onnx, openvino, tensorrt_plan for built engines) and the pre/post model
    'usedge' (raw frames in, JSON out). Each config.pbtxt is checked against Triton's ModelConfig schema when
    tritonclient is installed. docs/triton.md."""
    from usedge.bundle import load_bundle
    from usedge.export.triton import plan_repository, validate_config, write_repository
    from usedge.targets import load_target

    b = load_bundle(bundle or str(default_bundle()))
    profile = load_target(target or "cpu")
    checked = _validate_all(plan_repository(b, profile, prefix, not no_predictor), validate_config)  # before writing
    models = write_repository(b, repo, profile, prefix=prefix, predictor=not no_predictor, overwrite=overwrite)
    for m in models:
        kind = m.config.get("platform") or m.config.get("backend")
        click.echo(f"{repo}/{m.name}: {kind}, max_batch_size {m.config['max_batch_size']}"
                   + (f" ({m.note})" if m.note else ""))
    status = "checked against Triton's ModelConfig" if checked else "NOT checked (pip install 'tritonclient[grpc]')"
    click.echo(f"{len(models)} models; configs {status}", err=True)


def _validate_all(models, validate) -> bool:
    from usedge.errors import DependencyError

    try:
        for m in models:
            validate(m.config_text(), f"{m.name}/config.pbtxt")
    except DependencyError:
        return False
    return True
