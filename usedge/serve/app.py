"""The ``usedge serve`` FastAPI app: a WebSocket ``/ws`` for frames, ``GET /health`` and ``GET /metrics``.

    app = create_app(usedge.load("out/bundle"), ServeConfig(token="..."))
    run(app, config)                       # uvicorn, blocking

Per client: a receive loop decodes binary messages (in a worker thread) into a one-slot latest-frame-wins buffer;
an inference task takes the newest frame and runs the shared Predictor in a single worker thread (under a lock),
so the event loop stays responsive and a slow model drops frames (counted, reported) instead of falling behind.
Protocol: usedge/serve/protocol.py and docs/serve.md. Needs the ``serve`` extra (fastapi, uvicorn, websockets).
"""
# no ``from __future__ import annotations`` here: FastAPI resolves endpoint annotations (WebSocket) at runtime
import asyncio
import contextlib
import hmac
import logging
import math
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Optional

import numpy as np

from usedge.errors import ConfigError, UsedgeError, require
from usedge.serve import protocol as p
from usedge.stream.slot import LatestSlot
from usedge.stream.tracker import Tracker

require("fastapi", "serve", "usedge serve")
from fastapi import FastAPI, Request, WebSocket  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

__all__ = ["ServeConfig", "create_app", "new_token", "run", "uvicorn_config"]

log = logging.getLogger("usedge.serve")
MIB = 1 << 20


def new_token() -> str:
    """A fresh random access token (32 bytes of entropy, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ServeConfig:
    """Server settings. ``token`` is required: clients send it as ``Authorization: Bearer <token>`` or ``?token=``."""

    token: str
    host: str = "127.0.0.1"
    port: int = 8765
    max_clients: int = 4
    max_message_bytes: int = 8 * MIB
    overlay_quality: int = 80
    warmup: int = 3
    max_side: int = p.MAX_SIDE
    #: a client that sends nothing for this long is closed (CLOSE_IDLE) so that it cannot hold a slot forever by
    #: answering pings; 0 turns it off
    idle_timeout_s: float = 60.0
    #: a connection that has not sent a whole request head (request line + headers) this long after connecting
    #: or after its last response is closed (slowloris: headers at 1 byte/s); 0 turns it off
    head_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token.strip():
            raise ConfigError("usedge serve needs a non-empty token.",
                              fix="pass --token T, set USEDGE_TOKEN, or leave both out to get a generated one.")
        if not self.token.isascii() or any(c.isspace() for c in self.token):
            raise ConfigError("the token must be printable ASCII without spaces.", fix="e.g. usedge.serve.new_token().")
        _positive("max_clients", self.max_clients)
        _positive("max_message_bytes", self.max_message_bytes)
        _positive("port", self.port, allow_zero=True)
        if self.port > 65535:
            raise ConfigError(f"port {self.port} is above 65535.", fix="e.g. --port 8765.")
        if isinstance(self.overlay_quality, bool) or not 1 <= int(self.overlay_quality) <= 100:
            raise ConfigError(f"overlay_quality must be 1..100, got {self.overlay_quality!r}.", fix="e.g. 80.")
        _positive("warmup", self.warmup, allow_zero=True)
        _positive("max_side", self.max_side)
        for name, flag in (("idle_timeout_s", "--idle-timeout 60"), ("head_timeout_s", "--head-timeout 10")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ConfigError(f"{name} must be a number of seconds >= 0 (0: off), got {value!r}.",
                                  fix=f"e.g. {flag}.")


def _positive(name: str, value: object, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}.", fix=f"check the {name} setting.")


# -- shared server state ----------------------------------------------------------------------------------
class _Server:
    """What all connections share: the Predictor (one worker thread + a lock), the tracker, client counts."""

    def __init__(self, predictor: Any, config: ServeConfig) -> None:
        self.predictor = predictor
        self.config = config
        self.tracker = Tracker(warmup=config.warmup)
        self.infer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usedge-infer")
        self.decode_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="usedge-decode")
        self.lock = threading.Lock()
        self.clients = 0
        self.counts = {"accepted": 0, "refused_auth": 0, "refused_busy": 0, "closed_too_big": 0, "closed_idle": 0}
        self._token = config.token.encode()

    def authorised(self, headers: Any, query: Any) -> bool:
        given = _bearer(headers.get("authorization")) or query.get("token") or ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self._token)

    def predict(self, image: np.ndarray, tasks: Optional[tuple]) -> Any:
        with self.lock:
            return self.predictor(image, tasks=tasks)

    def overlay(self, image: np.ndarray, result: Any) -> bytes:
        import cv2

        from usedge.stream.overlay import draw

        ok, buf = cv2.imencode(".jpg", draw(image, result), [cv2.IMWRITE_JPEG_QUALITY, self.config.overlay_quality])
        return buf.tobytes() if ok else b""

    def metrics(self) -> dict:
        return {**self.tracker.summary(), "clients": {"connected": self.clients, "max": self.config.max_clients,
                                                      **self.counts}}

    def health(self) -> dict:
        choice = getattr(self.predictor, "choice", None)
        return {"status": "ok", "backend": getattr(choice, "backend", "unknown"),
                "precision": getattr(choice, "precision", "unknown"),
                "tasks": list(getattr(self.predictor, "tasks", ()) or ())}

    def close(self) -> None:
        """Cancel queued work and wait for the frame in flight: the caller closes the Predictor next, and must
        not drop the session under an inference still running on the worker thread."""
        self.infer_pool.shutdown(wait=True, cancel_futures=True)
        self.decode_pool.shutdown(wait=True, cancel_futures=True)


def _bearer(value: Optional[str]) -> str:
    if not value:
        return ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


# -- one connection -----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Item:
    seq: int
    image: np.ndarray            # what the model analyses (at most max_side per side)
    t_received: float
    decode_ms: float
    width: int                   # the frame as sent
    height: int


class _LatestSlot:
    """The latest-frame-wins slot (:class:`usedge.stream.slot.LatestSlot`) awaited on the event loop."""

    def __init__(self) -> None:
        self._slot: LatestSlot[_Item] = LatestSlot()
        self._ready = asyncio.Event()

    @property
    def dropped(self) -> int:
        return self._slot.dropped

    def put(self, item: _Item) -> bool:
        replaced = self._slot.put(item)
        self._ready.set()
        return replaced

    async def get(self) -> _Item:
        while self._slot.empty:
            self._ready.clear()
            await self._ready.wait()
        return self._slot.take()


class _Connection:
    def __init__(self, server: _Server, ws: WebSocket) -> None:
        self.server = server
        self.ws = ws
        self.options = p.ClientOptions()
        self.measurer = None          # usedge.measure.Measurer while the client asks for measurements
        self.frozen = None            # the frame gate's frozen-screen check of this client's frames
        self.slot = _LatestSlot()
        self.seq = 0
        self._send_lock = asyncio.Lock()

    async def send_text(self, text: str) -> None:
        async with self._send_lock:
            await self.ws.send_text(text)

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(data)

    async def run(self) -> None:
        worker = asyncio.create_task(self._infer_loop())
        try:
            await self._receive_loop()
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    # -- receive side ----------------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        limit, idle = self.server.config.max_message_bytes, self.server.config.idle_timeout_s
        while True:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), timeout=idle or None)
            except asyncio.TimeoutError:
                self.server.counts["closed_idle"] += 1
                await self.ws.close(code=p.CLOSE_IDLE, reason=f"idle for {idle:g} s")
                return
            if msg["type"] == "websocket.disconnect":
                return
            data, text = msg.get("bytes"), msg.get("text")
            size = len(data) if data is not None else len((text or "").encode())
            try:
                p.check_size(size, limit)
            except p.MessageTooBig as exc:
                self.server.counts["closed_too_big"] += 1
                await self.send_text(p.encode_error(exc.message, fix=exc.fix))
                await self.ws.close(code=p.CLOSE_TOO_BIG, reason="message too big")
                return
            if data is not None:
                await self._on_frame(data)
            elif text is not None:
                await self._on_text(text)

    async def _on_frame(self, data: bytes) -> None:
        seq, self.seq = self.seq, self.seq + 1
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            frame = await loop.run_in_executor(self.server.decode_pool, p.ingest, data, p.MAX_PIXELS,
                                               self.server.config.max_side)
        except UsedgeError as exc:
            self.server.tracker.count("errors")
            await self.send_text(p.encode_error(exc.message, frame=seq, fix=exc.fix))
            return
        t1 = time.perf_counter()
        self.server.tracker.frame_in(t1)
        if self.slot.put(_Item(seq, frame.image, t0, (t1 - t0) * 1e3, frame.width, frame.height)):
            self.server.tracker.count("dropped")

    async def _on_text(self, text: str) -> None:
        try:
            options = p.parse_options(text, self.options)
            if options.tasks is not None and hasattr(self.server.predictor, "select"):
                options = replace(options, tasks=tuple(self.server.predictor.select(options.tasks)))
        except UsedgeError as exc:
            await self.send_text(p.encode_error(exc.message, fix=exc.fix))
            return
        if options.measure and (self.measurer is None or options.mm_per_pixel != self.options.mm_per_pixel
                                or not self.options.measure):
            from usedge.measure import Measurer

            self.measurer = Measurer()          # a new calibration or a new start: a new track
        elif not options.measure:
            self.measurer = None
        if options.measure and options.tasks is not None:      # the view classifiers the measurements check
            from usedge.measure.compute import with_views

            have = getattr(self.server.predictor, "tasks", None) or ()
            options = replace(options, tasks=tuple(with_views(options.tasks, have)))
        self.options = options
        await self.send_text(p.encode_options(options))

    # -- inference side --------------------------------------------------------------------------------
    async def _infer_loop(self) -> None:
        while True:
            item = await self.slot.get()
            try:
                await self._process(item)
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:   # the client went away while we answered
                log.debug("serve: send failed (%s); ending this connection's inference", exc)
                return

    async def _process(self, item: _Item) -> None:
        loop = asyncio.get_running_loop()
        options = self.options
        t_start = time.perf_counter()
        try:
            result = await loop.run_in_executor(self.server.infer_pool, self.server.predict, item.image, options.tasks)
            t_ready = time.perf_counter()
            self._gate(result, item.image)
            # serialising (contours) runs off the event loop, so one big result cannot stall other clients
            payload = await loop.run_in_executor(self.server.decode_pool, _payload, result, options.contours,
                                                 item.width, item.height, self.measurer, options.mm_per_pixel)
            latency = self._latency(item, result, t_start, t_ready)
            text = p.encode_result(item.seq, payload, latency, self.slot.dropped)
        except (UsedgeError, ValueError) as exc:
            self.server.tracker.count("errors")
            await self.send_text(p.encode_error(getattr(exc, "message", str(exc)), frame=item.seq,
                                                fix=getattr(exc, "fix", None)))
            return
        except Exception as exc:  # noqa: BLE001 - one bad frame must not end the connection
            log.exception("serve: frame %d failed", item.seq)
            self.server.tracker.count("errors")
            await self.send_text(p.encode_error(f"inference failed: {type(exc).__name__}: {exc}", frame=item.seq))
            return
        self.server.tracker.frame_out({**latency, "end_to_end": latency["server"]}, t_ready)
        await self.send_text(text)
        if options.overlay:
            jpeg = await loop.run_in_executor(self.server.decode_pool, self.server.overlay, item.image, result)
            await self.send_bytes(jpeg)

    def _gate(self, result: Any, image: np.ndarray) -> None:
        """This client's frozen-screen check (its own frames), and the rejected count."""
        gate = getattr(result, "gate", None)
        if gate is None:
            return
        if self.frozen is None:
            from usedge.data.quality import FrozenCheck

            self.frozen = FrozenCheck(gate.thresholds.frozen_frames)
        if self.frozen(image):
            result.gate = gate.rejected_by(f"frozen screen (the same image {self.frozen.repeats + 1} frames in a "
                                           "row)", "frozen_repeats", float(self.frozen.repeats))
        if not result.gate.accepted:
            self.server.tracker.count("rejected")

    @staticmethod
    def _latency(item: _Item, result: Any, t_start: float, t_ready: float) -> dict[str, float]:
        timings = getattr(result, "timings_ms", {}) or {}
        out = {"decode": item.decode_ms, "queue_wait": (t_start - item.t_received) * 1e3 - item.decode_ms}
        out.update({k: float(timings[k]) for k in ("preprocess", "infer", "postprocess") if k in timings})
        out["server"] = (t_ready - item.t_received) * 1e3
        return {k: v for k, v in out.items() if math.isfinite(v)}


def _payload(result: Any, contours: bool, width: int, height: int, measurer: Any = None,
             mm_per_pixel: tuple[float, float] | None = None) -> dict:
    """The result's JSON in the pixels of the frame as sent (see protocol.rescale_result), measured first when
    the connection asked: on the analysed (possibly downscaled) frame, with the sent frame's pixel size carried
    over, so lengths come out in mm (or in the sent frame's px)."""
    if measurer is not None:
        from usedge.measure import Scale

        base = Scale.of(mm_per_pixel)
        kx, ky = result.width / width, result.height / height
        measurer(result, scale=base if (kx, ky) == (1.0, 1.0) else base.resized(kx, ky))
    return p.rescale_result(result.to_json(contours=contours), width, height)


# -- the app ------------------------------------------------------------------------------------------------
def create_app(predictor: Any, config: ServeConfig) -> FastAPI:
    """A FastAPI app serving ``predictor`` (anything callable as ``predictor(frame, tasks=...) -> FrameResult``)."""
    if not isinstance(config, ServeConfig):
        raise ConfigError(f"config must be a ServeConfig, got {type(config).__name__}.",
                          fix="e.g. create_app(predictor, ServeConfig(token=new_token())).")
    server = _Server(predictor, config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            yield
        finally:
            server.close()

    app = FastAPI(title="usedge serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.usedge = server

    @app.get("/health")
    def health() -> dict:
        return server.health()

    @app.get("/metrics")
    def metrics(request: Request) -> Any:
        if not server.authorised(request.headers, request.query_params):
            return JSONResponse({"error": "missing or wrong token."}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return server.metrics()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await _serve_client(server, websocket)

    return app


async def _serve_client(server: _Server, websocket: WebSocket) -> None:
    await websocket.accept()
    if not server.authorised(websocket.headers, websocket.query_params):
        server.counts["refused_auth"] += 1
        await websocket.close(code=p.CLOSE_POLICY, reason="missing or wrong token")
        return
    if server.clients >= server.config.max_clients:
        server.counts["refused_busy"] += 1
        await websocket.close(code=p.CLOSE_TRY_LATER, reason=f"server busy ({server.config.max_clients} clients)")
        return
    server.clients += 1
    server.counts["accepted"] += 1
    try:
        await _Connection(server, websocket).run()
    except (WebSocketDisconnect, OSError):      # the client went away (uvicorn's ClientDisconnected is an OSError)
        pass
    finally:
        server.clients -= 1


# -- running it -----------------------------------------------------------------------------------------------
def uvicorn_config(app: FastAPI, config: ServeConfig, log_level: str = "info") -> Any:
    """The uvicorn Config: the transport's own message cap sits 1 MiB above ours, so an oversized message gets
    our JSON error and 1009 (beyond that the WebSocket layer itself closes with 1009)."""
    uvicorn = require("uvicorn", "serve", "usedge serve")
    from usedge.serve.http import head_timeout_protocol

    cfg = uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level, ws="websockets-sansio",
                         http=head_timeout_protocol(config.head_timeout_s),
                         ws_max_size=config.max_message_bytes + MIB, proxy_headers=False, server_header=False,
                         lifespan="on")
    for name in ("uvicorn.access", "uvicorn.error"):     # uvicorn logs the path with its query: ?token=... in clear
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
    return cfg


class RedactTokens(logging.Filter):
    """Replace the value of every ``token=`` query parameter in a log record (message and arguments) by ``***``."""

    PATTERN = re.compile(r"(?i)(token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.PATTERN.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


def run(app: FastAPI, config: ServeConfig, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C)."""
    uvicorn = require("uvicorn", "serve", "usedge serve")
    uvicorn.Server(uvicorn_config(app, config, log_level)).run()

