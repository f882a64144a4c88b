import numpy as np
import pytest

from usedge.data.transforms import (
    AUGMENT_POLICY,
    CLOCK_FLIP,
    ORIENTATION_TASKS,
    AugmentConfig,
    TaskAugment,
    apply_affine,
    augment,
    is_flip,
    normalize,
    photometric,
    random_affine,
    resize_sample,
    task_policy,
    to_gray_or_bgr_uint8,
    to_rgb,
)
from usedge.errors import DataError
from usedge.tasks import ALL_TASKS, TaskKind, get_task

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
    _, pts2 = apply_affine(m, image, points, get_task("FUGC"), S)  # anatomical points: order kept
    moved = np.asarray(points) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(pts2, np.clip(moved, 0, S))


def test_no_geometric_transform_is_the_identity():
    rng = np.random.default_rng(0)
    m = random_affine(rng, S, AugmentConfig(p=1.0), geometric=False)
    np.testing.assert_array_equal(m, np.eye(3)[:2])


FLIP = np.array([[-1.0, 0.0, S], [0.0, 1.0, 0.0]])


def test_a_flip_remaps_orientation_classes_by_their_names():
    """left_* <-> right_*, anterior / posterior stay: the class names of both orientation tasks say so."""
    for task_id in sorted(ORIENTATION_TASKS):
        spec = get_task(task_id)
        for k, name in enumerate(spec.class_names):
            _, flipped = apply_affine(FLIP, np.zeros((S, S), np.uint8), k, spec, S)
            mirrored = name.replace("left", "@").replace("right", "left").replace("@", "right")
            assert spec.class_names[flipped] == mirrored, (task_id, name)


def test_the_flip_map_matches_the_phantoms_clock_geometry():
    """The phantom draws class k along clock_direction(k); mirrored, that direction lies in CLOCK_FLIP[k]."""
    import math

    from usedge.data.phantom.anatomy_fetal import clock_direction

    rng = np.random.default_rng(0)
    for k in range(8):
        for _ in range(20):
            _, u = clock_direction(k, rng)
            mx, my = -u[0], u[1]                                  # mirror x
            psi = math.atan2(mx, -my) % (2 * math.pi)             # clockwise from up, as the phantom defines it
            assert round(psi / (math.pi / 4)) % 8 == CLOCK_FLIP[k]


def test_femur_ends_stay_ordered_left_to_right_and_on_the_bone():
    """The phantom orders the femur ends by x; after a flip (and any affine) the label must still do so, and
    both points must still sit on the bright bone."""
    from usedge.data.phantom.generator import PhantomConfig, generate_sample

    spec = get_task("fetal_femur")
    cfg = AugmentConfig(p=1.0)
    for seed in range(6):
        sample = generate_sample("fetal_femur", np.random.default_rng(seed), PhantomConfig(size=128))
        image, pts = sample.image, sample.label
        assert pts[0][0] <= pts[1][0]
        for m in (np.array([[-1.0, 0.0, 128], [0.0, 1.0, 0.0]]), random_affine(np.random.default_rng(seed), 128, cfg,
                                                                                 True, task_policy(spec))):
            moved_image, moved = apply_affine(m, image, pts, spec, 128)
            assert moved[0][0] <= moved[1][0], (seed, m)
            for x, y in moved:  # the 5x5 neighbourhood of each end is brighter than most of the image
                patch = moved_image[max(0, round(y) - 2):round(y) + 3, max(0, round(x) - 2):round(x) + 3]
                assert patch.max() > np.percentile(moved_image[moved_image > 0], 75), (seed, x, y)


@pytest.mark.parametrize("task_id", [t.id for t in ALL_TASKS])
def test_augmentation_keeps_every_tasks_label_true(task_id):
    """Per task, on its own phantom images: 30 random augmentations (p = 1) give labels of the right kind,
    inside the frame, with the task's policy (no rotation where declared, flips remapped / re-sorted)."""
    from usedge.data.phantom.generator import PhantomConfig, generate_sample

    spec, policy, size = get_task(task_id), task_policy(get_task(task_id)), 96
    sample = generate_sample(task_id, np.random.default_rng(1), PhantomConfig(size=size))
    cfg = AugmentConfig(p=1.0)
    for seed in range(30):
        m = random_affine(np.random.default_rng(seed), size, cfg, True, policy)
        if not policy.rotate:  # only flips and scale: the 2x2 part is diagonal
            assert abs(m[0, 1]) < 1e-12 and abs(m[1, 0]) < 1e-12
        if not policy.flip:
            assert not is_flip(m)
        image, label = augment(np.random.default_rng(seed), sample.image, sample.label, spec, size, cfg)
        assert image.shape == sample.image.shape and image.dtype == np.uint8
        if spec.kind is TaskKind.CLASSIFICATION:
            expect = {sample.label, (policy.flip_classes or {})[sample.label] if policy.flip_classes else sample.label}
            assert label in expect
        elif spec.kind is TaskKind.REGRESSION:
            pts = np.asarray(label)
            assert pts.shape == (spec.num_points, 2) and (pts >= 0).all() and (pts <= size).all()
            if policy.point_order == "left_to_right":
                assert (np.diff(pts[:, 0]) >= 0).all()
        elif spec.kind is TaskKind.DETECTION:
            x0, y0, x1, y1 = label
            assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
        else:
            assert set(np.unique(label)) <= set(range(spec.num_classes))


def test_detection_boxes_stay_tight_under_the_default_augmentation():
    """Rotation (on by default) would turn a box into the loose box of its rotated corners: the detection
    policy has none, so the label is the moved object's tight box."""
    image, _, box, _ = _scene()
    spec = get_task("thyroid_nodule_det")
    assert task_policy(spec) == TaskAugment(rotate=False)
    for seed in range(20):
        img2, box2 = augment(np.random.default_rng(seed), image, box, spec, S, AugmentConfig(p=1.0, brightness=0,
                                                                                          contrast=0, gamma=(1, 1)))
        ys, xs = np.nonzero(img2 > 127)
        assert abs(xs.min() - box2[0]) <= 1.5 and abs(xs.max() + 1 - box2[2]) <= 1.5
        assert abs(ys.min() - box2[1]) <= 1.5 and abs(ys.max() + 1 - box2[3]) <= 1.5


def test_a_transform_that_would_push_a_landmark_out_is_dropped():
    spec = get_task("FUGC")
    image = np.zeros((S, S), np.uint8)
    pts = ((1.0, 1.0), (62.0, 62.0))
    cfg = AugmentConfig(p=1.0, max_shift=0.4, brightness=0, contrast=0, gamma=(1, 1))
    kept = 0
    for seed in range(20):
        _, out = augment(np.random.default_rng(seed), image, pts, spec, S, cfg)
        arr = np.asarray(out)
        assert (arr >= 0).all() and (arr <= S).all()
        kept += out == pts
    assert kept > 0  # some transforms were refused rather than clipped


def test_the_policy_table_names_real_tasks():
    ids = {t.id for t in ALL_TASKS}
    assert set(AUGMENT_POLICY) <= ids and ORIENTATION_TASKS <= set(AUGMENT_POLICY)


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


def _sector_image(seed=0):
    """A phantom-like frame: speckle inside a sector, exact zeros outside it."""
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 200, (S, S, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:S, :S]
    outside = np.abs(xx - S / 2) > (yy * 0.6 + 4)
    image[outside] = 0
    return image, outside


def test_ultrasound_artifacts_change_the_scan_area_only():
    from usedge.data.transforms import ultrasound_artifacts

    image, outside = _sector_image()
    changed = [ultrasound_artifacts(np.random.default_rng(s), image) for s in range(12)]
    assert all(c.dtype == np.uint8 and c.shape == image.shape for c in changed)
    assert all((c[outside] == 0).all() for c in changed)           # nothing drawn outside the sector
    assert sum(not np.array_equal(c, image) for c in changed) >= 10  # almost every draw alters the image
    np.testing.assert_array_equal(ultrasound_artifacts(np.random.default_rng(3), image), changed[3])


def test_ultrasound_augmentation_keeps_every_label():
    """An intensity-only stage: with geometry off, the label that comes out is the label that went in."""
    from dataclasses import replace

    image, _ = _sector_image(1)
    cfg = replace(AugmentConfig(p=0.0), ultrasound=1.0)
    mask = (image[..., 0] > 100).astype(np.uint8)
    for task in ("fetal_head", "organ_cls", "thyroid_nodule_det", "fetal_femur"):
        spec = get_task(task)
        label = {TaskKind.SEGMENTATION: mask, TaskKind.CLASSIFICATION: 2, TaskKind.DETECTION: (10.0, 12.0, 30.0, 40.0),
                 TaskKind.REGRESSION: ((10.0, 20.0), (40.0, 30.0))}[spec.kind]
        out, got = augment(np.random.default_rng(0), image, label, spec, S, cfg)
        assert got is label and not np.array_equal(out, image)
    off, _ = augment(np.random.default_rng(0), image, 1, get_task("organ_cls"), S, AugmentConfig(p=0.0))
    np.testing.assert_array_equal(off, image)                      # ultrasound=0 (the default): untouched
