"""DICOM reading on real ultrasound files (pydicom + pydicom-data test files) and synthetic edge cases."""
from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian, HTJ2KLossless, JPEGBaseline8Bit, generate_uid

from usedge.data.dicom import DicomSeries, open_dicom, parse_regions
from usedge.data.frames import Frame, FrameSource, ScanRegion
from usedge.errors import SourceError

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
#: JPEG baseline DICOM (the SonoSite cine) decodes only with pillow or pylibjpeg-libjpeg installed
needs_jpeg = pytest.mark.skipif(not get_decoder(JPEGBaseline8Bit).is_available,
                                reason="decoding JPEG baseline DICOM needs pillow or pylibjpeg-libjpeg "
                                       "(pip install 'usedge[dicom]')")


def real(name: str) -> Path:
    """A test file shipped with pydicom or pydicom-data (never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install pydicom-data)")
    return Path(path)


def synthetic(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", *, frames: int = 1,
              bits_stored: int | None = None, tsyntax: str = ExplicitVRLittleEndian,
              encapsulated: list[bytes] | None = None, with_pixels: bool = True, **elements) -> Path:
    """Write a tiny US DICOM file; ``pixels`` is one frame (repeated ``frames`` times) or frames × ...."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(tsyntax)
    ds.file_meta.MediaStorageSOPClassUID = US_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.Modality = US_IMAGE_STORAGE, "US"
    frame = pixels if frames == 1 else pixels[0]
    ds.Rows, ds.Columns = frame.shape[:2]
    ds.SamplesPerPixel = 3 if frame.ndim == 3 else 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    if encapsulated is not None:
        ds.PixelData = encapsulate(encapsulated)
        ds["PixelData"].VR = "OB"
    elif with_pixels:
        ds.PixelData = pixels.tobytes()
        ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return path


# -- real ultrasound files --------------------------------------------------------------------------

# name, frames, photometric as stored, decoded frame shape, dtype
REAL_US = [
    pytest.param("examples_ybr_color.dcm", 30, "YBR_FULL_422", (240, 320, 3), np.uint8,  # SonoSite, JPEG baseline
                 marks=needs_jpeg),
    ("examples_palette.dcm", 1, "PALETTE COLOR", (350, 800, 3), np.uint8),           # Philips CX50
    ("examples_rgb_color.dcm", 1, "RGB", (240, 320, 3), np.uint8),                   # GE LOGIQ 700
    ("ExplVR_BigEnd.dcm", 1, "RGB", (60, 80, 3), np.uint8),                          # big endian
    ("US1_UNCR.dcm", 1, "RGB", (480, 640, 3), np.uint8),
    ("US1_J2KR.dcm", 1, "YBR_RCT", (480, 640, 3), np.uint8),                         # JPEG 2000 lossless
    ("OBXXXX1A.dcm", 1, "PALETTE COLOR", (600, 800, 3), np.uint8),                   # Philips OB
    ("OBXXXX1A_rle_2frame.dcm", 2, "PALETTE COLOR", (600, 800, 3), np.uint8),        # RLE
    ("OBXXXX1A_expb_2frame.dcm", 2, "PALETTE COLOR", (600, 800, 3), np.uint8),
    ("gdcm-US-ALOKA-16.dcm", 1, "PALETTE COLOR", (480, 640, 3), np.uint8),           # 16-bit palette
    ("gdcm-US-ALOKA-16_big.dcm", 1, "PALETTE COLOR", (480, 640, 3), np.uint8),
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", 1, "MONOCHROME2", (768, 1024), np.uint8),     # Philips EPIQ, JPEG lossless
]


@pytest.mark.parametrize("name,frames,photometric,shape,dtype", REAL_US,
                         ids=[(r.values if hasattr(r, "values") else r)[0] for r in REAL_US])
def test_real_ultrasound_files_decode(name, frames, photometric, shape, dtype):
    with open_dicom(real(name)) as series:
        assert isinstance(series, FrameSource)
        assert (series.modality, series.num_frames, len(series)) == ("US", frames, frames)
        assert series.photometric == photometric
        assert series.shape == (frames, *shape)
        for index in (0, frames - 1):
            frame = series.frame(index)
            assert isinstance(frame, Frame) and frame.index == index
            assert frame.image.shape == shape and frame.image.dtype == dtype and frame.image.flags.c_contiguous
            assert frame.source == str(real(name)) and frame.image.max() > 0
            json.dumps(frame.meta)


def test_sonosite_cine_120_frames_at_30_fps():
    with open_dicom(real("color3d_jpeg_baseline.dcm")) as series:
        assert series.num_frames == 120 and series.photometric == "YBR_FULL_422"
        assert series.frame_time_ms == pytest.approx(33.333) and series.fps == pytest.approx(30.0, abs=0.01)
        frames = list(series)
        middle = series.frame(60)
    assert [f.index for f in frames] == list(range(120))
    stamps = np.array([f.timestamp_s for f in frames])
    assert stamps[0] == 0.0 and np.all(np.diff(stamps) > 0)
    assert stamps[-1] == pytest.approx(119 * 0.033333)
    assert all(f.image.shape == (480, 640, 3) for f in frames)
    assert np.array_equal(middle.image, frames[60].image)
    assert frames[0].meta["time_source"] == "FrameTime"


def test_native_pixel_data_stays_on_disk():
    with open_dicom(real("US1_UNCR.dcm")) as series:
        series.frame(0)
        elem = series.dataset.get_item("PixelData", keep_deferred=True)
        assert elem.value is None  # the header read deferred it; frames are read from the file


@pytest.mark.parametrize("name", ["OBXXXX1A.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "gdcm-US-ALOKA-16.dcm",
                                  "color3d_jpeg_baseline.dcm"])
def test_regions_match_the_tags(name):
    path = real(name)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    with open_dicom(path) as series:
        regions = series.regions
        frame = series.frame(0)
    items = ds.SequenceOfUltrasoundRegions
    assert len(regions) == len(items)
    for region, item in zip(regions, items):
        assert (region.x0, region.y0) == (item.RegionLocationMinX0, item.RegionLocationMinY0)
        assert region.x1 == min(item.RegionLocationMaxX1 + 1, ds.Columns)
        assert region.y1 == min(item.RegionLocationMaxY1 + 1, ds.Rows)
        if item.PhysicalUnitsXDirection == 3:  # cm
            assert region.mm_per_pixel_x == pytest.approx(item.PhysicalDeltaX * 10)
            assert region.mm_per_pixel_y == pytest.approx(item.PhysicalDeltaY * 10)
        else:
            assert region.mm_per_pixel_x is None
        assert region.crop(frame.image).shape[:2] == (region.height, region.width)
    main = series.main_region
    assert main is not None and (main.spatial_format, main.data_type) == ("2D", "tissue")
    assert frame.region == main and frame.cropped().shape[:2] == (main.height, main.width)
    json.dumps(main.to_dict())


def test_aloka_dual_view_regions():
    with open_dicom(real("gdcm-US-ALOKA-16.dcm")) as series:
        left, right, bar = series.regions
    mm = pytest.approx(0.038265306 * 10)
    assert left == ScanRegion(32, 24, 336, 416, "2D", "tissue", mm, mm)
    assert (right.x0, right.x1) == (336, 640)
    assert (bar.spatial_format, bar.data_type, bar.mm_per_pixel_x) == ("none", "gray bar", None)
    assert series.main_region == left


def test_regions_outside_the_image_are_clipped_or_dropped():
    path = real("examples_palette.dcm")  # 350 rows, but the regions were written for 600
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert len(parse_regions(ds)) == 2
    (region,) = parse_regions(ds, ds.Rows, ds.Columns)
    assert (region.x0, region.y0, region.x1, region.y1) == (120, 60, 800, 350)


def test_colour_comes_out_bgr():
    with open_dicom(real("SC_rgb.dcm")) as series:
        image = series.frame(0).image
    assert image[5, 50].tolist() == [0, 0, 255]       # the red band, BGR
    assert image[25, 50].tolist() == [0, 255, 0]      # green
    assert image[45, 50].tolist() == [255, 0, 0]      # blue
    assert np.array_equal(image, pixel_array(real("SC_rgb.dcm"))[..., ::-1])


@needs_jpeg
def test_ybr_matches_pydicom_rgb_reversed():
    """YCbCr is converted by OpenCV (10× faster than pydicom's numpy conversion): the same transform, so within
    one grey level of pydicom's RGB, on every frame read either way (iterated and indexed)."""
    path = real("examples_ybr_color.dcm")
    with open_dicom(path) as series:
        image = series.frame(3).image
        iterated = [f.image for f in series]
        plugin = series.frame(0).meta["decoder"]
    assert plugin == "pillow"                   # libjpeg-turbo, GIL released (see usedge.data.dicom._plugin_for)
    reference = pixel_array(path, index=3, decoding_plugin=plugin)[..., ::-1]
    assert np.array_equal(iterated[3], image)
    assert np.abs(image.astype(int) - reference).max() <= 1
    assert (image != reference).mean() < 0.001
    other = pixel_array(path, index=3, decoding_plugin="pylibjpeg")[..., ::-1]   # another conformant decoder
    assert np.abs(image.astype(int) - other).max() <= 8 and (image != other).mean() < 0.05
    grey = image[(image[..., 0] == image[..., 2]) & (image[..., 0] > 50)]
    assert len(grey) > 1000  # the B-mode tissue is grey, so YCbCr was converted (not shown raw)


def test_lossless_ybr_rct_equals_uncompressed_rgb():
    with open_dicom(real("US1_J2KR.dcm")) as j2k, open_dicom(real("US1_UNCR.dcm")) as raw:
        assert np.array_equal(j2k.frame(0).image, raw.frame(0).image)


def test_ybr_full_native_close_to_rgb():
    with open_dicom(real("SC_ybr_full_uncompressed.dcm")) as ybr, open_dicom(real("SC_rgb.dcm")) as rgb:
        assert np.abs(ybr.frame(0).image.astype(int) - rgb.frame(0).image).max() <= 8


def test_palette_matches_lut_and_endianness():
    path = real("OBXXXX1A.dcm")
    ds = pydicom.dcmread(path)
    expected = pydicom.pixels.apply_color_lut(ds.pixel_array, ds) >> 8  # 16-bit entries -> high byte
    with open_dicom(path) as little, open_dicom(real("OBXXXX1A_expb.dcm")) as big:
        image = little.frame(0).image
        assert np.array_equal(image, expected[..., ::-1].astype(np.uint8))
        assert np.array_equal(big.frame(0).image, image)
    with open_dicom(real("gdcm-US-ALOKA-16.dcm")) as little, open_dicom(real("gdcm-US-ALOKA-16_big.dcm")) as big:
        assert np.array_equal(little.frame(0).image, big.frame(0).image)


# -- synthetic files ------------------------------------------------------------------------------

def test_monochrome1_is_inverted(tmp_path):
    pixels = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    with open_dicom(synthetic(tmp_path / "m1.dcm", pixels, "MONOCHROME1")) as series:
        assert np.array_equal(series.frame(0).image, 255 - pixels)
    deep = (np.arange(12, dtype=np.uint16) * 300).reshape(3, 4)
    with open_dicom(synthetic(tmp_path / "m1_12.dcm", deep, "MONOCHROME1", bits_stored=12)) as series:
        image = series.frame(0).image
    assert image.dtype == np.uint16 and np.array_equal(image, np.rint((4095 - deep) / 4095 * 65535))


def test_deep_monochrome2_stays_uint16(tmp_path):
    pixels = (np.arange(12, dtype=np.uint16) * 1000).reshape(3, 4)
    with open_dicom(synthetic(tmp_path / "m2.dcm", pixels, bits_stored=16)) as series:
        image = series.frame(0).image
    assert image.dtype == np.uint16 and np.array_equal(image, pixels)


def test_12_bit_grey_is_shown_at_its_brightness_and_windowing_is_honoured(tmp_path):
    """A 12-bit file (0..4095 in uint16) was passed on as stored and divided by 257 downstream: 16x too dark
    (organ_cls changed its answer). It must come out as bright as the same image stored in 8 bits."""
    from usedge.data.preprocess import PreprocessSpec, preprocess

    eight = (np.arange(64 * 64) % 256).astype(np.uint8).reshape(64, 64)
    twelve = eight.astype(np.uint16) * 16 + 8              # the same picture in 12 bits
    with open_dicom(synthetic(tmp_path / "8.dcm", eight)) as s8, \
            open_dicom(synthetic(tmp_path / "12.dcm", twelve, bits_stored=12)) as s12:
        a, b = s8.frame(0), s12.frame(0)
    spec = PreprocessSpec(size=64)
    assert np.abs(preprocess(a.image, spec) - preprocess(b.image, spec)).max() < 0.03   # normalised units
    assert b.meta["voi"] == "stored 12-bit range"
    # a window narrower than the data: values below / above it saturate, the centre is mid-grey
    with open_dicom(synthetic(tmp_path / "w.dcm", twelve, bits_stored=12, WindowCenter=2048,
                              WindowWidth=1024, RescaleSlope=1, RescaleIntercept=0)) as sw:
        w = sw.frame(0)
    assert w.image.min() == 0 and w.image.max() == 65535 and w.meta["voi"].startswith("window center 2048")
    mid = w.image[twelve == 2056]
    assert mid.size and np.all(np.abs(mid.astype(int) - 32768) < 700)


def test_synthetic_palette(tmp_path):
    pixels = np.array([[0, 1], [2, 3]], np.uint8)
    red, green, blue = (np.array(v, np.uint16) << 8 for v in ([255, 0, 0, 9], [0, 255, 0, 9], [0, 0, 255, 9]))
    luts = {}
    for colour, lut in zip(("Red", "Green", "Blue"), (red, green, blue)):
        luts[f"{colour}PaletteColorLookupTableDescriptor"] = [4, 0, 16]
        luts[f"{colour}PaletteColorLookupTableData"] = lut.tobytes()
    with open_dicom(synthetic(tmp_path / "pal.dcm", pixels, "PALETTE COLOR", **luts)) as series:
        image = series.frame(0).image
    assert image.dtype == np.uint8
    assert image.reshape(4, 3).tolist() == [[0, 0, 255], [0, 255, 0], [255, 0, 0], [9, 9, 9]]


def test_timing_from_cine_rate_frame_time_vector_or_none(tmp_path):
    pixels = np.zeros((4, 2, 2), np.uint8)
    with open_dicom(synthetic(tmp_path / "cine.dcm", pixels, frames=4, CineRate=25)) as series:
        assert series.fps == pytest.approx(25)
        assert [f.timestamp_s for f in series] == pytest.approx([0, .04, .08, .12])
    vector = dict(FrameTimeVector=[0, 40, 50, 60], FrameIncrementPointer=0x00181065)
    with open_dicom(synthetic(tmp_path / "ftv.dcm", pixels, frames=4, **vector)) as series:
        assert [f.timestamp_s for f in series] == pytest.approx([0, .04, .09, .15])
        assert series.frame(2).meta["time_source"] == "FrameTimeVector"
    with open_dicom(synthetic(tmp_path / "none.dcm", pixels, frames=4)) as series:
        assert series.fps is None and series.frame(3).timestamp_s == pytest.approx(0.1)  # assumed 30 fps
        assert series.frame(0).meta["time_source"] == "default"


def test_dataset_without_preamble_is_read(tmp_path):
    ds = pydicom.dcmread(synthetic(tmp_path / "a.dcm", np.full((2, 3), 7, np.uint8)))
    del ds.file_meta
    ds.preamble = None
    ds.save_as(tmp_path / "raw.dcm", implicit_vr=True, little_endian=True)
    with open_dicom(tmp_path / "raw.dcm") as series:
        assert series.frame(0).image.tolist() == [[7, 7, 7], [7, 7, 7]]


# -- bad input ------------------------------------------------------------------------------------

@contextmanager
def raises_naming(path: Path, *needles: str):
    """Expect a SourceError whose message names the file, each needle, and a fix."""
    with pytest.raises(SourceError) as info:
        yield info
    text = str(info.value)
    assert path.name in text and "Fix:" in text, text
    for needle in needles:
        assert needle in text, text


def test_text_file_is_not_dicom(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("this is not a DICOM file\n" * 20)
    with raises_naming(path, "not a DICOM file"):
        open_dicom(path)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with raises_naming(empty, "not a DICOM file"):
        open_dicom(empty)


def test_missing_file_and_folder(tmp_path):
    with raises_naming(tmp_path / "nope.dcm", "does not exist"):
        open_dicom(tmp_path / "nope.dcm")
    with raises_naming(tmp_path, "folder"):
        open_dicom(tmp_path)


def test_dicom_without_pixel_data(tmp_path):
    path = synthetic(tmp_path / "nopix.dcm", np.zeros((2, 2), np.uint8), with_pixels=False)
    with raises_naming(path, "no pixel data"):
        open_dicom(path)


@pytest.mark.parametrize("name,keep", [("US1_UNCR.dcm", 500_000), ("examples_rgb_color.dcm", 100_000),
                                       ("examples_ybr_color.dcm", 120_000), ("OBXXXX1A_rle_2frame.dcm", 60_000)])
def test_truncated_file(tmp_path, name, keep):
    path = tmp_path / f"cut_{name}"
    path.write_bytes(real(name).read_bytes()[:keep])
    with raises_naming(path, "truncated"):
        open_dicom(path)


def test_unknown_transfer_syntax(tmp_path):
    pixels = np.zeros((2, 2), np.uint8)
    path = synthetic(tmp_path / "odd.dcm", pixels, tsyntax="1.2.3.4.5.6.7", encapsulated=[b"\x00\x01"])
    with raises_naming(path, "1.2.3.4.5.6.7", "cannot be decoded"):
        open_dicom(path)


def test_transfer_syntax_without_installed_plugin_names_the_package(tmp_path):
    if get_decoder(HTJ2KLossless).is_available:
        pytest.skip("an HTJ2K decoder is installed here")
    pixels = np.zeros((2, 2), np.uint8)
    path = synthetic(tmp_path / "htj2k.dcm", pixels, tsyntax=HTJ2KLossless, encapsulated=[b"\xff\x4f"])
    with raises_naming(path, "High-Throughput JPEG 2000", "pylibjpeg-openjpeg"):
        open_dicom(path)


def test_mpeg_cine_has_a_clear_message(tmp_path):
    path = synthetic(tmp_path / "h264.dcm", np.zeros((2, 2), np.uint8), tsyntax="1.2.840.10008.1.2.4.102",
                     encapsulated=[b"\x00\x00\x00\x01"])
    with raises_naming(path, "H.264", "re-export the cine"):
        open_dicom(path)


def test_frame_index_out_of_range_and_closed():
    path = real("OBXXXX1A_rle_2frame.dcm")
    series = open_dicom(path)
    assert series.frame(-1).index == 1
    with raises_naming(path, "out of range", "0 to 1"):
        series.frame(2)
    series.close()
    with raises_naming(path, "closed"):
        series.frame(0)


@needs_jpeg
def test_corrupt_compressed_frame_is_a_source_error(tmp_path):
    src = real("examples_ybr_color.dcm")
    ds = pydicom.dcmread(src)
    ds.NumberOfFrames = 1
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 definitely not a jpeg"])
    path = tmp_path / "badjpeg.dcm"
    ds.save_as(path)
    with open_dicom(path) as series, raises_naming(path, "Could not decode frame 0"):
        series.frame(0)
    with open_dicom(path) as series, raises_naming(path, "Could not decode frame 0"):
        list(series)


@needs_jpeg
def test_series_type_and_repr():
    with open_dicom(real("examples_ybr_color.dcm")) as series:
        assert isinstance(series, DicomSeries) and "frames=30" in repr(series)


def test_copied_real_file_keeps_its_name_in_messages(tmp_path):
    path = tmp_path / "patient_cine.dcm"
    shutil.copy(real("OBXXXX1A_2frame.dcm"), path)
    with open_dicom(path) as series:
        assert series.frame(1).source == str(path)
        with raises_naming(path, "out of range"):
            series.frame(5)


def test_deflated_file_is_inflated_and_decoded():
    path = real("image_dfl.dcm")  # Deflated Explicit VR Little Endian cannot be read frame by frame from disk
    with open_dicom(path) as series:
        image = series.frame(0).image
        assert np.array_equal(image, pydicom.dcmread(path).pixel_array)
        assert [f.index for f in series] == [0]


# -- issue 26: silently wrong answers and raw tracebacks from headers -------------------------------------
def test_12_bit_rgb_is_shown_at_its_brightness(tmp_path):
    """Class 3: 12-bit colour reached the model 16x too dark (the grey fix did not cover colour)."""
    from usedge.data.preprocess import PreprocessSpec, preprocess

    eight = (np.arange(32 * 32 * 3) % 256).astype(np.uint8).reshape(32, 32, 3)
    twelve = eight.astype(np.uint16) * 16 + 8
    with open_dicom(synthetic(tmp_path / "8.dcm", eight, "RGB")) as s8, \
            open_dicom(synthetic(tmp_path / "12.dcm", twelve, "RGB", bits_stored=12)) as s12:
        a, b = s8.frame(0), s12.frame(0)
    spec = PreprocessSpec(size=32)
    assert np.abs(preprocess(a.image, spec) - preprocess(b.image, spec)).max() < 0.03


@pytest.mark.parametrize("count", [-3, 0])
def test_a_frame_count_that_is_not_one_is_refused_not_read_as_no_frames(tmp_path, count):
    """Class 3: NumberOfFrames -3 gave a 0-frame stream and exit 0."""
    path = synthetic(tmp_path / "n.dcm", np.zeros((2, 4, 4), np.uint8), frames=2)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = count
    ds.save_as(path)
    with raises_naming(path, "NumberOfFrames", "not a frame count"):
        open_dicom(path)


def test_a_one_value_frame_time_vector_is_read(tmp_path):
    """Class 6: a legal one-value FrameTimeVector raised TypeError in dicom._timing."""
    with open_dicom(synthetic(tmp_path / "one.dcm", np.zeros((4, 4), np.uint8), FrameTimeVector=0,
                              FrameTime=40)) as series:
        assert series.frame(0).timestamp_s == 0 and series.frame(0).meta["time_source"] == "FrameTime"


def test_a_deflated_file_is_refused_from_its_inflated_size_with_bounded_memory(tmp_path):
    """Issue 26, class 5: a 0.39 MB deflated DICOM inflated to 1.25 GB (pydicom inflates the whole data set at
    once). The inflated size is counted first, keeping nothing, and the file refused past the reader's bound."""
    import tracemalloc

    from pydicom.uid import DeflatedExplicitVRLittleEndian

    path = synthetic(tmp_path / "bomb.dcm", np.zeros((16, 1024, 1024), np.uint8), frames=16,
                     tsyntax=DeflatedExplicitVRLittleEndian)
    assert path.stat().st_size < 200_000                               # 16 MB of pixels in a small file
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=r"deflated\) inflates to more than 4 MB"):
            open_dicom(path, max_decoded_mb=4)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * 2**20                                            # counted, never held
    with open_dicom(path, max_decoded_mb=64) as series:                # within the bound it reads as before
        assert series.num_frames == 16 and series.frame(15).image.shape[:2] == (1024, 1024)


def test_a_frame_too_large_to_decode_is_refused_from_the_header(tmp_path):
    """Issue 26, class 5: every decoder path knows the pixel count before it allocates."""
    path = synthetic(tmp_path / "huge.dcm", np.zeros((4, 4), np.uint8), Rows=30000, Columns=30000)
    with pytest.raises(SourceError, match=r"one frame of 30000x30000 x 1 sample\(s\) decodes to 858 MB, over the "
                                          r"512 MB"):
        open_dicom(path, max_decoded_mb=512)
    with pytest.raises(SourceError, match="max_decoded_mb must be a positive number"):
        open_dicom(path, max_decoded_mb=float("nan"))
