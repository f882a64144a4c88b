"""Finding the ultrasound image in frames without DICOM regions: phantom images pasted into synthetic screen
grabs (menus, text, a grey bar, a black surround) at known places, a frame that is all image, a real DICOM frame
against its own region, and frames with no image at all."""
from __future__ import annotations

import numpy as np
import pytest

from usedge.data.phantom import generate_sample, sample_rng
from usedge.data.phantom.screen import screen_grab as grab
from usedge.data.region_finder import find_scan_region, layout_changed, layout_signature


def iou(r, box) -> float:
    ix = max(0, min(r.x1, box[2]) - max(r.x0, box[0])) * max(0, min(r.y1, box[3]) - max(r.y0, box[1]))
    return ix / ((r.x1 - r.x0) * (r.y1 - r.y0) + (box[2] - box[0]) * (box[3] - box[1]) - ix)


@pytest.mark.parametrize("task", ["thyroid_nodule", "FUGC", "breast_lesion", "fetal_head", "lung", "carotid_artery"])
def test_the_image_is_found_inside_a_screen_grab(task):
    image = generate_sample(task, sample_rng(5, "val", task, 0)).image
    ys, xs = np.nonzero(image)
    x0, y0 = 170, 100
    true = (xs.min() + x0, ys.min() + y0, xs.max() + 1 + x0, ys.max() + 1 + y0)   # the sector's extent
    found = find_scan_region(grab(image, x0, y0))
    assert found is not None and found.data_type == "found"
    assert iou(found, true) >= 0.95, ((found.x0, found.y0, found.x1, found.y1), true)


def test_a_frame_that_is_all_image_is_the_whole_frame():
    image = generate_sample("thyroid_nodule", sample_rng(6, "val", "thyroid_nodule", 0)).image   # linear: full
    ys, xs = np.nonzero(image)
    crop = image[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    found = find_scan_region(crop)
    assert (found.x0, found.y0, found.x1, found.y1) == (0, 0, crop.shape[1], crop.shape[0])


def test_a_real_dicom_frame_without_its_regions_is_found_where_its_region_says():
    from usedge.data.dicom import open_dicom
    from usedge.stream.sources import echo_cine_path

    try:
        frame = next(iter(open_dicom(echo_cine_path())))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"pydicom-data's SonoSite cine is not installed: {exc}")
    r = frame.region
    assert iou(find_scan_region(frame.image), (r.x0, r.y0, r.x1, r.y1)) >= 0.95


def test_frames_without_an_image_give_none():
    assert find_scan_region(np.zeros((480, 640), np.uint8)) is None
    assert find_scan_region(np.full((480, 640, 3), 255, np.uint8)) is None
    menus = grab(np.zeros((10, 10), np.uint8), 300, 300)
    assert find_scan_region(menus) is None
    assert find_scan_region(np.zeros((8, 8), np.uint8)) is None


def test_the_layout_signature_notices_a_moved_image():
    image = generate_sample("FUGC", sample_rng(5, "val", "FUGC", 0)).image
    a, b = grab(image, 170, 100), grab(image, 60, 140)
    sig = layout_signature(a)
    assert not layout_changed(sig, a) and layout_changed(sig, b) and layout_changed(None, a)
