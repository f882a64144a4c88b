import pytest

torch = pytest.importorskip("torch")

from usedge.tasks import get_task  # noqa: E402
from usedge.train.losses import detection_loss, dice_loss, giou, positive_cells, segmentation_loss, task_loss  # noqa: E402


def test_dice_loss_perfect_and_wrong():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:6, 2:6] = 1
    perfect = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float() * 20
    assert dice_loss(perfect, target) < 1e-3
    assert dice_loss(-perfect, target) > 0.9
    low = perfect[:, :, ::2, ::2]  # stride-2 logits are upsampled to the label size
    assert segmentation_loss(low, target) < segmentation_loss(-low, target)


def test_giou_values():
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert giou(a, a).item() == pytest.approx(1.0)
    b = torch.tensor([2.0, 0.0, 3.0, 1.0])  # disjoint: iou 0, hull 3, union 2 -> -1/3
    assert giou(a, b).item() == pytest.approx(-1 / 3, abs=1e-6)


def test_positive_cells_include_the_centre_cell():
    pos = positive_cells(torch.tensor([[0.5, 0.5, 0.56, 0.56]]), 16, 16)
    assert pos.sum() >= 1 and pos[0, 8, 8]


def test_detection_loss_prefers_the_right_box():
    target = torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    h = w = 8
    good = target.view(1, 4, 1, 1).expand(1, 4, h, w).clone()
    bad = torch.tensor([0.0, 0.0, 0.1, 0.1]).view(1, 4, 1, 1).expand(1, 4, h, w).clone()
    obj = torch.full((1, 1, h, w), -5.0)
    obj[..., 4, 4] = 5.0
    assert detection_loss(good, obj, target) < detection_loss(bad, obj, target)


def test_task_loss_every_kind():
    spec = get_task("FUGC")
    out = {"FUGC.points": torch.full((2, 2, 2), 0.5)}
    assert task_loss(spec, out, torch.full((2, 2, 2), 0.5)).item() == pytest.approx(0.0)
    cls = get_task("breast_2cls")
    loss = task_loss(cls, {"breast_2cls.logits": torch.tensor([[5.0, -5.0]])}, torch.tensor([0]))
    assert loss.item() < 0.01
