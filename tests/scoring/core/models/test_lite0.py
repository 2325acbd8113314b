from __future__ import annotations

import numpy as np
import torch

from scoring.core.models.lite0 import (
    LITE_MEAN,
    LITE_STD,
    EfficientNetLite0,
    backbone_weights_path,
    fuse_bn_,
    load_lite0,
)
from scoring.core.models.resnet import ResNet50


def test_checkpoint_keys_match_exactly() -> None:
    sd = torch.load(backbone_weights_path(), map_location="cpu", weights_only=True)
    own = EfficientNetLite0().state_dict()
    assert set(sd) == set(own)
    assert all(sd[k].shape == own[k].shape for k in own)


def test_imagenet_weights_classify_sample_images() -> None:
    from PIL import Image
    from sklearn.datasets import load_sample_images

    m = load_lite0()
    imgs = load_sample_images().images  # china.jpg (a temple), flower.jpg (a daisy-like flower)
    x = np.stack([np.asarray(Image.fromarray(i).resize((224, 224)), np.float32) / 255 for i in imgs])
    t = torch.from_numpy((x - LITE_MEAN) / LITE_STD).permute(0, 3, 1, 2)
    with torch.inference_mode():
        top5 = m(t).topk(5, 1).indices.tolist()
    # ImageNet: 698 palace, 663 monastery, 442 bell cote, 483 castle; 985 daisy
    assert {698, 663, 442, 483} & set(top5[0])
    assert top5[1][0] == 985


def test_truncated_and_fused_match_full() -> None:
    full = load_lite0()
    trunc = load_lite0(n_blocks=8)
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        a = full.forward_features(x, (4, 7))
        b = trunc.forward_features(x, (4, 7))
        fuse_bn_(trunc)
        c = trunc.forward_features(x, (4, 7))
    for u, v, w in zip(a, b, c, strict=True):
        assert torch.allclose(u, v)
        assert torch.allclose(u, w, atol=1e-3)
    assert a[0].shape == (2, 40, 12, 12) and a[1].shape == (2, 80, 6, 6)


def test_resnet50_shape() -> None:
    with torch.inference_mode():
        assert ResNet50(4).eval()(torch.randn(1, 3, 64, 64)).shape == (1, 4)
