"""Finding the ultrasound image in frames without DICOM regions: phantom images pasted into synthetic screen
grabs (menus, text, a grey bar, a black surround) at known places, a frame that is all image, a real DICOM frame
against its own region, and frames with no image at all."""
from __future__ import annotations

import cv2
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


def _true_box(image, x0, y0):
    ys, xs = np.nonzero(image)
    return xs.min() + x0, ys.min() + y0, xs.max() + 1 + x0, ys.max() + 1 + y0


@pytest.mark.parametrize("task,index", [("fetal_plane_cls", 1), ("fetal_plane_cls", 3), ("uterine_fibroid_det", 1),
                                        ("fetal_femur", 3), ("fetal_abdomen_multi", 0)])
def test_an_image_split_by_black_bands_is_found_whole(task, index):
    """Fluid from edge to edge and the gap below the probe face leave exact black inside the image: its parts (near
    field, body, far arcs, the dim specks of dark depths) are one region. (These five were found in part or not at all before.)"""
    image = generate_sample(task, sample_rng(5, "val", task, index)).image
    found = find_scan_region(grab(image, 200, 60))
    assert found is not None
    assert iou(found, _true_box(image, 200, 60)) >= 0.95


@pytest.mark.parametrize("task", ["lung", "liver_lesion_2cls", "thyroid_nodule_det"])
def test_depth_text_and_the_grey_scale_bar_against_the_image_stay_out(task):
    """Pasted at the left, the image cuts the lines of depth text and lies 8 px from the grey-scale bar: neither is
    part of the region."""
    image = generate_sample(task, sample_rng(5, "val", task, 0)).image
    x0, y0 = 40, 480 - image.shape[0] - 60                 # over the depth text's upper lines
    true = _true_box(image, x0, y0)
    found = find_scan_region(grab(image, x0, y0))
    assert found is not None and found.x0 >= true[0] - 2 and found.y1 <= true[3] + 2, (found, true)
    assert iou(found, true) >= 0.95


def test_a_sector_against_the_frame_edge_is_found():
    image = generate_sample("lung_disease_3cls", sample_rng(5, "val", "lung_disease_3cls", 0)).image
    x0, y0 = 250, 480 - image.shape[0]
    found = find_scan_region(grab(image, x0, y0))
    assert found is not None and iou(found, _true_box(image, x0, y0)) >= 0.95


def test_strokes_mark_dense_text_and_not_speckle():
    from usedge.data.region_finder import strokes

    image = generate_sample("liver_lesion_2cls", sample_rng(5, "val", "liver_lesion_2cls", 0)).image
    screen = cv2.cvtColor(grab(image, 200, 60), cv2.COLOR_BGR2GRAY)
    marked = strokes(screen)
    assert marked[385:462, 10:100].mean() > 0.8                 # the five lines of depth text
    inside = marked[60:60 + image.shape[0], 200:200 + image.shape[1]][image > 0]
    assert inside.mean() < 0.005
