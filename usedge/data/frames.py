"""The frame types every usedge reader yields: :class:`Frame`, :class:`ScanRegion` and :class:`FrameSource`.

One convention for the whole SDK: colour images are **BGR** (like OpenCV), grey images are H×W, and pixel
values keep the depth they were stored with (uint8, or uint16 for deeper grey data).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: Frame rate assumed where a source carries no timing (image folders, DICOM without frame time).
DEFAULT_FPS = 30.0

# PS3.3 C.8.5.5.1.1 / .2 / .15: Region Spatial Format, Region Data Type, Physical Units (3 = cm).
SPATIAL_FORMATS = {0: "none", 1: "2D", 2: "M-mode", 3: "spectral", 4: "waveform", 5: "graphics"}
DATA_TYPES = {
    0: "none", 1: "tissue", 2: "color flow", 3: "PW doppler", 4: "CW doppler", 5: "doppler mean trace",
    6: "doppler mode trace", 7: "doppler max trace", 8: "volume trace", 9: "d(volume)/dt trace",
    10: "ECG trace", 11: "pulse trace", 12: "phonocardiogram trace", 13: "gray bar", 14: "color bar",
    15: "integrated backscatter", 16: "area trace", 17: "d(area)/dt trace", 18: "other physiological input",
}
_UNITS_CM = 3


def _lookup(table: dict[int, str], value: Any) -> str:
    try:
        return table.get(int(value), f"unknown ({int(value)})")
    except (TypeError, ValueError):
        return ""


def _mm_per_pixel(units: Any, delta: Any) -> float | None:
    """Physical delta in cm -> mm per pixel; None for other units or a missing/zero delta."""
    try:
        return float(delta) * 10.0 if int(units) == _UNITS_CM and float(delta) > 0 else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ScanRegion:
    """A rectangle of the image holding one kind of ultrasound data.

    One item of the DICOM Sequence of Ultrasound Regions (0018,6011), or given by the user.
    Bounds are pixels with ``x1``/``y1`` exclusive, so ``width == x1 - x0`` (DICOM's
    RegionLocationMaxX1/Y1 are inclusive and get +1 when parsed).

    Attributes:
        x0, y0, x1, y1: pixel bounds; ``x1`` and ``y1`` exclusive.
        spatial_format: "2D", "M-mode", "spectral", "waveform", "graphics", "none" or "".
        data_type: "tissue", "color flow", "PW doppler", "ECG trace", ... or "".
        mm_per_pixel_x: physical pixel width in mm, when the region is calibrated in cm; else None.
        mm_per_pixel_y: physical pixel height in mm, when calibrated in cm; else None.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: str = ""
    data_type: str = ""
    mm_per_pixel_x: float | None = None
    mm_per_pixel_y: float | None = None

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def is_empty(self) -> bool:
        return self.area == 0

    def crop(self, image: np.ndarray) -> np.ndarray:
        """Return the region of ``image`` (H×W or H×W×C) as a view, clipped to the image bounds."""
        h, w = image.shape[:2]
        r = self.clip(h, w)
        return image[r.y0:r.y1, r.x0:r.x1]

    def clip(self, height: int, width: int) -> ScanRegion:
        """Return this region clipped to an image of ``height`` × ``width`` (possibly empty)."""
        x0, x1 = (min(max(v, 0), width) for v in (self.x0, self.x1))
        y0, y1 = (min(max(v, 0), height) for v in (self.y0, self.y1))
        return replace(self, x0=x0, y0=y0, x1=max(x0, x1), y1=max(y0, y1))

    @classmethod
    def from_dicom(cls, item: Any) -> ScanRegion | None:
        """Build a region from one item of the Sequence of Ultrasound Regions; None if it has no location.

        DICOM's RegionLocationMaxX1/Y1 are inclusive, so 1 is added; PhysicalDeltaX/Y in cm become mm.
        """
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1) + 1, int(item.RegionLocationMaxY1) + 1
        except (AttributeError, TypeError, ValueError):
            return None
        return cls(
            x0, y0, x1, y1,
            spatial_format=_lookup(SPATIAL_FORMATS, item.get("RegionSpatialFormat")),
            data_type=_lookup(DATA_TYPES, item.get("RegionDataType")),
            mm_per_pixel_x=_mm_per_pixel(item.get("PhysicalUnitsXDirection"), item.get("PhysicalDeltaX")),
            mm_per_pixel_y=_mm_per_pixel(item.get("PhysicalUnitsYDirection"), item.get("PhysicalDeltaY")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for ``Frame.meta``, reports and logs)."""
        return {
            "x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1,
            "spatial_format": self.spatial_format, "data_type": self.data_type,
            "mm_per_pixel_x": self.mm_per_pixel_x, "mm_per_pixel_y": self.mm_per_pixel_y,
        }


@dataclass(frozen=True, eq=False)
class Frame:
    """One image from a DICOM cine, a video, a camera or an image file.

    Attributes:
        image: H×W (grey) or H×W×3 **BGR**, uint8 (or uint16 for deeper grey/colour data as stored).
        index: frame index within the source, from 0.
        timestamp_s: seconds since the first frame of the source.
        source: file path, device index or URL, for messages.
        region: the main 2D tissue region, if known.
        meta: JSON-serialisable extra information (photometric interpretation, backend, ...).
    """

    image: np.ndarray
    index: int
    timestamp_s: float
    source: str
    region: ScanRegion | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def is_color(self) -> bool:
        return self.image.ndim == 3 and self.image.shape[2] == 3

    def cropped(self) -> np.ndarray:
        """The image cropped to :attr:`region` (a view), or the whole image when no region is known."""
        return self.region.crop(self.image) if self.region is not None else self.image


@runtime_checkable
class FrameSource(Protocol):
    """What every reader returned by ``open_dicom``/``open_video``/``open_frames`` provides."""

    source: str

    @property
    def fps(self) -> float | None: ...

    @property
    def num_frames(self) -> int | None: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc: object) -> None: ...
