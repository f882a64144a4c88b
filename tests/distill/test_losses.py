"""Distillation losses: zero when the student equals the teacher, positive and differentiable otherwise."""
import pytest

torch = pytest.importorskip("torch")

from usedge.distill.losses import FeatureAdapters, KDWeights, kl_soft, task_kd  # noqa: E402
from usedge.tasks import get_task  # noqa: E402

W = KDWeights()


def _outputs(spec, seed, n=2, h=8):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for o in spec.outputs:
        shape = [n if d == "N" else (h if isinstance(d, str) else d) for d in o.shape]
        out[o.name] = torch.randn(*shape, generator=g)
    if spec.kind.value == "detection":
        b = out[spec.output_names[0]]
        lo = torch.rand(n, 2, h, h, generator=g) * 0.5
        out[spec.output_names[0]] = torch.cat([lo, lo + 0.1 + 0.3 * torch.rand(n, 2, h, h, generator=g)], 1)
        assert b.shape == out[spec.output_names[0]].shape
    if spec.kind.value == "regression":
        out[spec.output_names[0]] = out[spec.output_names[0]].sigmoid()
    return out


@pytest.mark.parametrize("task", ["fetal_head", "cardiac_multi", "organ_cls", "breast_2cls", "thyroid_nodule_det",
                                  "IUGC", "fetal_femur"])
def test_kd_is_minimal_at_the_teacher_and_grows_away_from_it(task):
    spec = get_task(task)
    teacher = _outputs(spec, 0)
    same = task_kd(spec, {k: v.clone() for k, v in teacher.items()}, teacher, W)
    other = {k: v.clone().requires_grad_(True) for k, v in _outputs(spec, 1).items()}
    far = task_kd(spec, other, teacher, W)
    far.backward()
    assert far.item() > same.item() + 1e-3
    assert all(v.grad is not None and torch.isfinite(v.grad).all() for v in other.values())
    if spec.kind.value in ("classification", "regression"):
        assert same.item() == pytest.approx(0.0, abs=1e-6)


def test_kl_soft_matches_hand_computation():
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    p = torch.softmax(t / 2, 1)
    expected = (p * (p.log() - torch.log(torch.tensor([0.5, 0.5])))).sum() * 4
    assert kl_soft(s, t, 2.0).item() == pytest.approx(expected.item(), rel=1e-6)


def test_segmentation_kd_resizes_full_resolution_teacher_logits():
    spec = get_task("fetal_head")
    s = {spec.output_names[0]: torch.randn(2, 2, 16, 16)}
    t = {spec.output_names[0]: torch.randn(2, 2, 64, 64)}  # the baseline upsamples to the input size
    assert torch.isfinite(task_kd(spec, s, t, W))


def test_feature_adapters_match_channels_and_learn():
    adapters = FeatureAdapters(8, {"t0": 16})
    s, t = torch.randn(2, 8, 8, 8), torch.randn(2, 16, 16, 16)
    opt = torch.optim.Adam(adapters.parameters(), 1e-2)
    target = {"t0": torch.nn.functional.conv2d(s, torch.randn(16, 8, 1, 1))}
    first = adapters.loss(s, target).item()
    for _ in range(100):
        opt.zero_grad()
        loss = adapters.loss(s, target)
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    assert adapters.loss(s, {"unknown": t}).item() == 0.0
