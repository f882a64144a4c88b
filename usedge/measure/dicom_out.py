"""Measurements and masks where clinicians read them: a DICOM Structured Report (TID 1500 Measurement Report) of
the measurements and a DICOM Segmentation of the masks, both derived from a source ultrasound instance (its
Study, Patient and frame of reference kept; new Series and SOP Instance UIDs), written with highdicom (the
``dicom`` extra). Concepts are coded with the DICOM content mapping resource's codes where one exists (LOINC for
fetal biometry, cervix length, gestational age and EFW; SNOMED CT for lengths, areas, volumes and angles, as
in CIDs 12005, 12011, 12013, 12014, 7470 and 7472), else with usedge's own coding scheme ``99USEDGE``."""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from usedge.errors import DataError, require
from usedge.measure.base import Measurement

US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"        # Ultrasound Image Storage (single frame)
#: usedge's private coding scheme for concepts no standard code covers
SCHEME = "99USEDGE"
_PRIVATE = {
    "AoP": "Angle of progression",
    "AoP_mask": "Angle of progression (from masks)",
    "AoP_agreement": "Angle of progression: landmarks vs masks",
    "HSD": "Head-symphysis distance",
    "taller_than_wide": "Taller than wide",
}
#: measurement name -> (scheme, name attribute of pydicom's codes, method attribute or None)
_STANDARD = {
    "HC": ("LN", "HeadCircumference", None), "BPD": ("LN", "BiparietalDiameter", None),
    "OFD": ("LN", "OccipitalFrontalDiameter", None), "AC": ("LN", "AbdominalCircumference", None),
    "FL": ("LN", "FemurLength", None), "CI": ("LN", "CephalicIndex", None),
    "CL": ("LN", "CervixLength", None), "CL_mask": ("LN", "CervixLength", None),
    "GA_HC": ("LN", "GestationalAge", "HCHadlock1984"), "GA_FL": ("LN", "GestationalAge", "FLHadlock1984"),
    "GA": ("LN", "GestationalAge", "HCHadlock1984"), "EFW": ("LN", "EstimatedWeight", None),
    "LV_area": ("SCT", "Area", None), "LV_length": ("SCT", "Length", None), "LV_volume": ("SCT", "Volume", None),
    "long_axis": ("SCT", "LongAxis", None), "short_axis": ("SCT", "ShortAxis", None), "area": ("SCT", "Area", None),
}
_EFW_METHODS = {"Hadlock 1985 BPD-HC-AC-FL": "EFWByACBPDFLHCHadlock1985", "Hadlock 1985 HC-AC-FL":
                "EFWByACFLHCHadlock1985", "Hadlock 1985 BPD-AC-FL": "EFWByACBPDFLHadlock1985",
                "Hadlock 1985 AC-FL": "EFWByACFLHadlock1985"}
_UNITS = {"mm": ("mm", "millimeter"), "mm2": ("mm2", "square millimeter"), "ml": ("ml", "milliliter"),
          "deg": ("deg", "degree"), "%": ("%", "percent"), "weeks": ("wk", "week"), "g": ("g", "gram"),
          "bool": ("1", "no units")}


def concept(name: str, detail: dict | None = None) -> tuple[Any, Any | None]:
    """The coded concept of a measurement (and of its method, where one is coded)."""
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    part = name.split(".", 1)[1] if "." in name else name
    if part in _STANDARD:
        scheme, attr, method = _STANDARD[part]
        if part == "EFW" and detail and detail.get("formula") in _EFW_METHODS:
            method = _EFW_METHODS[detail["formula"]]
        book = getattr(codes, scheme)
        return getattr(book, attr), (getattr(codes.LN, method) if method else None)
    key = part if part in _PRIVATE else name
    return Code(key[:16], SCHEME, _PRIVATE.get(key, name)), None


def unit_code(unit: str) -> Any:
    from pydicom.sr.coding import Code

    if unit not in _UNITS:
        raise DataError(f"a measurement in {unit!r} cannot go into a DICOM SR (it needs physical units).",
                        fix="calibrate the frame (a DICOM region in cm, or --mm-per-pixel) so lengths are in mm.")
    value, meaning = _UNITS[unit]
    return Code(value, "UCUM", meaning)


def _new_uids() -> tuple[str, str]:
    from pydicom.uid import generate_uid

    return generate_uid(), generate_uid()


def write_sr(source: Any, measurements: Iterable[Measurement], path: str | Path, *, frame_number: int | None = None,
             software: str = "usedge") -> tuple[Path, list[str]]:
    """A TID 1500 measurement report of ``measurements`` for the ``source`` instance (a pydicom Dataset).
    Withheld measurements and those without physical units are left out; returns (path, what was left out)."""
    hd = require("highdicom", "dicom", "DICOM SR output")
    from pydicom.sr.codedict import codes

    from usedge._io import atomic_write_bytes

    kept, skipped = [], []
    for m in measurements:
        if m.value is None or not math.isfinite(m.value):
            skipped.append(f"{m.name}: withheld ({m.withheld})")
        elif m.unit not in _UNITS:
            skipped.append(f"{m.name}: in {m.unit}, not a physical unit")
        else:
            kept.append(m)
    if not kept:
        raise DataError("no measurement with a value in physical units to report.",
                        fix="; ".join(skipped[:5]) or "measure a frame first.")
    frames = [int(frame_number)] if frame_number is not None and int(source.get("NumberOfFrames", 1)) > 1 else None
    ref = hd.sr.SourceImageForMeasurement.from_source_image(source, referenced_frame_numbers=frames)
    items = []
    for m in kept:
        name, method = concept(m.name, m.detail)
        items.append(hd.sr.Measurement(name=name, value=float(m.value), unit=unit_code(m.unit), method=method,
                                       referenced_images=[ref]))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(uid=hd.UID(), name=software))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="usedge measurements"),
        measurements=items)
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_device_context=observer),
                                     procedure_reported=codes.SCT.Ultrasonography, imaging_measurements=[group])
    series, sop = _new_uids()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # highdicom's remarks on the source's own attributes
        sr = hd.sr.EnhancedSR(evidence=[source], content=report[0], series_instance_uid=series, series_number=9101,
                              sop_instance_uid=sop, instance_number=1, manufacturer=software, is_complete=True)
    return atomic_write_bytes(Path(path), _encode(sr)), skipped


def write_seg(source: Any, masks: dict[str, np.ndarray], path: str | Path, *, frame_number: int | None = None,
              software: str = "usedge", version: str = "") -> Path:
    """A binary DICOM Segmentation of ``masks`` (label -> H×W bool at the source's size) for the ``source``
    instance: one segment per label, on frame ``frame_number`` (1-based) of a multi-frame source."""
    hd = require("highdicom", "dicom", "DICOM SEG output")
    from pydicom.sr.codedict import codes

    from usedge._io import atomic_write_bytes

    rows, cols = int(source.Rows), int(source.Columns)
    labels = [k for k, v in masks.items() if np.asarray(v).any()]
    if not labels:
        raise DataError("nothing is segmented: a DICOM SEG needs at least one non-empty mask.",
                        fix="choose a frame with a segmentation (or leave out --seg).")
    for k in labels:
        if np.asarray(masks[k]).shape != (rows, cols):
            raise DataError(f"mask {k!r} is {np.asarray(masks[k]).shape}, the source image {rows}×{cols}.")
    n_frames = int(source.get("NumberOfFrames", 1))
    index = 0 if n_frames == 1 else int(frame_number or 1) - 1
    if not 0 <= index < n_frames:
        raise DataError(f"frame {frame_number} is not in the source's {n_frames} frames.")
    pixels = np.stack([np.asarray(masks[k]) > 0 for k in labels], -1)[None]       # 1 frame x H x W x segments
    algorithm = hd.AlgorithmIdentificationSequence(name=software, version=version or "0",
                                                   family=codes.DCM.ArtificialIntelligence)
    segments = [hd.seg.SegmentDescription(segment_number=j + 1, segment_label=k[:64],
                                          segmented_property_category=codes.SCT.Tissue,
                                          segmented_property_type=codes.SCT.Tissue,
                                          algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                          algorithm_identification=algorithm)
                for j, k in enumerate(labels)]
    series, sop = _new_uids()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # highdicom's remarks on the source's own attributes
        seg = hd.seg.Segmentation(source_images=[_one_frame(source)], pixel_array=pixels,
                                  segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                                  segment_descriptions=segments, series_instance_uid=series, series_number=9102,
                                  sop_instance_uid=sop, instance_number=1, manufacturer=software,
                                  manufacturer_model_name=software, software_versions=version or "0",
                                  device_serial_number="0")
    if n_frames > 1:
        _reference_frame(seg, source, index + 1)
    if "PatientOrientation" not in seg:       # type 2C without a frame of reference (General Image module)
        seg.PatientOrientation = source.get("PatientOrientation", "")
    return atomic_write_bytes(Path(path), _encode(seg))


def _one_frame(source: Any) -> Any:
    """The source as highdicom takes it. highdicom writes a SEG of a multi-frame image only with a frame of
    reference, which ultrasound cines lack: the cine is given as a single-frame ultrasound image with its own
    UIDs (the pixel data is not read), and :func:`_reference_frame` then points the SEG's references back to the
    multi-frame instance and the chosen frame."""
    import copy

    from pydicom.dataset import Dataset

    if int(source.get("NumberOfFrames", 1)) == 1:
        return source
    view = Dataset()
    view.file_meta = getattr(source, "file_meta", Dataset())
    for elem in source:
        if elem.keyword not in ("PixelData", "NumberOfFrames", "FrameIncrementPointer", "FrameTime",
                                "FrameTimeVector"):
            view.add(copy.copy(elem))        # its own elements: the caller's dataset stays as it was
    view.SOPClassUID = US_IMAGE
    return view


def _reference_frame(seg: Any, source: Any, frame: int) -> None:
    """Point every reference of the SEG to ``source`` (its SOP class) and, where an image is a derivation source,
    to ``frame`` (1-based) of its frames."""
    import copy

    uid = source.SOPInstanceUID

    def walk(ds: Any) -> None:
        for elem in ds:
            if elem.VR != "SQ":
                continue
            if elem.keyword == "SourceImageSequence":      # items may be shared with other sequences: copy them
                elem.value = [copy.deepcopy(item) for item in elem.value]
            for item in elem.value:
                if item.get("ReferencedSOPInstanceUID") == uid:
                    item.ReferencedSOPClassUID = source.SOPClassUID
                    if elem.keyword == "SourceImageSequence":
                        item.ReferencedFrameNumber = frame
                walk(item)

    walk(seg)


def masks_of(result: Any, tasks: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Every foreground class of the result's segmentations as 'task: class' -> bool mask."""
    from usedge.runtime.results import SegmentationResult

    out = {}
    for task, r in result.tasks.items():
        if isinstance(r, SegmentationResult) and (tasks is None or task in tasks):
            mask = r.mask
            for c, label in enumerate(r.class_names or (), start=0):
                if c and (mask == c).any():
                    out[f"{task}: {label}"] = mask == c
    return out


def _encode(ds: Any) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
