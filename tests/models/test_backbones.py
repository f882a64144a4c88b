"""Backbones: what ``feature_info`` says is what ``forward`` returns (CNNs, plain ViTs through the simple
feature pyramid, hierarchical transformers), and a ViT teacher exports to ONNX like any other model."""
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from usedge.errors import ConfigError  # noqa: E402
from usedge.models import build_model  # noqa: E402
from usedge.models.backbones import STRIDES, STRIDES_FINE, PlainViTBackbone, TimmBackbone, create_backbone  # noqa: E402
from usedge.models.presets import resolve_config  # noqa: E402

TINY_VIT = "timm/vit_tiny_patch16_224"


def _maps(backbone, size):
    with torch.no_grad():
        return backbone.eval()(torch.randn(2, 3, size, size))


@pytest.mark.parametrize("name,strides,size,cls", [
    (TINY_VIT, STRIDES, 64, PlainViTBackbone),
    (TINY_VIT, STRIDES_FINE, 64, PlainViTBackbone),
    ("timm/vit_tiny_patch16_224", STRIDES, 96, PlainViTBackbone),
    ("timm/mobilenetv4_conv_small", STRIDES_FINE, 64, TimmBackbone),
])
def test_feature_info_is_what_forward_returns(name, strides, size, cls):
    backbone = create_backbone(name, strides=strides, img_size=size)
    assert isinstance(backbone, cls)
    info = backbone.feature_info
    assert tuple(f.reduction for f in info) == strides
    maps = _maps(backbone, size)
    assert [(m.shape[1], m.shape[2], m.shape[3]) for m in maps] == [(f.channels, size // f.reduction, size // f.reduction)
                                                                     for f in info]


def test_plain_vit_pyramid_is_the_simple_feature_pyramid():
    """ViT-Ti/16 (192 wide, stride 16): strides 4/8 by 2×2 transposed convs (192 -> 96 -> 48), 16 as is, 32 pooled."""
    backbone = create_backbone(TINY_VIT, img_size=64)
    assert [f.channels for f in backbone.feature_info] == [48, 96, 192, 192]
    kinds = [type(b).__name__ for b in backbone.pyramid]
    assert kinds == ["Sequential", "Sequential", "Identity", "MaxPool2d"]
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in backbone.pyramid[0]) == 2


def test_hierarchical_transformer_maps_are_nchw():
    """Swin's timm features are NHWC; the backbone hands NCHW maps to the neck as its feature_info says."""
    backbone = create_backbone("timm/swin_tiny_patch4_window7_224", img_size=224)
    assert isinstance(backbone, TimmBackbone)
    maps = _maps(backbone, 224)
    assert [m.shape[1] for m in maps] == [f.channels for f in backbone.feature_info] == [96, 192, 384, 768]
    assert [m.shape[-1] for m in maps] == [56, 28, 14, 7]


def test_a_vit_whose_token_stride_is_not_a_power_of_two_is_refused():
    with pytest.raises(ConfigError, match="token stride 14"):
        create_backbone("timm/vit_small_patch14_dinov2", img_size=70)


def test_vit_teacher_preset_is_ten_times_the_student():
    teacher, student = build_model("teacher-vit-s"), build_model("student-s")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(teacher) > 10 * count(student)
    assert resolve_config("teacher-vit-s").input_size == 256


def test_vit_teacher_exports_to_onnx_and_matches_torch(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from usedge.models.onnx import export_onnx

    config = replace(resolve_config(TINY_VIT, "fetal_head,organ_cls,FUGC"), input_size=64)
    torch.manual_seed(0)
    model = build_model(config).eval()
    info = export_onnx(model, config, tmp_path / "vit.onnx")
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in model(torch.from_numpy(x)).items()}
    sess = ort.InferenceSession(str(info.path), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=3e-4, rtol=1e-3, err_msg=k)
