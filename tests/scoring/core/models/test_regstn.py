from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scoring.core.inference.aggregate import UninormAggregator, uninorm_fold
from scoring.core.models.regstn import (
    RegSTN,
    RegSTNOutput,
    consistency_loss,
    constrained_theta,
    crop_boxes,
    regstn_loss,
    sample_crops,
    scale_prior,
)
from scoring.core.training.sord import sord_loss, sord_targets


def _theta(s: float, tx: float, ty: float) -> torch.Tensor:
    return torch.tensor([[[[s, 0.0, tx], [0.0, s, ty]]]])  # [1, 1, 2, 3]


def test_constrained_theta_hand_values() -> None:
    # a = ln 3 -> sigmoid 0.75 -> s = 0.4 + 0.5 * 0.75 = 0.775; b = atanh(0.5) -> tx = (1 - 0.775) * 0.5
    th = constrained_theta(torch.tensor([[math.log(3), math.atanh(0.5), 0.0]]), 0.4, 0.9)
    assert th[0].flatten().tolist() == pytest.approx([0.775, 0.0, 0.1125, 0.0, 0.775, 0.0])
    th0 = constrained_theta(torch.zeros(1, 3), 0.4, 0.9)
    assert th0[0].flatten().tolist() == pytest.approx([0.65, 0.0, 0.0, 0.0, 0.65, 0.0])


def test_scale_and_shift_stay_in_bounds() -> None:
    p = torch.randn(2000, 3, generator=torch.Generator().manual_seed(0)) * 20
    th = constrained_theta(p, 0.4, 0.9)
    s, tx, ty = th[:, 0, 0], th[:, 0, 2], th[:, 1, 2]
    assert s.min() >= 0.4 and s.max() <= 0.9
    assert s.min() < 0.41 and s.max() > 0.89  # the bounds are reached at the extremes
    assert (tx.abs() + s <= 1 + 1e-6).all() and (ty.abs() + s <= 1 + 1e-6).all()  # crop inside the frame
    assert torch.equal(th[:, 0, 0], th[:, 1, 1]) and (th[:, 0, 1] == 0).all() and (th[:, 1, 0] == 0).all()
    with pytest.raises(ValueError):
        constrained_theta(p, 0.5, 1.2)


def test_output_grid_corners_map_to_known_input_points() -> None:
    # align_corners=False, 4x4 output: pixel centres at -0.75, -0.25, 0.25, 0.75;
    # input = (s * x_o + tx, s * y_o + ty) with s=0.5, tx=0.25, ty=-0.5
    grid = F.affine_grid(_theta(0.5, 0.25, -0.5)[0], [1, 1, 4, 4], align_corners=False)
    assert grid[0, 0, 0].tolist() == pytest.approx([-0.125, -0.875])
    assert grid[0, 0, 3].tolist() == pytest.approx([0.625, -0.875])
    assert grid[0, 3, 0].tolist() == pytest.approx([-0.125, -0.125])
    assert grid[0, 3, 3].tolist() == pytest.approx([0.625, -0.125])


def test_sample_crops_cuts_the_pixels_of_the_box() -> None:
    ramp = (torch.arange(8.0)[None, :] + 10 * torch.arange(8.0)[:, None])[None, None]  # value j + 10 i
    crops = sample_crops(ramp, torch.cat([_theta(0.5, 0.0, 0.0), _theta(0.5, 0.25, -0.25)], 1), 4)
    assert crops.shape == (1, 2, 1, 4, 4)
    ij = torch.arange(4.0)
    # centred half-size crop: rows and columns 2..5; shifted by +1 column and -1 row: columns 3..6, rows 1..4
    assert torch.allclose(crops[0, 0, 0], (ij[None, :] + 2) + 10 * (ij[:, None] + 2), atol=1e-4)
    assert torch.allclose(crops[0, 1, 0], (ij[None, :] + 3) + 10 * (ij[:, None] + 1), atol=1e-4)
    boxes = crop_boxes(torch.cat([_theta(0.5, 0.0, 0.0), _theta(0.5, 0.25, -0.25)], 1), 8, 8)
    assert boxes[0].tolist() == [[2.0, 2.0, 6.0, 6.0], [3.0, 1.0, 7.0, 5.0]]  # pixel edges x0, y0, x1, y1


def test_crop_boxes_hand_values() -> None:
    # x: (0.25 -/+ 0.5 + 1) * 100 / 2 = 37.5, 87.5; y: (-0.5 -/+ 0.5 + 1) * 60 / 2 = 0, 30
    assert crop_boxes(_theta(0.5, 0.25, -0.5), 60, 100)[0, 0].tolist() == [37.5, 0.0, 87.5, 30.0]
    assert crop_boxes(_theta(1.0, 0.0, 0.0), 60, 100)[0, 0].tolist() == [0.0, 0.0, 100.0, 60.0]


def test_consistency_loss_hand_value() -> None:
    p1 = torch.tensor([[0.5, 0.5], [0.2, 0.8]])
    p2 = torch.tensor([[0.25, 0.75], [0.2, 0.8]])
    # row 0: 1/2 * ((0.25) ln 2 + (-0.25) ln(2/3)) = 0.125 ln 3; row 1: identical -> 0
    assert float(consistency_loss(p1, p2)) == pytest.approx(0.0625 * math.log(3), rel=1e-6)
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    kl_rev = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert float(consistency_loss(p1[:1], p2[:1])) == pytest.approx(0.5 * (kl + kl_rev), rel=1e-6)
    assert float(consistency_loss(p2, p1)) == pytest.approx(float(consistency_loss(p1, p2)))


def test_scale_prior_hand_value() -> None:
    s = torch.tensor([[0.5, 0.9], [0.6, 0.3]])
    # ((-0.1)^2 + 0.3^2 + 0 + (-0.3)^2) / 4 = 0.19 / 4
    assert float(scale_prior(s, 0.6)) == pytest.approx(0.0475)


def test_loss_uses_sord_targets_and_adds_the_terms() -> None:
    logits = torch.tensor([[[2.0, 0.5, 0.0, -1.0], [1.0, 1.0, 0.0, 0.0]],
                           [[0.0, 0.0, 3.0, 0.0], [0.0, 1.0, 2.0, 0.0]]])
    scales = torch.tensor([[0.5, 0.9], [0.6, 0.3]])
    theta = constrained_theta(torch.zeros(2, 2, 3), 0.4, 0.9)
    out = RegSTNOutput(logits, theta, scales, torch.softmax(logits, -1).mean(1))
    labels = torch.tensor([0, 2])
    q = torch.as_tensor(sord_targets(labels.numpy()))
    loss, terms = regstn_loss(out, q, lambda_c=0.5, lambda_s=2.0, s_prior=0.6)
    sord = 0.5 * (float(sord_loss(logits[:, 0], labels)) + float(sord_loss(logits[:, 1], labels)))
    p = torch.softmax(logits, -1)
    cons = float(consistency_loss(p[:, 0], p[:, 1]))
    assert terms["sord"] == pytest.approx(sord, rel=1e-6)
    assert terms["scale_prior"] == pytest.approx(0.0475)
    assert float(loss) == pytest.approx(sord + 0.5 * cons + 2.0 * 0.0475, rel=1e-6)


def test_model_starts_with_two_distinct_crops_and_trains_its_crops() -> None:
    torch.manual_seed(0)
    m = RegSTN(n_classes=4, in_channels=1, crop_size=16, width=8)
    x = torch.rand(6, 1, 32, 32)
    out = m(x)
    assert out.logits.shape == (6, 2, 4) and out.theta.shape == (6, 2, 2, 3) and out.probs.shape == (6, 4)
    assert torch.allclose(out.probs.sum(1), torch.ones(6))
    assert torch.allclose(out.scales, torch.full((6, 2), 0.65))
    assert out.theta[0, :, 1, 2].tolist() == pytest.approx([-0.175, 0.175])  # (1 - 0.65) * -/+0.5
    loss, _ = regstn_loss(out, torch.as_tensor(sord_targets([0, 1, 2, 3, 1, 0])), s_prior=0.5)
    loss.backward()
    assert m.loc[-1].weight.grad is not None and m.loc[-1].weight.grad.abs().sum() > 0  # gradients reach theta


def test_short_fit_lowers_the_loss() -> None:
    torch.manual_seed(0)
    m = RegSTN(n_classes=4, crop_size=16, width=8)
    x = torch.rand(8, 1, 32, 32)
    y = [0, 1, 2, 3, 0, 1, 2, 3]
    x[:, :, 8:24] += torch.tensor(y, dtype=torch.float32).view(8, 1, 1, 1)  # class = brightness of the middle
    q = torch.as_tensor(sord_targets(y))
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss, _ = regstn_loss(m(x), q)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_frame_probs_feed_the_existing_uninorm() -> None:
    torch.manual_seed(0)
    m = RegSTN(crop_size=16, width=8).eval()
    with torch.no_grad():
        frames = m(torch.rand(5, 1, 32, 32)).probs
    agg = UninormAggregator(n_classes=4)
    clip_probs, clip_score = agg.aggregate(frames.numpy())
    with torch.no_grad():
        expected = torch.softmax(agg.log_tau.exp() * uninorm_fold(frames, agg.e), -1).numpy()
    assert np.allclose(clip_probs, expected, atol=1e-6) and clip_score == int(np.argmax(expected))
