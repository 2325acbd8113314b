"""Reg-STN (Roy et al., IEEE TMI 2020): a spatial transformer that scores a frame from two crops.

A localisation network reads the frame and predicts, per crop ``k`` (two crops), three numbers
``(a_k, b_k, c_k)`` that become a scale-and-translation affine transform

    theta_k = [[s_k, 0, tx_k], [0, s_k, ty_k]]
    s_k  = s_min + (s_max - s_min) * sigmoid(a_k)          (scale constrained to [s_min, s_max])
    tx_k = (1 - s_k) * tanh(b_k),  ty_k = (1 - s_k) * tanh(c_k)   (the crop stays inside the frame)

in PyTorch's normalised coordinates (``affine_grid``/``grid_sample`` with ``align_corners=False``:
the frame spans [-1, 1] edge to edge). The output grid point (x_o, y_o) samples the frame at
(s*x_o + tx, s*y_o + ty), so the crop is the square-in-normalised-units box
[tx - s, tx + s] x [ty - s, ty + s]; :func:`crop_boxes` gives it in pixels. One small classifier,
shared by the two crops, scores each crop; the frame's probabilities are the mean of the two
crops' softmax outputs (this implementation's choice).

Training objective (:func:`regstn_loss`), for SORD target distributions q (built by
``scoring.core.training.sord.sord_targets``; this module may not import the training layer):

    L = 1/2 * sum_k CE(q, softmax(z_k))                         SORD term, per crop
        + lambda_c * 1/2 * (KL(p_1 || p_2) + KL(p_2 || p_1))     consistency (symmetric KL)
        + lambda_s * mean_k (s_k - s_prior) ** 2                 scale prior

with p_k = softmax(z_k) and KL(p || r) = sum_i p_i log(p_i / r_i). Roy et al. train the crops
with SORD, make the two crops' predictions agree through a consistency term and keep the crops
from collapsing (to a tiny patch or to the whole frame) with a prior on the scale. Their paper's
exact functional forms are not in this repository; the forms above (symmetric KL, squared
distance to a prior scale) are this implementation's choice and are pinned by the tests.

Frame -> clip aggregation is the learned min-uninorm already in
``scoring.core.inference.aggregate.UninormAggregator`` (fed with :attr:`RegSTNOutput.probs`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

N_CROPS = 2


class RegSTNOutput(NamedTuple):
    """logits [N, 2, C] (per crop), theta [N, 2, 2, 3], scales [N, 2], probs [N, C] (frame)."""

    logits: torch.Tensor
    theta: torch.Tensor
    scales: torch.Tensor
    probs: torch.Tensor


def constrained_theta(params: torch.Tensor, s_min: float, s_max: float) -> torch.Tensor:
    """Raw parameters [..., 3] = (a, b, c) -> affine matrices [..., 2, 3] (see the module doc)."""
    if not 0.0 < s_min <= s_max <= 1.0:
        raise ValueError(f"need 0 < s_min <= s_max <= 1, got {s_min}, {s_max}")
    s = s_min + (s_max - s_min) * torch.sigmoid(params[..., 0])
    tx = (1.0 - s) * torch.tanh(params[..., 1])
    ty = (1.0 - s) * torch.tanh(params[..., 2])
    zero = torch.zeros_like(s)
    return torch.stack([torch.stack([s, zero, tx], -1), torch.stack([zero, s, ty], -1)], -2)


def sample_crops(x: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Frames x [N, ch, H, W] and transforms theta [N, K, 2, 3] -> crops [N, K, ch, size, size]."""
    n, k = theta.shape[:2]
    xs = x.unsqueeze(1).expand(n, k, *x.shape[1:]).reshape(n * k, *x.shape[1:])
    grid = F.affine_grid(theta.reshape(n * k, 2, 3), [n * k, x.shape[1], size, size], align_corners=False)
    crops = F.grid_sample(xs, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops.reshape(n, k, x.shape[1], size, size)


def crop_boxes(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop rectangles in pixel coordinates: theta [..., 2, 3] -> [..., 4] = (x0, y0, x1, y1).

    Pixel edges: the frame spans x in [0, width], y in [0, height]; normalised u maps to
    (u + 1) * width / 2. A crop with scale s and shift t covers u in [t - s, t + s]. Normalised
    coordinates do not depend on the resolution, so ``height``/``width`` may be those of the
    original frame (before resizing to the model's input): the boxes come out in its pixels.
    """
    s_x, s_y = theta[..., 0, 0], theta[..., 1, 1]
    tx, ty = theta[..., 0, 2], theta[..., 1, 2]
    x0 = (tx - s_x + 1.0) * width / 2.0
    x1 = (tx + s_x + 1.0) * width / 2.0
    y0 = (ty - s_y + 1.0) * height / 2.0
    y1 = (ty + s_y + 1.0) * height / 2.0
    return torch.stack([x0, y0, x1, y1], -1)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class RegSTN(nn.Module):
    """Localisation network + two constrained crops + one classifier shared by the crops.

    ``init_ty``: the two crops start at different heights (tanh(c) = -0.5 and +0.5, upper and lower
    part of the frame), since two identical crops would receive identical gradients and never part.
    """

    def __init__(self, n_classes: int = 4, in_channels: int = 1, crop_size: int = 64, s_min: float = 0.4,
                 s_max: float = 0.9, width: int = 16, init_ty: tuple[float, float] = (-0.5, 0.5)) -> None:
        super().__init__()
        self.s_min, self.s_max, self.crop_size = s_min, s_max, crop_size
        self.loc = nn.Sequential(
            _conv_block(in_channels, width), _conv_block(width, width), _conv_block(width, 2 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 3 * N_CROPS),
        )
        last = self.loc[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        with torch.no_grad():  # start: mid-range scale, centred in x, upper and lower crop in y
            last.bias.copy_(torch.tensor([[0.0, 0.0, math.atanh(t)] for t in init_ty]).reshape(-1))
        self.classifier = nn.Sequential(
            _conv_block(in_channels, width), _conv_block(width, 2 * width), _conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, n_classes),
        )

    def transforms(self, x: torch.Tensor) -> torch.Tensor:
        """Frames [N, ch, H, W] -> theta [N, 2, 2, 3]."""
        params = self.loc(x).reshape(x.shape[0], N_CROPS, 3)
        return constrained_theta(params, self.s_min, self.s_max)

    def forward(self, x: torch.Tensor) -> RegSTNOutput:
        theta = self.transforms(x)
        crops = sample_crops(x, theta, self.crop_size)
        n = x.shape[0]
        logits = self.classifier(crops.reshape(n * N_CROPS, *crops.shape[2:])).reshape(n, N_CROPS, -1)
        probs = torch.softmax(logits, -1).mean(1)
        return RegSTNOutput(logits, theta, theta[..., 0, 0], probs)


def consistency_loss(p1: torch.Tensor, p2: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Symmetric KL between two crops' probability vectors [N, C], mean over rows:
    1/2 * (KL(p1 || p2) + KL(p2 || p1)) = 1/2 * sum_i (p1_i - p2_i) * (log p1_i - log p2_i)."""
    lp1, lp2 = torch.log(p1.clamp_min(eps)), torch.log(p2.clamp_min(eps))
    return (0.5 * ((p1 - p2) * (lp1 - lp2)).sum(-1)).mean()


def scale_prior(scales: torch.Tensor, prior: float) -> torch.Tensor:
    """Mean squared distance of the crop scales [N, K] to the prior scale."""
    return ((scales - prior) ** 2).mean()


def regstn_loss(out: RegSTNOutput, targets: torch.Tensor, lambda_c: float = 1.0, lambda_s: float = 1.0,
                s_prior: float = 0.6) -> tuple[torch.Tensor, dict[str, float]]:
    """The training objective of the module doc; ``targets`` [N, C] are SORD target distributions.
    Returns (loss, its three terms as floats)."""
    q = targets.to(out.logits.dtype)
    sord = torch.stack([-(q * torch.log_softmax(out.logits[:, k], -1)).sum(-1).mean() for k in range(N_CROPS)]).mean()
    p = torch.softmax(out.logits, -1)
    cons = consistency_loss(p[:, 0], p[:, 1])
    prior = scale_prior(out.scales, s_prior)
    loss = sord + lambda_c * cons + lambda_s * prior
    return loss, {"sord": float(sord.detach()), "consistency": float(cons.detach()), "scale_prior": float(prior.detach())}
