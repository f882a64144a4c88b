"""The ``usedge serve`` wire protocol: pure functions (no network, no fastapi), see docs/serve.md.

Client -> server, per WebSocket message:

* binary, an encoded image: JPEG (``FF D8 FF``) or PNG (``89 50 4E 47 0D 0A 1A 0A``), grey or BGR(A), 8/16 bit;
* binary, raw pixels: the 10-byte little-endian header :data:`RAW_HEADER` (magic ``b"USR1"``, uint16 height,
  uint16 width, uint8 channels (1, 3 or 4: grey, BGR, BGRA), uint8 dtype code (1 = uint8, 2 = uint16 little
  endian)), then ``height * width * channels`` pixels row-major (channels last);
* text, JSON options for this connection: ``{"tasks": [...] | "all", "overlay": bool, "contours": bool}``
  (every key optional; absent keys keep their value).

Server -> client: one JSON text message per processed frame (:func:`encode_result`), ``{"error": ...}`` for a
frame or message that could not be used (:func:`encode_error`), ``{"options": ...}`` acknowledging options,
and, when ``overlay`` is on, a JPEG binary message right after each result.
"""
from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from usedge.errors import DataError

__all__ = ["CLOSE_IDLE", "CLOSE_INTERNAL", "CLOSE_NORMAL", "CLOSE_POLICY", "CLOSE_TOO_BIG", "CLOSE_TRY_LATER", "DTYPE_CODES",
           "Ingested", "JPEG_MAGIC", "MAX_PIXELS", "MAX_SIDE", "PNG_MAGIC", "RAW_HEADER", "RAW_MAGIC",
           "ClientOptions", "MessageTooBig", "ProtocolError", "RawHeader", "check_size", "decode_frame", "decode_raw",
           "detect_kind", "encode_error", "encode_options", "encode_raw", "encode_result", "fit_side", "image_size",
           "ingest", "parse_options", "parse_raw_header", "rescale_result"]

RAW_MAGIC = b"USR1"
#: magic (4 bytes), height (uint16), width (uint16), channels (uint8), dtype code (uint8); little endian
RAW_HEADER = struct.Struct("<4sHHBB")
DTYPE_CODES: dict[int, np.dtype] = {1: np.dtype(np.uint8), 2: np.dtype("<u2")}
RAW_CHANNELS = (1, 3, 4)
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Largest frame accepted, in pixels (the Predictor's limit, checked before decoding: no decompression bombs).
MAX_PIXELS = 8192 * 8192
#: Frames with a longer side above this are downscaled at ingest (``usedge serve --max-side``); results are
#: still given in the pixels of the frame as sent (:func:`rescale_result`). The models see 128-512 px, so
#: nothing they can use is lost; what one frame costs in memory and in time under the inference lock is
#: bounded by this side instead of by the client (docs/serve.md has the measured bound).
MAX_SIDE = 2048

#: WebSocket close codes used by the server (RFC 6455 / IANA registry)
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008          # missing or wrong token
CLOSE_TOO_BIG = 1009         # message above the size limit
CLOSE_INTERNAL = 1011        # unexpected server failure
CLOSE_TRY_LATER = 1013       # too many clients connected
CLOSE_IDLE = 4000            # no message within the server's idle timeout (the slot goes to the next client)

OPTION_KEYS = ("tasks", "overlay", "contours", "measure", "mm_per_pixel")


class ProtocolError(DataError):
    """A client message that cannot be used (the connection stays open)."""


class MessageTooBig(ProtocolError):
    """A client message above the size limit (the server closes with 1009)."""


# -- sizes and kinds ---------------------------------------------------------------------------------------
def check_size(n_bytes: int, limit: int) -> None:
    """Refuse a message of ``n_bytes`` above ``limit`` bytes."""
    if n_bytes > limit:
        raise MessageTooBig(f"message of {n_bytes} bytes is above the {limit}-byte limit.",
                            fix="send smaller frames (JPEG, or downscale / crop to the scan region), or start the "
                                "server with a larger --max-message-mb.")


def detect_kind(data: bytes) -> str:
    """"jpeg", "png" or "raw" from the first bytes of a binary message."""
    head = bytes(data[:8])
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(RAW_MAGIC):
        return "raw"
    raise ProtocolError(f"unknown binary message (starts with {head[:4].hex(' ') or 'nothing'}).",
                        fix="send a JPEG or PNG image, or raw pixels after the b'USR1' header (docs/serve.md).")


# -- raw frames --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawHeader:
    height: int
    width: int
    channels: int
    dtype: np.dtype

    @property
    def payload_bytes(self) -> int:
        return self.height * self.width * self.channels * self.dtype.itemsize

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.height, self.width) if self.channels == 1 else (self.height, self.width, self.channels)


def parse_raw_header(data: bytes) -> RawHeader:
    """The header of a raw-pixel message, validated (sizes, channels, dtype code)."""
    if len(data) < RAW_HEADER.size:
        raise ProtocolError(f"raw frame is {len(data)} bytes, shorter than its {RAW_HEADER.size}-byte header.",
                            fix="send b'USR1' + uint16 height + uint16 width + uint8 channels + uint8 dtype code.")
    magic, h, w, c, code = RAW_HEADER.unpack_from(data)
    if magic != RAW_MAGIC:
        raise ProtocolError(f"raw frame magic {magic!r} is not {RAW_MAGIC!r}.", fix="start raw frames with b'USR1'.")
    if h == 0 or w == 0:
        raise ProtocolError(f"raw frame is {w}×{h}: empty.", fix="send a frame at least 1×1 pixels.")
    if c not in RAW_CHANNELS:
        raise ProtocolError(f"raw frame has {c} channels.", fix="use 1 (grey), 3 (BGR) or 4 (BGRA).")
    if code not in DTYPE_CODES:
        raise ProtocolError(f"raw frame dtype code {code} is unknown.",
                            fix="use 1 (uint8) or 2 (uint16 little endian).")
    return RawHeader(h, w, c, DTYPE_CODES[code])


def decode_raw(data: bytes) -> np.ndarray:
    """A raw-pixel message as an H×W or H×W×C array (a copy: safe after the message buffer is gone)."""
    header = parse_raw_header(data)
    payload = len(data) - RAW_HEADER.size
    if payload != header.payload_bytes:
        raise ProtocolError(f"raw {header.width}×{header.height}×{header.channels} {header.dtype.name} frame needs "
                            f"{header.payload_bytes} pixel bytes after the header, got {payload}.",
                            fix="check height, width, channels and dtype in the header against the pixels sent.")
    pixels = np.frombuffer(data, dtype=header.dtype, offset=RAW_HEADER.size)
    return pixels.reshape(header.shape).astype(header.dtype.newbyteorder("="), copy=True)


def encode_raw(image: np.ndarray) -> bytes:
    """Header + pixels of an H×W / H×W×C uint8 or uint16 array (what a non-Python client would send)."""
    img = np.asarray(image)
    if img.dtype not in (np.uint8, np.uint16):
        raise DataError(f"raw frames carry uint8 or uint16 pixels, not {img.dtype}.", fix="convert the image first.")
    channels = 1 if img.ndim == 2 else (img.shape[2] if img.ndim == 3 else 0)
    if channels not in RAW_CHANNELS or not (0 < img.shape[0] < 65536 and 0 < img.shape[1] < 65536):
        raise DataError(f"raw frames are H×W, H×W×3 or H×W×4 below 65536 pixels a side, not {img.shape}.",
                        fix="pass one grey or BGR frame.")
    code = 1 if img.dtype == np.uint8 else 2
    header = RAW_HEADER.pack(RAW_MAGIC, img.shape[0], img.shape[1], channels, code)
    return header + np.ascontiguousarray(img, dtype=img.dtype.newbyteorder("<")).tobytes()


# -- encoded images ----------------------------------------------------------------------------------------
def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a JPEG or PNG from its header, without decoding the pixels."""
    from usedge._io import header_size
    from usedge.errors import DataError

    kind = detect_kind(data)
    if kind == "raw":
        raise ProtocolError("raw frames carry their size in the header.", fix="use parse_raw_header.")
    try:
        size = header_size(data)
    except DataError as exc:
        raise ProtocolError(str(exc).split("\nFix:")[0], fix=f"send a complete {kind.upper()} file.") from None
    if size is None:  # cannot happen after detect_kind said JPEG or PNG; a clear error all the same
        raise ProtocolError(f"no image size in the {kind.upper()} header.", fix=f"send a complete {kind.upper()} file.")
    return size


def decode_frame(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A binary client message (JPEG, PNG or raw) as an H×W grey or H×W×C BGR(A) uint8/uint16 array, as sent
    (:func:`ingest` without the size bound)."""
    return ingest(data, max_pixels, max_side=None).image


def _decode_encoded(data: bytes, kind: str, reduce: int = 1) -> np.ndarray:
    from usedge._io import decode_image

    try:   # the same strict decoder as files and uploads
        return decode_image(data, f"the {kind.upper()} frame", reduce=reduce)
    except DataError as exc:
        raise ProtocolError(f"could not decode the {kind.upper()} image ({len(data)} bytes): {exc}",
                            fix="send a complete, valid JPEG or PNG file.") from None


@dataclass(frozen=True, eq=False)
class Ingested:
    """A decoded client frame: ``image`` is what the model analyses (at most ``max_side`` per side, uint8 when
    it was downscaled); ``width`` × ``height`` is the frame as sent."""

    image: np.ndarray
    width: int
    height: int

    @property
    def scaled(self) -> bool:
        return self.image.shape[:2] != (self.height, self.width)


def ingest(data: bytes, max_pixels: int = MAX_PIXELS, max_side: int | None = MAX_SIDE) -> Ingested:
    """Decode a binary client message and bring it to at most ``max_side`` px per side (None: as sent).

    A JPEG at least twice too large is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself (never at full
    size); any frame still too large is converted to uint8 and shrunk with INTER_AREA, aspect kept.
    """
    kind = detect_kind(data)
    if kind == "raw":
        header = parse_raw_header(data)
        w, h = header.width, header.height
        _check_pixels(w, h, max_pixels)
        image = decode_raw(data)
    else:
        w, h = image_size(data)
        _check_pixels(w, h, max_pixels)
        reduce = 1
        while kind == "jpeg" and max_side and reduce < 8 and max(w, h) >= 2 * reduce * max_side:
            reduce *= 2
        image = _decode_encoded(data, kind, reduce)
    return Ingested(fit_side(image, max_side), int(w), int(h))


def fit_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """``image`` shrunk (INTER_AREA, aspect kept, uint8) so its longer side is at most ``max_side``."""
    import cv2

    from usedge.data.transforms import to_gray_or_bgr_uint8

    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    k = max_side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return cv2.resize(to_gray_or_bgr_uint8(image), size, interpolation=cv2.INTER_AREA)


def rescale_result(payload: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    """A ``FrameResult.to_json()`` of a downscaled frame, with every pixel quantity mapped to the frame as
    sent (``width`` × ``height``); ``analysed`` records the size the model's results were computed at.

    Boxes and points scale exactly; areas scale by the pixel-area ratio and contours by the side ratios
    (rounded), so a mask's detail is that of the analysed size.
    """
    aw, ah = int(payload["width"]), int(payload["height"])
    if (aw, ah) == (width, height):
        return payload
    sx, sy = width / aw, height / ah
    out = {**payload, "width": int(width), "height": int(height), "analysed": {"width": aw, "height": ah}}
    if payload.get("region"):
        x0, y0, x1, y1 = payload["region"]
        out["region"] = [round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)]
    out["tasks"] = {k: _rescale_task(v, sx, sy, width, height) for k, v in payload["tasks"].items()}
    return out


def _rescale_task(t: dict[str, Any], sx: float, sy: float, width: int, height: int) -> dict[str, Any]:
    t = dict(t)
    kind = t.get("kind")
    if kind == "segmentation":
        t["mask_shape"] = [int(height), int(width)]
        t["area_pixels"] = {k: round(v * sx * sy) for k, v in t["area_pixels"].items()}
        if "contours" in t:
            t["contours"] = {k: [[[round(x * sx), round(y * sy)] for x, y in c] for c in cs]
                             for k, cs in t["contours"].items()}
    elif kind == "detection":
        t["bbox_pixels"] = [v * (sx if i % 2 == 0 else sy) for i, v in enumerate(t["bbox_pixels"])]
        if "boxes_pixels" in t:
            t["boxes_pixels"] = [[v * (sx if i % 2 == 0 else sy) for i, v in enumerate(b)] for b in t["boxes_pixels"]]
    elif kind == "regression":
        t["predicted_points_pixels"] = [v * (sx if i % 2 == 0 else sy)
                                        for i, v in enumerate(t["predicted_points_pixels"])]
    return t


def _check_pixels(w: int, h: int, max_pixels: int) -> None:
    if w == 0 or h == 0:
        raise ProtocolError(f"image is {w}×{h}: empty.", fix="send a frame at least 1×1 pixels.")
    if w * h > max_pixels:
        raise ProtocolError(f"image is {w}×{h} = {w * h / 1e6:.1f} MP, above the {max_pixels / 1e6:.1f} MP limit.",
                            fix="downscale the frame or crop it to the scan region first.")


# -- options -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClientOptions:
    """Per-connection options: tasks to decode (None: the model's default), overlay JPEG, segmentation contours,
    clinical measurements (``usedge.measure``, tracked over the connection's frames) and the pixel size of the
    frames as sent (mm; one value or [x, y]; None: lengths in px)."""

    tasks: tuple[str, ...] | None = None
    overlay: bool = False
    contours: bool = False
    measure: bool = False
    mm_per_pixel: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(self.tasks) if self.tasks is not None else None
        d["mm_per_pixel"] = list(self.mm_per_pixel) if self.mm_per_pixel is not None else None
        return d


def parse_options(text: str, current: ClientOptions | None = None) -> ClientOptions:
    """Apply a JSON options message to ``current`` (absent keys keep their value)."""
    current = current or ClientOptions()
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"text message is not JSON ({exc}).",
                            fix='send options as JSON, e.g. {"tasks": ["fetal_head"], "overlay": false}.') from None
    if not isinstance(obj, Mapping):
        raise ProtocolError(f"options must be a JSON object, got {type(obj).__name__}.",
                            fix='e.g. {"tasks": ["fetal_head"], "overlay": false}.')
    unknown = sorted(set(obj) - set(OPTION_KEYS))
    if unknown:
        raise ProtocolError(f"unknown option(s) {unknown}.", fix=f"use some of: {', '.join(OPTION_KEYS)}.")
    changes: dict[str, Any] = {}
    if "tasks" in obj:
        changes["tasks"] = _tasks(obj["tasks"])
    if "mm_per_pixel" in obj:
        changes["mm_per_pixel"] = _mm_per_pixel(obj["mm_per_pixel"])
    for key in ("overlay", "contours", "measure"):
        if key in obj:
            if not isinstance(obj[key], bool):
                raise ProtocolError(f"option {key!r} must be true or false, got {obj[key]!r}.",
                                    fix=f'e.g. {{"{key}": true}}.')
            changes[key] = obj[key]
    return replace(current, **changes)


def _mm_per_pixel(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = [value, value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if (not isinstance(pair, Sequence) or isinstance(pair, (str, bytes)) or len(pair) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                       for v in pair)):
        raise ProtocolError(f"option 'mm_per_pixel' must be a positive number, [x, y] or null, got {value!r}.",
                            fix='e.g. {"mm_per_pixel": 0.2} (the scanner\'s pixel size of the frames you send).')
    return float(pair[0]), float(pair[1])


def _tasks(value: Any) -> tuple[str, ...] | None:
    if value is None or value == "all":
        return None
    if isinstance(value, str):
        value = [t.strip() for t in value.split(",") if t.strip()]
    if (not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or not value
            or not all(isinstance(t, str) and t for t in value)):
        raise ProtocolError(f"option 'tasks' must be a non-empty list of task names or \"all\", got {value!r}.",
                            fix='e.g. {"tasks": ["fetal_head", "organ_cls"]}.')
    return tuple(value)


# -- server messages ---------------------------------------------------------------------------------------
def encode_result(frame: int, result: Mapping[str, Any], latency_ms: Mapping[str, float], dropped: int) -> str:
    """The JSON text message of one processed frame."""
    latency = {k: round(float(v), 3) for k, v in latency_ms.items() if v is not None and math.isfinite(v)}
    return json.dumps({"frame": frame, "result": result, "latency_ms": latency, "dropped": int(dropped)},
                      separators=(",", ":"), allow_nan=False, default=_jsonable)


def encode_error(message: str, frame: int | None = None, fix: str | None = None) -> str:
    """The JSON text message of a refused frame or message."""
    d: dict[str, Any] = {"error": message}
    if fix:
        d["fix"] = fix
    if frame is not None:
        d["frame"] = frame
    return json.dumps(d, separators=(",", ":"))


def encode_options(options: ClientOptions) -> str:
    return json.dumps({"options": options.to_json()}, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
