"""Atomic file writes (temp file in the same folder + rename) and image I/O with clear errors."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from usedge.errors import ConfigError, DataError

# mkstemp / mkdtemp create 0600 / 0700 entries; finished files and folders get the usual umask-based modes
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE, DIR_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def _real(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_outputs(outputs: Mapping[str, str | os.PathLike | None],
                  inputs: Mapping[str, str | os.PathLike | None] = {}) -> None:
    """Refuse, before any work, a run whose outputs would replace what it reads or each other.

    ``outputs`` / ``inputs``: {option: path or None}. An output may not be an input, lie inside an input folder
    (``usedge eval --out DATA/val`` wrote predictions over the ground-truth masks), or hold an input inside it;
    two outputs may not be the same file. Paths are compared resolved (symlinks followed) and, where both
    exist, as the same file (hard links). A ConfigError names both options."""
    outs = {k: _real(v) for k, v in outputs.items() if v not in (None, "")}
    ins = {k: _real(v) for k, v in inputs.items() if v not in (None, "")}
    for o_name, o in outs.items():
        for i_name, i in ins.items():
            same = o == i or (o.exists() and i.exists() and os.path.samefile(o, i))
            if same or _within(o, i) or (i.is_dir() or o.is_dir() or not o.suffix) and _within(i, o):
                where = "is" if same else "is inside" if _within(o, i) else "holds"
                raise ConfigError(f"{o_name} {outputs[o_name]} {where} {i_name} {inputs[i_name]}: writing there "
                                  f"would replace what this run reads.",
                                  fix=f"give {o_name} a path outside {i_name}.")
    seen: dict[Path, str] = {}
    for o_name, o in outs.items():
        if o in seen:
            raise ConfigError(f"{seen[o]} and {o_name} are the same path ({outputs[o_name]}): one output would "
                              f"replace the other.", fix=f"give {o_name} its own path.")
        seen[o] = o_name


def check_writable(option: str, path: str | os.PathLike) -> None:
    """Refuse, before any work, an output whose folder cannot be written (the nearest existing ancestor must
    be a writable folder): otherwise a long run (an export) fails only at its end."""
    target = _real(path)
    probe = target if target.is_dir() else target.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: {probe} is not a folder this process can write to.",
                          fix=f"give {option} a path in a writable folder (or fix its permissions).")


def swap_in_dir(tmp: Path, path: Path) -> Path:
    """Replace folder ``path`` with the finished folder ``tmp`` (same parent): the old one is moved aside
    first and removed only after the rename, so a crash never leaves ``path`` half written."""
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.chmod(tmp, DIR_MODE)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return path


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike, marker: str):
    """Write a run's output folder in full or not at all: yields a fresh hidden folder beside ``path``; when the
    block ends normally it replaces ``path`` (:func:`swap_in_dir`), when it raises (an error, Ctrl-C) it is
    removed and ``path`` is left as it was. ``path`` must be new, empty, or an earlier output of the same kind
    (it holds ``marker``): a folder of other files is refused before any work."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / marker).exists())):
        raise ConfigError(f"{path} exists and is not an earlier output of this command (no {marker} in it); "
                          "it would be replaced as a whole.", fix="give a new or empty folder.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in_dir(tmp, path)


def reserve_names(folder: str | os.PathLike, stem: str, suffixes: tuple[str, ...]) -> list[Path]:
    """Claim new file names ``STEM-N<suffix>`` (one per suffix, the same N) in ``folder``, created empty with
    O_EXCL so that no other writer (a second request in the same second, on another thread or process) can get
    them: a run's outputs never land on a file of another run. Returns the paths, in ``suffixes`` order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 100_000):
        claimed: list[Path] = []
        try:
            for suffix in suffixes:
                path = folder / f"{stem}-{n}{suffix}"
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
                claimed.append(path)
            return claimed
        except FileExistsError:
            for path in claimed:
                path.unlink(missing_ok=True)
    raise DataError(f"{folder} already holds 100 000 outputs named {stem}-N.", fix="clear the folder.")


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename a finished temp file (made by mkstemp, mode 0600) onto ``path`` with the usual file mode."""
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Encode ``image`` (uint8/uint16, H×W or H×W×3 BGR) as PNG and write it atomically."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise DataError(f"Could not encode a {image.dtype} array of shape {image.shape} as PNG for {path}.")
    return atomic_write_bytes(path, buf.tobytes())


def read_image(path: str | os.PathLike, grayscale: bool = False) -> np.ndarray:
    """Read an image file unchanged in depth (8/16 bit); colour comes back as BGR.

    Raises:
        DataError: the file is missing, truncated or not a decodable image.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Image file not found: {path}", fix="check the path (CSV paths are relative to csv_files/).")
    return decode_image(path.read_bytes(), str(path), grayscale)


#: OpenCV's reduced-resolution decode flags (libjpeg DCT scaling for JPEG: 1/2, 1/4, 1/8 of the pixels decoded)
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_image(data: bytes, name: str, grayscale: bool = False, max_side: int | None = None,
                 reduce: int = 1) -> np.ndarray:
    """Decode image bytes strictly — the one decoder of files, uploads and server frames.

    ``cv2.imread`` fills the missing part of a truncated JPEG with grey and returns it (a third of the image
    silently wrong); a JPEG must carry its end-of-image marker after its scan data, and anything OpenCV
    cannot decode completely is refused. ``max_side``: refuse larger images from their header, before
    decoding (PNG, JPEG, TIFF, BMP, WebP; a format whose size cannot be read first is refused). ``reduce`` (2, 4
    or 8): decode at 1/reduce of each side, as BGR (for a JPEG this skips most of the decoding work and memory;
    used by the server to bound what one huge frame costs).
    """
    if max_side is not None and data:
        size = header_size(data)
        if size is None:   # a format whose size cannot be read first is not decoded where memory is bounded
            raise DataError(f"{name} could not be decoded: its header is not that of a PNG, JPEG, BMP, TIFF or WebP "
                            "image, and other formats are not decoded where memory per image is bounded (their "
                            "pixel size cannot be read first).", fix="send a complete PNG, JPEG, BMP, TIFF or WebP image.")
        if max(size) > max_side:
            raise DataError(f"{name} is {size[0]}×{size[1]} pixels; at most {max_side} px per side are accepted.",
                            fix="downscale the image first.")
    if not data:
        raise DataError(f"{name} is empty (0 bytes) and could not be decoded as an image.",
                        fix="use a complete PNG, JPEG, BMP or TIFF file.")
    if data[:3] == b"\xff\xd8\xff" and not jpeg_is_complete(data):
        raise DataError(f"{name} is a truncated JPEG ({len(data)} bytes, no end-of-image marker after its scan "
                        "data).", fix="re-copy or re-export the image; a partial JPEG decodes with grey where the "
                                      "data is missing.")
    if reduce != 1 and reduce not in _REDUCED:
        raise ValueError(f"reduce must be 1, 2, 4 or 8, got {reduce!r}")
    flag = _REDUCED[reduce] if reduce != 1 else cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_UNCHANGED
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None or image.size == 0:
        raise DataError(f"{name} could not be decoded as an image (not an image, or truncated).",
                        fix="use a complete PNG, JPEG, BMP or TIFF file.")
    return image


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG, TIFF (first page), BMP or WebP read from its header, without decoding a
    pixel; None for other formats. Lets callers refuse a 20000² image before it is decoded (2.9 GB and 9 s for
    a 20000² PNG; an 8 MB LZW TIFF peaked at 2.4 GB)."""
    import struct

    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise DataError("PNG is truncated or has no IHDR chunk.", fix="use a complete PNG file.")
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    for reader in (_tiff_size, _bmp_size, _webp_size):
        if (size := reader(data)) is not None:
            return size
    if data[:3] != b"\xff\xd8\xff":
        return None
    i, n = 2, len(data)
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:                       # fill byte
            i += 1
        elif marker in _STANDALONE:
            i += 2
        elif marker in _SOF and i + 9 <= n:
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return int(w), int(h)
        elif marker == 0xDA:                     # start of scan before any frame header
            break
        else:
            i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    raise DataError("JPEG is truncated or has no frame header (SOF).", fix="use a complete JPEG file.")


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """Classic TIFF: ImageWidth (256) and ImageLength (257) of the first IFD."""
    import struct

    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    e = "<" if data[:2] == b"II" else ">"
    bad = DataError("TIFF is truncated or its first image has no width / length tag.", fix="use a complete TIFF file.")
    try:
        ifd = struct.unpack(e + "I", data[4:8])[0]
        count = struct.unpack(e + "H", data[ifd:ifd + 2])[0]
        found = {}
        for k in range(count):
            tag, kind, _, value = struct.unpack(e + "HHI4s", data[ifd + 2 + 12 * k:ifd + 14 + 12 * k])
            if tag in (256, 257):
                found[tag] = struct.unpack(e + ("H" if kind == 3 else "I"), value[:2 if kind == 3 else 4])[0]
    except struct.error:
        raise bad from None
    if 256 not in found or 257 not in found:
        raise bad
    return int(found[256]), int(found[257])


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    import struct

    if data[:2] != b"BM" or len(data) < 26:
        return None
    w, h = struct.unpack("<ii", data[18:26])
    return abs(int(w)), abs(int(h))


def _webp_size(data: bytes) -> tuple[int, int] | None:
    import struct

    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return int(w & 0x3FFF), int(h & 0x3FFF)
    if chunk == b"VP8L":
        bits = struct.unpack("<I", data[21:25])[0]
        return int((bits & 0x3FFF) + 1), int(((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise DataError("WebP has an unknown first chunk.", fix="use a complete WebP, PNG or JPEG file.")


def jpeg_is_complete(data: bytes) -> bool:
    """True when a JPEG's end-of-image marker (FFD9) follows its start-of-scan (FFDA). Inside the entropy-coded
    data every FF byte is stuffed (FF00), so a real FFD9 after the scan can only be the end marker."""
    sos = data.find(b"\xff\xda")
    return sos >= 0 and data.rfind(b"\xff\xd9") > sos
