"""MCRFNet (Hu et al. 2021): multi-modal input, ResNeXt trunk with channel and receptive-field attention.

Layout, sized for CPU training at 112-128 px:

* **modality fusion**: the three modalities of ``scoring.core.features.modalities`` (grey level,
  K-means cluster map, gradient field; ``[B, 3, H, W]``) fused by a 1x1 convolution
  (:class:`ModalityFusion`, 3 -> 16 channels), then a 3x3 stride-2 stem (16 -> 32);
* **trunk**: three stages of ResNeXt bottlenecks (:class:`MCRFBlock`; 1, 2 and 1 blocks), widths
  64 / 128 / 256 (inner width half of that), each stage halving the resolution (112 px -> 7x7).
  In every block the grouped 3x3 convolution (cardinality 8) is a **selective-kernel** unit
  (:class:`SelectiveKernel`: a dilation-1 and a dilation-2 grouped branch fused by a softmax
  attention over branches, the receptive-field attention) and the block's output is re-weighted
  by **squeeze-excitation** (:class:`SqueezeExcitation`, the channel attention) before the
  residual sum;
* **heads** on the pooled 256-d feature: the six-class head (``SIX_CLASS_NAMES``: A-line, A&B-line,
  B1-line, B1&B2-line, B2-line, consolidation, severity values 0 / 1 / 2 / 2.5 / 3 / 4) and the
  Soldati 0-3 head (``SCORE_CLASSES``).

239,458 parameters (:func:`parameter_count`, pinned by a test); 0.96 MB of float32 weights.
Forward on CPU: about 28 frames/s at 112 px, batch 32, 2 threads (measured once, on the 2-core
dev machine under load). Building the modality stacks (``modality_stack``) runs at about
140 frames/s on one core.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scoring.core.labels import SCORE_CLASSES
from scoring.core.labels_six import SIX_CLASS_NAMES, SIX_CLASS_VALUES

#: Severity value of each six-class output, in head order.
SIX_VALUES = torch.tensor([SIX_CLASS_VALUES[n] for n in SIX_CLASS_NAMES])


class ModalityFusion(nn.Module):
    """1x1 convolution over the stacked modalities: each output pixel is a weighted sum of the
    pixel's grey level, cluster rank and gradient (plus a bias)."""

    def __init__(self, n_modalities: int = 3, out_channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_modalities, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SqueezeExcitation(nn.Module):
    """Channel attention: ``x * sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2)`` per channel."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel gates ``[B, C]`` in (0, 1)."""
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)[:, :, None, None]


class SelectiveKernel(nn.Module):
    """Receptive-field attention (SKNet): grouped 3x3 branches of dilation 1 and 2, mixed per
    channel by a softmax over branches computed from the pooled sum of the branches.

    ``s = mean_hw(U1 + U2)``, ``z = relu(fc(s))``, ``a_b = attn_b(z)``, weights ``softmax_b(a_b)``
    (they sum to 1 over branches for every channel), output ``sum_b w_b * U_b``.
    """

    def __init__(self, channels: int, groups: int = 8, stride: int = 1, dilations: tuple[int, ...] = (1, 2),
                 reduction: int = 4, min_hidden: int = 16) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, stride, padding=d, dilation=d, groups=groups, bias=False),
                          nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
            for d in dilations)
        hidden = max(channels // reduction, min_hidden)
        self.fc = nn.Linear(channels, hidden)
        self.attn = nn.ModuleList(nn.Linear(hidden, channels) for _ in dilations)

    def branch_weights(self, branches: list[torch.Tensor]) -> torch.Tensor:
        """Attention ``[B, n_branches, C]`` over branches from their outputs (softmax over dim 1)."""
        s = torch.stack(branches).sum(0).mean((2, 3))
        z = F.relu(self.fc(s))
        return torch.softmax(torch.stack([a(z) for a in self.attn], dim=1), dim=1)

    def fuse(self, branches: list[torch.Tensor]) -> torch.Tensor:
        """The attention-weighted sum of the branch outputs."""
        w = self.branch_weights(branches)
        return sum((w[:, i, :, None, None] * u for i, u in enumerate(branches)), torch.zeros_like(branches[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse([b(x) for b in self.branches])


class MCRFBlock(nn.Module):
    """ResNeXt bottleneck: 1x1 reduce, selective-kernel grouped 3x3, 1x1 expand, squeeze-excitation,
    plus the (projected when the shape changes) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, cardinality: int = 8) -> None:
        super().__init__()
        width = cout // 2
        self.reduce = nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.sk = SelectiveKernel(width, groups=cardinality, stride=stride)
        self.expand = nn.Sequential(nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.se = SqueezeExcitation(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.expand(self.sk(self.reduce(x))))
        return F.relu(y + self.shortcut(x))


@dataclass
class MCRFOutput:
    """Logits of the two heads: six-class ``[B, 6]`` and Soldati ``[B, 4]``."""

    six_logits: torch.Tensor
    score_logits: torch.Tensor

    def six_severity(self) -> torch.Tensor:
        """Expected six-class severity ``[B]``: softmax probabilities times 0/1/2/2.5/3/4."""
        return torch.softmax(self.six_logits, dim=1) @ SIX_VALUES.to(self.six_logits)

    def expected_score(self) -> torch.Tensor:
        """Expected Soldati score ``[B]`` (0-3)."""
        p = torch.softmax(self.score_logits, dim=1)
        return p @ torch.arange(p.shape[1], dtype=p.dtype, device=p.device)


class MCRFNet(nn.Module):
    """Modality fusion, stem, three ResNeXt/SK/SE stages, six-class and Soldati heads."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256), blocks: tuple[int, ...] = (1, 2, 1),
                 fusion_channels: int = 16, cardinality: int = 8) -> None:
        super().__init__()
        self.fusion = ModalityFusion(3, fusion_channels)
        self.stem = nn.Sequential(nn.Conv2d(fusion_channels, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                  nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        cin = 32
        for width, n in zip(widths, blocks, strict=True):
            for i in range(n):
                layers.append(MCRFBlock(cin, width, 2 if i == 0 else 1, cardinality))
                cin = width
        self.trunk = nn.Sequential(*layers)
        self.six_head = nn.Linear(cin, len(SIX_CLASS_NAMES))
        self.score_head = nn.Linear(cin, len(SCORE_CLASSES))
        self.feature_dim = cin

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled trunk feature ``[B, feature_dim]`` of modality stacks ``[B, 3, H, W]``."""
        return self.trunk(self.stem(self.fusion(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> MCRFOutput:
        f = self.features(x)
        return MCRFOutput(self.six_head(f), self.score_head(f))


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
