"""DICOM outputs from a real ultrasound DICOM (pydicom-data's SonoSite cine, calibrated in cm): the SR's numbers
and units read back equal to what the API returned, the SEG's frame equals the masks and references the right
source frame, both pass dciodvfy (Debian's dicom3tools) where it is installed; units other than cm are refused."""
from __future__ import annotations

import copy
import shutil
import subprocess

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom", reason="the dicom extra (highdicom) is not installed")

from usedge.data.dicom import open_dicom  # noqa: E402
from usedge.data.frames import ScanRegion  # noqa: E402
from usedge.measure import Measurement, Measurer, measure  # noqa: E402
from usedge.measure.dicom_out import masks_of, write_seg, write_sr  # noqa: E402
from usedge.runtime.results import FrameResult, SegmentationResult  # noqa: E402


@pytest.fixture(scope="module")
def echo():
    from usedge.stream.sources import echo_cine_path

    try:
        path = echo_cine_path()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"pydicom-data's SonoSite cine is not installed: {exc}")
    return path, pydicom.dcmread(path, stop_before_pixels=True)


def numbers(ds) -> dict[str, tuple[float, str]]:
    """Every NUM content item of an SR: concept code -> (value, UCUM unit)."""
    out = {}

    def walk(items):
        for item in items:
            if item.get("ValueType") == "NUM":
                mv = item.MeasuredValueSequence[0]
                out[item.ConceptNameCodeSequence[0].CodeValue] = (float(mv.NumericValue),
                                                                 mv.MeasurementUnitsCodeSequence[0].CodeValue)
            walk(item.get("ContentSequence", []))
    walk(ds.ContentSequence)
    return out


def dciodvfy(path) -> str:
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian's dicom3tools) is not installed")
    res = subprocess.run([tool, str(path)], capture_output=True, text=True)
    return "\n".join(line for line in (res.stdout + res.stderr).splitlines() if line.startswith("Error"))


def test_calibration_comes_from_the_dicom_regions_in_cm(echo):
    path, ds = echo
    frame = next(iter(open_dicom(path)))
    scale = Measurer().scale_for(frame)
    item = ds.SequenceOfUltrasoundRegions[0]
    assert scale.source == "dicom" and scale.mm_per_px_x == pytest.approx(float(item.PhysicalDeltaX) * 10)
    not_cm = copy.deepcopy(item)
    not_cm.PhysicalUnitsXDirection = 0                    # "none": not a length
    region = ScanRegion.from_dicom(not_cm)
    assert region.mm_per_pixel_x is None and not Measurer().scale_for(type("F", (), {"region": region})()).calibrated


def test_sr_of_real_measurements_reads_back_with_the_same_values_and_units(echo, tmp_path):
    path, ds = echo
    mask = np.zeros((int(ds.Rows), int(ds.Columns)), np.uint8)
    import cv2

    cv2.ellipse(mask, (320, 240), (90, 70), 20, 0, 360, 1, -1)
    result = FrameResult(mask.shape[1], mask.shape[0], {"fetal_head": SegmentationResult(
        "fetal_head", mask, ("background", "head"))})
    frame = next(iter(open_dicom(path)))
    ms = Measurer()(result, frame)
    got = {m.name: m for m in ms}
    assert got["HC"].unit == "mm" and got["HC"].calibration["source"] == "dicom"
    out, skipped = write_sr(ds, ms, tmp_path / "sr.dcm", frame_number=1)
    back = pydicom.dcmread(out)
    assert back.StudyInstanceUID == ds.StudyInstanceUID and back.SeriesInstanceUID != ds.SeriesInstanceUID
    assert back.SOPInstanceUID != ds.SOPInstanceUID
    nums = numbers(back)
    assert nums["11984-2"] == (pytest.approx(got["HC"].value, rel=1e-6), "mm")          # LOINC HC
    assert nums["11820-8"] == (pytest.approx(got["BPD"].value, rel=1e-6), "mm")         # LOINC BPD
    assert nums["11823-2"][1] == "%"                                                    # cephalic index
    assert isinstance(hd.sr.srread(out), hd.sr.EnhancedSR)
    assert dciodvfy(out) == ""
    px = measure(result, None, ["HC"])
    with pytest.raises(Exception, match="physical units"):
        write_sr(ds, px, tmp_path / "px.dcm")
    assert not (tmp_path / "px.dcm").exists()


def test_seg_of_a_cine_frame_equals_the_masks_and_references_that_frame(echo, tmp_path):
    path, ds = echo
    mask = np.zeros((int(ds.Rows), int(ds.Columns)), np.uint8)
    mask[100:200, 150:300] = 1
    mask[250:300, 300:420] = 3
    result = FrameResult(mask.shape[1], mask.shape[0], {"cardiac_multi": SegmentationResult(
        "cardiac_multi", mask, ("background", "lv_cavity", "lv_myocardium", "left_atrium"))})
    masks = masks_of(result)
    assert set(masks) == {"cardiac_multi: lv_cavity", "cardiac_multi: left_atrium"}
    out = write_seg(ds, masks, tmp_path / "seg.dcm", frame_number=7)
    seg = hd.seg.segread(out)
    src = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert (src.ReferencedSOPInstanceUID, src.ReferencedSOPClassUID, int(src.ReferencedFrameNumber)) == (
        ds.SOPInstanceUID, ds.SOPClassUID, 7)
    assert seg.StudyInstanceUID == ds.StudyInstanceUID
    labels = {d.SegmentLabel: d.SegmentNumber for d in seg.SegmentSequence}
    pixels = seg.pixel_array                             # frames x H x W, one frame per segment
    numbers_ = [int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
                for f in seg.PerFrameFunctionalGroupsSequence]
    for label, number in labels.items():
        assert np.array_equal(pixels[numbers_.index(number)] > 0, masks[label])
    assert dciodvfy(out) == ""
    assert ds.SOPClassUID.name == "Ultrasound Multi-frame Image Storage"      # the caller's dataset untouched


def test_withheld_measurements_are_left_out_of_the_sr_and_said(echo, tmp_path):
    _, ds = echo
    ms = [Measurement("HC", 180.0, "mm"), Measurement("AC", None, "mm", "abdominal outline touches the edge")]
    _, skipped = write_sr(ds, ms, tmp_path / "sr.dcm")
    assert skipped == ["AC: withheld (abdominal outline touches the edge)"]
