"""MCRFNet: fusion, attention blocks against hand-computed values, output shapes and heads."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoring.core.features.modalities import modality_stack
from scoring.core.inference.six_class import SIX_CLASSES
from scoring.core.labels_six import SIX_CLASS_NAMES, SIX_CLASS_VALUES
from scoring.core.models.mcrfnet import (
    MCRFBlock,
    MCRFNet,
    MCRFOutput,
    ModalityFusion,
    SelectiveKernel,
    SqueezeExcitation,
    parameter_count,
)


def _set(layer: torch.nn.Module, weight: list, bias: list) -> None:
    assert isinstance(layer, torch.nn.Linear | torch.nn.Conv2d) and layer.bias is not None
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight).reshape(layer.weight.shape))
        layer.bias.copy_(torch.tensor(bias))


def test_fusion_is_a_per_pixel_weighted_sum() -> None:
    fusion = ModalityFusion(3, 2)
    _set(fusion.conv, [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], [0.1, 0.0])
    x = torch.zeros(1, 3, 2, 2)
    x[0, :, 0, 1] = torch.tensor([0.5, 1.0, 0.2])  # grey, k-means rank, gradient of one pixel
    y = fusion(x)
    assert y.shape == (1, 2, 2, 2)
    assert y[0, 0, 0, 1].item() == pytest.approx(0.5 + 2.0 + 0.6 + 0.1)
    assert y[0, 1, 0, 1].item() == pytest.approx(-1.0 + 0.1)
    assert y[0, 0, 1, 1].item() == pytest.approx(0.1) and y[0, 1, 1, 1].item() == pytest.approx(0.0)


@pytest.mark.parametrize(("b1", "gates"), [
    # s = (1, 3); h = relu(0.5*1 + 0.5*3 - 1) = 1; gates = sigmoid(2*1 + 0, -1*1 + 1) = sigmoid(2), 0.5
    (-1.0, (1 / (1 + math.exp(-2)), 0.5)),
    # h = relu(2 - 3) = 0; gates = sigmoid(0), sigmoid(1)
    (-3.0, (0.5, 1 / (1 + math.exp(-1)))),
])
def test_squeeze_excitation_by_hand(b1: float, gates: tuple[float, float]) -> None:
    se = SqueezeExcitation(2, reduction=2)
    _set(se.fc1, [[0.5, 0.5]], [b1])
    _set(se.fc2, [[2.0], [-1.0]], [0.0, 1.0])
    x = torch.ones(1, 2, 3, 3)
    x[:, 1] = 3.0
    out = se(x)
    np.testing.assert_allclose(se.weights(x)[0].detach().numpy(), gates, rtol=1e-6)
    np.testing.assert_allclose(out[0, 0].detach().numpy(), np.full((3, 3), gates[0]), rtol=1e-6)
    np.testing.assert_allclose(out[0, 1].detach().numpy(), np.full((3, 3), 3 * gates[1]), rtol=1e-6)


def test_selective_kernel_mix_by_hand() -> None:
    sk = SelectiveKernel(2, groups=2, min_hidden=1)
    assert sk.fc.out_features == 1
    _set(sk.fc, [[1.0, 0.0]], [0.0])
    _set(sk.attn[0], [[0.0], [0.0]], [0.0, 0.0])
    _set(sk.attn[1], [[math.log(3) / 4], [-math.log(3) / 4]], [0.0, 0.0])
    u1 = torch.ones(1, 2, 2, 2)
    u1[:, 1] = 2.0
    u2 = torch.zeros(1, 2, 2, 2)
    u2[:, 0] = 3.0
    # s = mean(u1 + u2) = (4, 2); z = relu(4) = 4; logits branch 2 = (+ln3, -ln3), branch 1 = 0
    # softmax over branches: channel 0 -> (1/4, 3/4), channel 1 -> (3/4, 1/4)
    w = sk.branch_weights([u1, u2])
    np.testing.assert_allclose(w[0].detach().numpy(), [[0.25, 0.75], [0.75, 0.25]], rtol=1e-6)
    out = sk.fuse([u1, u2])
    np.testing.assert_allclose(out[0, 0].detach().numpy(), np.full((2, 2), 0.25 * 1 + 0.75 * 3), rtol=1e-6)
    np.testing.assert_allclose(out[0, 1].detach().numpy(), np.full((2, 2), 0.75 * 2 + 0.25 * 0), rtol=1e-6)


def test_selective_kernel_weights_sum_to_one_and_forward_is_the_mix() -> None:
    torch.manual_seed(0)
    sk = SelectiveKernel(16, groups=8, stride=2).eval()
    x = torch.randn(3, 16, 10, 10)
    branches = [b(x) for b in sk.branches]
    assert [u.shape for u in branches] == [(3, 16, 5, 5)] * 2  # dilation 1 and 2 keep the size
    w = sk.branch_weights(branches)
    assert w.shape == (3, 2, 16)
    torch.testing.assert_close(w.sum(1), torch.ones(3, 16))
    expected = w[:, 0, :, None, None] * branches[0] + w[:, 1, :, None, None] * branches[1]
    torch.testing.assert_close(sk(x), expected)
    convs = [m for m in sk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.groups, c.dilation, c.stride) for c in convs] == [(8, (1, 1), (2, 2)), (8, (2, 2), (2, 2))]


def test_model_shapes_size_and_modalities_input() -> None:
    torch.manual_seed(0)
    model = MCRFNet().eval()
    assert parameter_count(model) == 239_458
    frames = np.random.default_rng(0).random((2, 112, 112)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(modality_stack(frames)))
        assert out.six_logits.shape == (2, 6) and out.score_logits.shape == (2, 4)
        assert out.six_severity().shape == (2,) and out.expected_score().shape == (2,)
        assert model(torch.rand(1, 3, 128, 128)).six_logits.shape == (1, 6)
    assert model.features(torch.rand(1, 3, 112, 112)).shape == (1, model.feature_dim)


def test_six_class_head_uses_the_product_scale() -> None:
    assert tuple(zip(SIX_CLASS_NAMES, SIX_CLASS_VALUES.values(), strict=True)) == SIX_CLASSES
    one_hot = torch.full((6, 6), -1e4).fill_diagonal_(1e4)
    out = MCRFOutput(one_hot, torch.zeros(6, 4))
    torch.testing.assert_close(out.six_severity(), torch.tensor([0.0, 1.0, 2.0, 2.5, 3.0, 4.0]))
    uniform = MCRFOutput(torch.zeros(1, 6), torch.zeros(1, 4))
    assert uniform.six_severity().item() == pytest.approx(12.5 / 6)
    assert uniform.expected_score().item() == pytest.approx(1.5)


def test_both_heads_learn_a_tiny_batch() -> None:
    """A few Adam steps on 4 synthetic 32-px stacks fit both heads: gradients reach every block."""
    torch.manual_seed(0)
    model = MCRFNet()
    x = torch.rand(4, 3, 32, 32)
    six, score = torch.tensor([0, 2, 4, 5]), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.six_logits, six) + torch.nn.functional.cross_entropy(
            out.score_logits, score)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fusion.parameters())
    assert all(b.sk.fc.weight.grad is not None for b in model.trunk if isinstance(b, MCRFBlock))
