import numpy as np
import pytest

from usedge.data.transforms import (ORIENTATION_TASKS, AugmentConfig, apply_affine, normalize, photometric,
                                    random_affine, resize_sample, to_gray_or_bgr_uint8, to_rgb)
from usedge.errors import DataError
from usedge.tasks import get_task

S = 64


def _scene():
    """A bright square whose corners are the 'landmarks' and whose bounds are the 'box'."""
    image = np.zeros((S, S), np.uint8)
    image[20:36, 12:40] = 255
    mask = (image > 0).astype(np.uint8)
    return image, mask, (12.0, 20.0, 40.0, 36.0), ((12.0, 20.0), (40.0, 36.0))


@pytest.mark.parametrize("seed", range(8))
def test_affine_moves_image_and_labels_together(seed):
    rng = np.random.default_rng(seed)
    cfg = AugmentConfig(p=1.0, max_rotate_deg=0.0)  # flips, scale and shift keep boxes exact
    m = random_affine(rng, S, cfg, geometric=True)
    image, mask, box, points = _scene()
    img2, mask2 = apply_affine(m, image, mask, get_task("fetal_head"), S)
    np.testing.assert_array_equal(mask2 > 0, img2 > 127)  # mask follows the structure
    _, box2 = apply_affine(m, image, box, get_task("thyroid_nodule_det"), S)
    ys, xs = np.nonzero(img2 > 127)
    if len(xs):
        assert abs(xs.min() - box2[0]) <= 1.5 and abs(xs.max() + 1 - box2[2]) <= 1.5
        assert abs(ys.min() - box2[1]) <= 1.5 and abs(ys.max() + 1 - box2[3]) <= 1.5
    _, pts2 = apply_affine(m, image, points, get_task("fetal_femur"), S)
    moved = np.asarray(points) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(pts2, np.clip(moved, 0, S))


def test_orientation_tasks_are_never_moved():
    rng = np.random.default_rng(0)
    m = random_affine(rng, S, AugmentConfig(p=1.0), geometric=False)
    np.testing.assert_array_equal(m, np.eye(3)[:2])
    assert "fetal_head_pos_cls" in ORIENTATION_TASKS


def test_resize_scales_labels():
    image = np.zeros((100, 200), np.uint8)
    _, box = resize_sample(image, (20, 10, 60, 50), get_task("thyroid_nodule_det"), 50)
    assert box == (5.0, 5.0, 15.0, 25.0)
    _, pts = resize_sample(image, ((200, 100), (0, 0)), get_task("fetal_femur"), 50)
    assert pts == ((50.0, 50.0), (0.0, 0.0))
    mask = np.zeros((100, 200), np.uint8)
    mask[:, 100:] = 2
    _, m2 = resize_sample(image, mask, get_task("cervix_multi"), 50)
    assert set(np.unique(m2)) == {0, 2} and m2[:, 25:].min() == 2


def test_pixel_conversions():
    assert to_gray_or_bgr_uint8(np.full((4, 4), 65535, np.uint16)).max() == 255
    assert to_gray_or_bgr_uint8(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4, 3)
    with pytest.raises(DataError, match="dtype"):
        to_gray_or_bgr_uint8(np.zeros((4, 4), np.float32))
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    assert to_rgb(bgr)[0, 0].tolist() == [0, 0, 255]
    x = normalize(np.full((2, 2, 3), 255, np.uint8), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert x.shape == (3, 2, 2) and np.allclose(x, 1.0)
    out = photometric(np.random.default_rng(0), np.full((8, 8), 128, np.uint8), AugmentConfig(p=1.0))
    assert out.dtype == np.uint8 and out.shape == (8, 8)


def test_normalize_lookup_matches_the_formula():
    from usedge.data.transforms import normalize

    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ref = ((rgb.astype(np.float32) / 255 - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1)
    out = normalize(rgb, mean, std)
    assert out.shape == (3, 37, 53) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, ref, atol=1e-6)
