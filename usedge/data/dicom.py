"""Read ultrasound DICOM files (single images and cine loops) as :class:`~usedge.data.frames.Frame` s.

The header is read once; frames are decoded one at a time straight from the file with pydicom 3's
per-frame API, so a long cine is never decoded into memory as a whole. Colour comes out BGR; MONOCHROME1 is
inverted; PALETTE COLOR goes through its lookup table; grey data keeps its stored depth (uint8/uint16).

Example::

    with open_dicom("cine.dcm") as series:
        print(series.num_frames, series.fps, series.main_region)
        for frame in series:
            tissue = frame.cropped()
"""
from __future__ import annotations

import math
import os
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pydicom
import pydicom.uid as uids
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, get_decoder, iter_pixels, pixel_array
from pydicom.pixels.utils import get_expected_length

from usedge.data.frames import DEFAULT_FPS, Frame, ScanRegion
from usedge.errors import SourceError

__all__ = ["DicomSeries", "open_dicom", "parse_regions", "is_dicom_file"]

#: Elements larger than this stay on disk until needed (the pixel data of native files).
_DEFER_SIZE = "256 KB"
#: the most decoded pixel memory one reader holds at once (one frame; a deflated file's whole data set), in MB
DEFAULT_MAX_DECODED_MB = 1024.0
_PIXEL_DATA = 0x7FE00010

_RAW_FIX = "convert it to uncompressed DICOM first, e.g. `gdcmconv --raw in.dcm out.dcm` or dcmtk's `dcmdjpeg`"


#: YCbCr as JPEG stores it (full range): converted with OpenCV, see DicomReader.__init__
_FULL_RANGE_YBR = ("YBR_FULL", "YBR_FULL_422")


def _plugin_for(tsyntax: uids.UID, ds: Dataset) -> dict:
    """pydicom's Pillow plugin for 8-bit JPEG baseline where it is installed: Pillow's libjpeg-turbo decodes
    the echo cine in 3.4 ms per frame against 7 ms with pylibjpeg-libjpeg, and releases the GIL while it does
    (pylibjpeg holds it: a capture thread decoding with it stalled the inference thread's preprocessing from
    0.5 to 28 ms). The two decoders' IDCT and chroma upsampling differ by 1-3 levels on ~1 % of pixels."""
    if tsyntax != uids.JPEGBaseline8Bit or int(ds.get("BitsAllocated", 8) or 8) != 8:
        return {}
    try:
        plugins = get_decoder(tsyntax).available_plugins
    except Exception:  # noqa: BLE001 - no decoder at all is reported by _check_decodable
        return {}
    return {"decoding_plugin": "pillow"} if "pillow" in plugins else {}


def ycbcr_to_bgr(arr: np.ndarray) -> np.ndarray:
    """Full-range Y, Cb, Cr (H×W×3, as pydicom's decoders give it with ``as_rgb=False``) -> BGR uint8.

    OpenCV's YCrCb conversion is the same JPEG/BT.601 full-range transform; the planes are reordered to its
    Y, Cr, Cb. Non-uint8 samples (rare) go through pydicom's conversion instead."""
    if arr.dtype != np.uint8:
        from pydicom.pixels import convert_color_space

        return np.ascontiguousarray(convert_color_space(arr, "YBR_FULL", "RGB")[..., ::-1])
    return cv2.cvtColor(cv2.merge((arr[..., 0], arr[..., 2], arr[..., 1])), cv2.COLOR_YCrCb2BGR)


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True if ``path`` is a file with the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def parse_regions(ds: Dataset, height: int | None = None, width: int | None = None) -> list[ScanRegion]:
    """Parse the Sequence of Ultrasound Regions (0018,6011) of ``ds``.

    Args:
        ds: the data set.
        height, width: when given, regions are clipped to the image and empty ones dropped (scanners
            write bounds one past the edge, and down-sampled exports keep the original bounds).

    Returns:
        The regions in file order; items missing their location are skipped.
    """
    regions = []
    for item in ds.get("SequenceOfUltrasoundRegions", []):
        region = ScanRegion.from_dicom(item)
        if region is not None and height is not None and width is not None:
            region = region.clip(height, width)
        if region is not None and not region.is_empty:
            regions.append(region)
    return regions


def main_region(regions: list[ScanRegion]) -> ScanRegion | None:
    """The largest 2D tissue region; else the largest 2D region of any data type; else None."""
    two_d = [r for r in regions if r.spatial_format == "2D"]
    tissue = [r for r in two_d if r.data_type == "tissue"]
    candidates = tissue or two_d
    return max(candidates, key=lambda r: r.area) if candidates else None


def _number(ds: Dataset, keyword: str) -> float | None:
    try:
        value = float(ds.get(keyword))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _first(value: object) -> float | None:
    """The first value of a possibly multi-valued numeric element (WindowCenter may list several)."""
    from pydicom.multival import MultiValue

    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _timing(ds: Dataset, n: int) -> tuple[float | None, np.ndarray | None, str]:
    """(frame time in ms, per-frame offsets in ms or None, which element it came from)."""
    vector = ds.get("FrameTimeVector")
    if vector is not None and not isinstance(vector, Sequence):   # a legal one-value vector is a bare number
        vector = [vector]
    offsets = None
    if vector is not None and len(vector) == n and n > 1:
        steps = np.asarray([float(v) for v in vector], dtype=np.float64)
        steps[0] = 0.0  # PS3.3 C.7.6.5.1.2: the first value is zero (time since the previous frame)
        if np.all(steps[1:] > 0):
            offsets = np.cumsum(steps)
    pointer = ds.get("FrameIncrementPointer")  # one tag, or several as a MultiValue
    pointers = list(pointer) if isinstance(pointer, Sequence) else [pointer]
    if offsets is not None and 0x00181065 in pointers:
        return float(offsets[-1] / (n - 1)), offsets, "FrameTimeVector"
    if (frame_time := _number(ds, "FrameTime")) is not None:
        return frame_time, None, "FrameTime"
    if offsets is not None:
        return float(offsets[-1] / (n - 1)), offsets, "FrameTimeVector"
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        if (rate := _number(ds, keyword)) is not None:
            return 1000.0 / rate, None, keyword
    return None, None, "default"


def _fix_for(tsyntax: uids.UID) -> str:
    if tsyntax in uids.JPEGTransferSyntaxes:
        return "pip install 'usedge[dicom]'  (pylibjpeg + pylibjpeg-libjpeg)"
    if tsyntax in uids.JPEGLSTransferSyntaxes:
        return "pip install 'usedge[dicom]'  (pylibjpeg-libjpeg decodes JPEG-LS), or pip install pyjpegls"
    if tsyntax in uids.JPEG2000TransferSyntaxes:
        return "pip install pylibjpeg pylibjpeg-openjpeg"
    if tsyntax in uids.MPEGTransferSyntaxes:
        return "pydicom cannot decode MPEG/H.264/HEVC cines; re-export the cine as JPEG or uncompressed"
    return _RAW_FIX


def _check_decodable(path: Path, tsyntax: uids.UID) -> None:
    """Raise :class:`SourceError` if no installed pydicom plugin can decode ``tsyntax``."""
    label = f"'{tsyntax.name}' ({tsyntax})" if tsyntax.name != str(tsyntax) else f"'{tsyntax}'"
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise SourceError(
            f"DICOM file {path}: transfer syntax {label} cannot be decoded by pydicom.", fix=_fix_for(tsyntax)
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a decoding plugin"
        raise SourceError(
            f"DICOM file {path}: decoding transfer syntax {label} needs a package that is not installed "
            f"({missing}).",
            fix=_fix_for(tsyntax),
        )


def _transfer_syntax(ds: Dataset) -> uids.UID:
    tsyntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if tsyntax:
        return uids.UID(tsyntax)
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit is not False:
        return uids.ImplicitVRLittleEndian
    return uids.ExplicitVRLittleEndian if little else uids.ExplicitVRBigEndian


def _read_header(path: Path, defer: bool = True) -> Dataset:
    """Read the data set, leaving large native pixel data on disk (``defer``); raise :class:`SourceError` on bad
    input."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise SourceError(f"DICOM file {path} {what}.", fix="check the path.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                ds = pydicom.dcmread(path, defer_size=_DEFER_SIZE if defer else None)
            except InvalidDicomError:
                ds = pydicom.dcmread(path, defer_size=_DEFER_SIZE if defer else None, force=True)  # a data set without preamble
                if not any(k in ds for k in ("SOPClassUID", "Rows", "PixelData")):
                    raise InvalidDicomError("no DICOM data elements") from None
        except InvalidDicomError:
            raise SourceError(
                f"{path} is not a DICOM file (no 'DICM' header, and it does not parse as a DICOM data set).",
                fix="pass a DICOM (Part 10) file exported by the scanner or PACS.",
            ) from None
        except Exception as exc:  # pydicom raises many types on corrupt headers
            fix = "the file is corrupt or truncated; export it again."
            raise SourceError(f"Could not parse DICOM file {path}: {exc}", fix=fix) from exc
    for warning in caught:
        if "End of file reached" in str(warning.message):
            raise SourceError(
                f"DICOM file {path} is truncated: its pixel data ends before the closing delimiter.",
                fix="copy or export the file again.",
            )
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return ds


def _meta_transfer_syntax(path: Path) -> uids.UID | None:
    """The transfer syntax in the file meta group, read without touching the data set (None when absent)."""
    try:
        with open(path, "rb") as fh:
            pydicom.filereader.read_preamble(fh, True)
            meta = pydicom.filereader._read_file_meta_info(fh)
    except Exception:  # no meta group, or a damaged one: _read_header says what is wrong
        return None
    value = meta.get("TransferSyntaxUID")
    return uids.UID(str(value)) if value else None


def _check_inflated_size(path: Path, limit: int) -> None:
    """Count, 1 MB at a time and keeping nothing, the bytes a deflated data set inflates to, and refuse the file
    as soon as they pass ``limit``: pydicom inflates the whole data set at once (a 0.39 MB file took 1.25 GB)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    with open(path, "rb") as fh:
        pydicom.filereader.read_preamble(fh, True)
        pydicom.filereader._read_file_meta_info(fh)
        while not inflater.eof:
            data = inflater.unconsumed_tail or fh.read(1 << 16)
            if not data:
                break
            try:
                total += len(inflater.decompress(data, 1 << 20))
            except zlib.error as exc:
                raise SourceError(f"DICOM file {path}: its deflated data set is corrupt ({exc}).",
                                  fix="copy or export the file again.") from None
            if total > limit:
                raise SourceError(f"DICOM file {path} ({path.stat().st_size / 2**20:.2f} MB, deflated) inflates to "
                                  f"more than {limit / 2**20:.0f} MB, the most this reader decodes at once.",
                                  fix="export it uncompressed or JPEG-compressed (read frame by frame), or raise "
                                      "max_decoded_mb if the machine has the memory.")


def _palette_lut(ds: Dataset, little_endian: bool) -> tuple[np.ndarray, int]:
    """The PALETTE COLOR table as (entries × 3 uint8 RGB, first mapped value).

    pydicom's ``apply_color_lut`` reads non-segmented 16-bit tables as little endian whatever the transfer
    syntax, so those are unpacked here; segmented tables go through pydicom. 16-bit entries keep the high byte.
    """
    entries, first_mapped, _ = (int(v) for v in ds.RedPaletteColorLookupTableDescriptor)
    entries = entries or 65536
    if "RedPaletteColorLookupTableData" in ds:
        channels = []
        for colour in ("Red", "Green", "Blue"):
            data = ds[f"{colour}PaletteColorLookupTableData"].value
            if len(data) >= 2 * entries:
                values = np.frombuffer(data, "<u2" if little_endian else ">u2", count=entries)
            else:
                values = np.frombuffer(data, np.uint8, count=entries)
            channels.append(values.astype(np.uint16))
        lut = np.stack(channels, axis=-1)
    else:
        lut = apply_color_lut(np.arange(first_mapped, first_mapped + entries), ds)[:, :3].astype(np.uint16)
    lut = lut >> 8 if int(lut.max(initial=0)) > 255 else lut
    return lut.astype(np.uint8), first_mapped


class DicomSeries:
    """One DICOM file with pixel data: a single image or a multi-frame cine.

    Use :func:`open_dicom` to create one. Iterating decodes frames lazily; :meth:`frame` decodes one.

    Attributes:
        path: the file.
        dataset: the header (pixel data stays on disk for native files).
        num_frames: number of frames.
        rows, columns: image size in pixels.
        photometric: PhotometricInterpretation as stored (frames are converted to grey or BGR).
        modality: e.g. "US".
        transfer_syntax: the pixel data encoding.
        frame_time_ms: time between frames in ms, if the file says (FrameTime, FrameTimeVector, CineRate,
            RecommendedDisplayFrameRate); None otherwise.
        regions: the ultrasound regions, clipped to the image.
        main_region: the largest 2D tissue region, if any.
    """

    def __init__(self, path: str | os.PathLike, max_decoded_mb: float = DEFAULT_MAX_DECODED_MB) -> None:
        self.path = Path(path)
        self.source = str(self.path)
        if not (isinstance(max_decoded_mb, (int, float)) and math.isfinite(max_decoded_mb) and max_decoded_mb > 0):
            raise SourceError(f"max_decoded_mb must be a positive number of MB, got {max_decoded_mb!r}.")
        self._max_bytes = int(max_decoded_mb * 2**20)
        # Deflated files cannot be decoded frame by frame from disk: the whole data set is inflated, once its
        # inflated size is known to fit
        self._in_memory = _meta_transfer_syntax(self.path) == uids.DeflatedExplicitVRLittleEndian
        if self._in_memory:
            _check_inflated_size(self.path, self._max_bytes)
        ds = _read_header(self.path, defer=not self._in_memory)
        self.transfer_syntax = _transfer_syntax(ds)
        self.dataset = ds
        if _PIXEL_DATA not in ds:
            sop = ds.get("SOPClassUID")
            kind = f" ({uids.UID(sop).name})" if sop else ""
            raise SourceError(f"DICOM file {path}{kind} has no pixel data.", fix="pass an image or cine file.")
        self._check_header()
        _check_decodable(self.path, self.transfer_syntax)
        self.num_frames = self._frame_count()
        self.rows, self.columns = self._int("Rows"), self._int("Columns")
        self.photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
        self._check_frame_size()
        # full-range YCbCr (JPEG baseline cines): pydicom's own YCbCr -> RGB is numpy float arithmetic, 6 ms per
        # 640×480 frame, as long as the JPEG decoding itself; OpenCV converts the decoder's YCbCr in 0.3 ms
        # (its coefficients differ from DICOM's in the 4th digit: ±1 grey level on 0.01 % of the echo cine)
        self._ycbcr = self.photometric in _FULL_RANGE_YBR
        self._decode_options = {"as_rgb": not self._ycbcr, **_plugin_for(self.transfer_syntax, ds)}
        self.modality = str(ds.get("Modality", ""))
        self.frame_time_ms, self._offsets_ms, self._time_source = _timing(ds, self.num_frames)
        self.regions = parse_regions(ds, self.rows, self.columns)
        self.main_region = main_region(self.regions)
        self._check_length()
        self._fh: BinaryIO | None = None
        self._palette: tuple[np.ndarray, int] | None = None
        self._closed = False
        self._meta = {
            "photometric": self.photometric, "modality": self.modality, "time_source": self._time_source,
            "transfer_syntax": str(self.transfer_syntax), "bits_stored": self._int("BitsStored", 8),
            "decoder": self._decode_options.get("decoding_plugin", "pydicom's first available"),
        }

    def _frame_count(self) -> int:
        """NumberOfFrames (1 when absent); a value that is not a positive count is refused, not read as 0 frames."""
        value = self.dataset.get("NumberOfFrames")
        if value in (None, ""):
            return 1
        try:
            count = int(value)
        except (TypeError, ValueError):
            count = 0
        if count < 1:
            raise SourceError(f"DICOM file {self.path}: NumberOfFrames is {value!r}, not a frame count (>= 1).",
                              fix="export the file again from the scanner; the header is damaged.")
        return count

    def _int(self, keyword: str, default: int = 0) -> int:
        try:
            return int(self.dataset.get(keyword, default))
        except (TypeError, ValueError):
            return default

    def _check_header(self) -> None:
        required = ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation")
        if missing := [k for k in required if k not in self.dataset]:
            raise SourceError(
                f"DICOM file {self.path} has pixel data but no {', '.join(missing)}.", fix="export the file again."
            )

    def _check_frame_size(self) -> None:
        """Refuse, from the header, a frame whose decoded pixels would not fit the reader's memory bound."""
        samples = 3 if self.photometric == "PALETTE COLOR" else max(1, self._int("SamplesPerPixel", 1))
        nbytes = self.rows * self.columns * samples * max(1, -(-self._int("BitsAllocated", 8) // 8))
        if nbytes > self._max_bytes:
            raise SourceError(f"DICOM file {self.path}: one frame of {self.columns}x{self.rows} x {samples} "
                              f"sample(s) decodes to {nbytes / 2**20:.0f} MB, over the "
                              f"{self._max_bytes / 2**20:.0f} MB this reader decodes at once.",
                              fix="export the image at a smaller size, or raise max_decoded_mb if the machine "
                                  "has the memory.")

    def _check_length(self) -> None:
        """Raise if native pixel data is shorter than the frames the header announces."""
        if self.transfer_syntax.is_compressed:
            return  # encapsulated data cut short is caught by the header read ("End of file reached")
        elem = self.dataset.get_item(_PIXEL_DATA, keep_deferred=True)
        value = getattr(elem, "value", None)
        if value is not None:
            available = len(value)
        else:
            available = self.path.stat().st_size - int(getattr(elem, "value_tell", 0))
        try:
            expected = get_expected_length(self.dataset, "bytes")
        except Exception:  # odd headers: let the decoder complain per frame
            return
        if available < expected:
            raise SourceError(
                f"DICOM file {self.path} is truncated: its pixel data has {available} bytes, but "
                f"{self.num_frames} frame(s) of {self.rows}x{self.columns} need {expected}.",
                fix="copy or export the file again.",
            )

    # -- properties ---------------------------------------------------------------------------------
    @property
    def fps(self) -> float | None:
        """Frames per second from the file's timing, or None if it has none."""
        return 1000.0 / self.frame_time_ms if self.frame_time_ms else None

    @property
    def is_color(self) -> bool:
        return self._int("SamplesPerPixel", 1) == 3 or self.photometric == "PALETTE COLOR"

    @property
    def shape(self) -> tuple[int, ...]:
        """(frames, rows, columns) or (frames, rows, columns, 3) of the decoded output."""
        return (self.num_frames, self.rows, self.columns) + ((3,) if self.is_color else ())

    def timestamp_s(self, index: int) -> float:
        """Seconds from the first frame to frame ``index``."""
        if self._offsets_ms is not None:
            return float(self._offsets_ms[index]) / 1000.0
        frame_time_ms = self.frame_time_ms or 1000.0 / DEFAULT_FPS
        return index * frame_time_ms / 1000.0

    # -- decoding -----------------------------------------------------------------------------------
    def _decode_error(self, index: int, exc: Exception) -> SourceError:
        return SourceError(
            f"Could not decode frame {index} of DICOM file {self.path} ({self.transfer_syntax.name}): {exc}",
            fix="the file may be truncated or corrupt; export it again, or " + _fix_for(self.transfer_syntax),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise SourceError(f"DICOM file {self.path} was closed.", fix="open it again with open_dicom().")

    def frame(self, index: int) -> Frame:
        """Decode frame ``index`` (0-based; negative counts from the end)."""
        self._check_open()
        if not -self.num_frames <= index < self.num_frames:
            raise SourceError(
                f"Frame index {index} is out of range for DICOM file {self.path} "
                f"({self.num_frames} frame(s)).",
                fix=f"use an index from 0 to {self.num_frames - 1}.",
            )
        index %= self.num_frames
        if self._fh is None and not self._in_memory:
            self._fh = self.path.open("rb")
        try:
            if self._in_memory:
                arr = pixel_array(self.dataset, index=index, **self._decode_options)
            else:
                arr = pixel_array(self._fh, index=index, transfer_syntax_uid=self.transfer_syntax,
                                  **self._decode_options)
        except Exception as exc:
            raise self._decode_error(index, exc) from exc
        return self._make_frame(index, arr)

    def __iter__(self) -> Iterator[Frame]:
        """Yield every frame in order, decoding one at a time."""
        self._check_open()
        with nullcontext() if self._in_memory else self.path.open("rb") as fh:
            if fh is None:
                frames = iter_pixels(self.dataset, **self._decode_options)
            else:
                frames = iter_pixels(fh, transfer_syntax_uid=self.transfer_syntax, **self._decode_options)
            try:
                for index in range(self.num_frames):
                    yield self._make_frame(index, self._next_pixels(frames, index))
            finally:
                frames.close()  # before the file closes: the generator seeks back on exit

    def _next_pixels(self, frames: Iterator[np.ndarray], index: int) -> np.ndarray:
        try:
            return next(frames)
        except StopIteration:
            raise SourceError(
                f"DICOM file {self.path} holds only {index} of its {self.num_frames} frames.",
                fix="the file is truncated; export it again.",
            ) from None
        except Exception as exc:
            raise self._decode_error(index, exc) from exc

    def __len__(self) -> int:
        return self.num_frames

    def _make_frame(self, index: int, arr: np.ndarray) -> Frame:
        return Frame(
            image=self._to_output(arr), index=index, timestamp_s=self.timestamp_s(index),
            source=self.source, region=self.main_region, meta=dict(self._meta),
        )

    def _to_output(self, arr: np.ndarray) -> np.ndarray:
        """Decoded pixels -> native-endian grey or BGR; uint8 as stored, deep grey as full-range uint16."""
        if not arr.dtype.isnative:  # big endian files
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.ndim == 2 and arr.dtype.itemsize == 2 and self.photometric in ("MONOCHROME1", "MONOCHROME2"):
            return self._deep_grey(arr)
        bits = self._int("BitsStored", arr.dtype.itemsize * 8)
        if arr.dtype.kind == "i":  # signed grey: shift to the unsigned range of the same depth
            arr = (arr.astype(np.int64) + (1 << (bits - 1))).astype(np.dtype(f"u{arr.dtype.itemsize}"))
        if self.photometric == "MONOCHROME1":
            top = (1 << bits) - 1
            arr = (top - np.minimum(arr, top)).astype(arr.dtype)
        elif self.photometric == "PALETTE COLOR":
            arr = self._apply_palette(arr)
        if arr.ndim == 3 and arr.dtype.itemsize == 2 and bits < 16:
            # deep colour as stored spans 0..2^bits-1; downstream reads uint16 as full range (÷257), so 12-bit RGB
            # came out 16x too dark: stretch to the full range as _deep_grey does for grey
            top = (1 << bits) - 1
            arr = (np.minimum(arr, top).astype(np.uint32) * 65535 // top).astype(np.uint16)
        if arr.ndim == 3 and self._ycbcr:
            return ycbcr_to_bgr(arr)
        if arr.ndim == 3:  # RGB, or YBR already converted to RGB by pydicom
            arr = arr[..., ::-1]
        return np.ascontiguousarray(arr)

    def _deep_grey(self, arr: np.ndarray) -> np.ndarray:
        """Deep grey pixels as the display would show them, on the full uint16 range: modality rescale
        (RescaleSlope / Intercept), then the VOI window (WindowCenter / Width, DICOM's linear function) or,
        without one, the stored bit range (BitsStored: 12-bit data spans 0..4095, not 0..65535 — left as
        stored, it was divided by 257 downstream and came out 16× too dark), then MONOCHROME1 inversion."""
        ds, bits = self.dataset, self._int("BitsStored", 16)
        slope = _number(ds, "RescaleSlope") or 1.0
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        value = arr.astype(np.float64) * slope + intercept
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        if center is not None and width is not None and width > 1:
            scaled = (value - (center - 0.5 - (width - 1) / 2)) / (width - 1)
            self._meta["voi"] = f"window center {center:g} width {width:g}"
        else:
            signed = arr.dtype.kind == "i"
            low = -(1 << (bits - 1)) if signed else 0
            high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
            lo, hi = low * slope + intercept, high * slope + intercept
            scaled = (value - lo) / max(hi - lo, 1e-9)
            self._meta["voi"] = f"stored {bits}-bit range" + (f", rescaled {slope:g}x + {intercept:g}"
                                                              if (slope, intercept) != (1.0, 0.0) else "")
        scaled = np.clip(scaled, 0.0, 1.0)
        if self.photometric == "MONOCHROME1":
            scaled = 1.0 - scaled
        return np.ascontiguousarray(np.rint(scaled * 65535).astype(np.uint16))

    def _apply_palette(self, arr: np.ndarray) -> np.ndarray:
        if self._palette is None:
            try:
                self._palette = _palette_lut(self.dataset, self.transfer_syntax.is_little_endian)
            except Exception as exc:
                raise SourceError(
                    f"Could not read the palette of DICOM file {self.path}: {exc}", fix="export the file again."
                ) from exc
        lut, first_mapped = self._palette
        index = arr if first_mapped == 0 else arr.astype(np.int64) - first_mapped
        return np.take(lut, index, axis=0, mode="clip")

    # -- lifetime -----------------------------------------------------------------------------------
    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._closed = True

    def __enter__(self) -> DicomSeries:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"DicomSeries({self.source!r}, frames={self.num_frames}, {self.rows}x{self.columns}, "
            f"{self.photometric}, {self.transfer_syntax.name}, fps={self.fps})"
        )


def open_dicom(path: str | os.PathLike, max_decoded_mb: float = DEFAULT_MAX_DECODED_MB) -> DicomSeries:
    """Open a DICOM file for reading frames. ``max_decoded_mb`` bounds the decoded pixels held at once (one
    frame; for a deflated file, its whole inflated data set): larger files are refused from their header.

    Raises:
        SourceError: the file is missing, not DICOM, has no pixel data, is truncated, or its transfer
            syntax cannot be decoded with the installed packages (the message says which to install).
    """
    return DicomSeries(path, max_decoded_mb)
