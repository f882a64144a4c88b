"""Labels agree with what the image shows (averaged over a few seeds)."""
import cv2
import numpy as np

from usedge.data.phantom import generate_sample, sample_rng
from usedge.data.phantom.physics import get_geometry

N = 8


def _samples(task, n=N, seed=5):
    return [generate_sample(task, sample_rng(seed, "train", task, i)) for i in range(n)]


def _sector(s):
    return get_geometry(s.meta["preset"], s.image.shape[0], s.meta["variant"]).mask > 0


def _band(mask, inner, outer):
    """Pixels whose distance to the mask's border (inside it) lies in (inner, outer]."""
    d = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return (d > inner) & (d <= outer)


def _ring_outside(mask, width):
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, np.ones((2 * width + 1, 2 * width + 1), np.uint8)) > 0) & (m == 0)


def test_fetal_skull_ring_is_brighter_than_brain():
    for s in _samples("fetal_head"):
        m = s.label > 0
        assert s.image[_band(m, 0, 4)].mean() > s.image[_band(m, 12, 1e9)].mean() + 10


def test_femur_landmarks_lie_on_the_bright_bone():
    for s in _samples("fetal_femur"):
        (x0, y0), (x1, y1) = s.label
        t = np.linspace(0, 1, 60)
        on_bone = s.image[np.round(y0 + t * (y1 - y0)).astype(int), np.round(x0 + t * (x1 - x0)).astype(int)]
        assert on_bone.mean() > np.median(s.image[_sector(s)]) + 40


def test_dark_structures_inside_their_masks():
    for task, width, margin in (("carotid_artery", 3, 40), ("ovary_tumor", 7, 25), ("breast_lesion", 7, 15)):
        for s in _samples(task):
            m = s.label > 0
            assert s.image[_ring_outside(m, width) & _sector(s)].mean() > s.image[m].mean() + margin, task


def test_cardiac_cavities_darker_than_myocardium():
    for s in _samples("cardiac_multi"):
        myo = s.image[s.label == 2].mean()
        assert myo > s.image[s.label == 1].mean() + 10 and myo > s.image[s.label == 3].mean() + 10


def test_fibroid_box_holds_the_dark_mass():
    diffs = []
    for s in _samples("uterine_fibroid_det", 16):
        x0, y0, x1, y1 = (int(v) for v in s.label)
        w = x1 - x0
        side = np.concatenate([s.image[y0:y1, max(0, x0 - w):x0].ravel(), s.image[y0:y1, x1:x1 + w].ravel()])
        diffs.append(side.mean() - s.image[y0:y1, x0:x1].mean())
    assert np.mean(diffs) > 10 and np.mean(np.array(diffs) > 0) >= 0.8


def test_b_lines_separate_lung_classes():
    """A trivial feature (strongest column-wise brightness bump deep in the lung) separates normal from
    B-line images: the class is readable from the image."""
    feats, labels = [], []
    for s in _samples("lung_2cls", 40, seed=9):
        img, m = s.image[150:240].astype(np.float32), _sector(s)[150:240]
        cols = np.array([img[:, j][m[:, j]].mean() for j in range(img.shape[1]) if m[:, j].sum() > 40])
        feats.append(np.abs(cols - np.convolve(cols, np.ones(15) / 15, "same"))[10:-10].max())
        labels.append(s.label)
    feats, labels = np.array(feats), np.array(labels)
    auc = np.mean([p > n for p in feats[labels == 1] for n in feats[labels == 0]])
    assert auc > 0.85
