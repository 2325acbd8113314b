"""Self-supervised pretraining of Lite0's deeper blocks on unlabelled clips (issue 19, direction
"ssl"; the recipe is fixed in ``docs/directions.md``).

Two frames of one clip at most ``max_gap`` frames apart show the same lung a breath apart: the
same artefacts, a little moved. They are a positive pair; the other clips of the batch are the
negatives (InfoNCE, as SimCLR, with the clip instead of a second augmentation as the source of the
second view). Each frame is augmented as ``lus_train --mode finetune`` augments
(:func:`scoring.core.training.finetune.augment`). Only blocks ``>= unfreeze_from`` learn; BatchNorm
statistics stay frozen (small, clip-correlated CPU batches), as in fine-tuning. The result is a
partial backbone state, applied over the ImageNet checkpoint like fine-tuning's.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scoring.core.features.preprocess import normalise_intensity
from scoring.core.features.recipe import Recipe
from scoring.core.models.lite0 import LITE_MEAN, LITE_STD
from scoring.core.training.finetune import augment, partial_state, trainable_lite0


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE of paired embeddings [N, D]: row i of ``z1`` and of ``z2`` are a positive
    pair, every other row of the other view a negative; cosine similarity over ``temperature``."""
    a = F.normalize(z1, dim=1)
    b = F.normalize(z2, dim=1)
    logits = a @ b.T / temperature
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def nearby_pairs(clips: Sequence[np.ndarray], idx: Sequence[int], rng: np.random.Generator, max_gap: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For each clip of ``idx`` two frame indices at most ``max_gap`` apart (distinct when the clip
    has two frames): int [N] and int [N]."""
    first, second = [], []
    for i in idx:
        n = len(clips[i])
        a = int(rng.integers(0, n))
        lo, hi = max(0, a - max_gap), min(n - 1, a + max_gap)
        choices = [j for j in range(lo, hi + 1) if j != a] or [a]
        first.append(a)
        second.append(int(rng.choice(choices)))
    return np.asarray(first), np.asarray(second)


class Projection(nn.Module):
    """The projection head of the contrastive loss (thrown away after pretraining)."""

    def __init__(self, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


def pretrain_backbone(clips: Sequence[np.ndarray], recipe: Recipe, seed: int, *, steps: int = 300,
                      clips_per_batch: int = 12, max_gap: int = 4, unfreeze_from: int = 5, lr: float = 1e-4,
                      temperature: float = 0.1, log: bool = True) -> dict[str, torch.Tensor]:
    """Pretrain the blocks ``>= unfreeze_from`` of the truncated Lite0 that ``recipe``'s hires view
    reads, on ``clips`` (uint8 [T, S, S] canvases, unlabelled); return their partial state."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    taps = recipe.hires_taps if recipe.hires_size else recipe.taps
    model = trainable_lite0(max(taps) + 1, unfreeze_from)
    dim = 2 * sum(model.block_channels[t] for t in taps)  # global mean and max per tap
    head = Projection(dim)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad] + list(head.parameters()), lr=lr)
    norm = [normalise_intensity(c.astype(np.float32) / 255.0, recipe.intensity) for c in clips]
    t0 = time.time()
    for step in range(steps):
        idx = [int(i) for i in rng.choice(len(norm), size=min(clips_per_batch, len(norm)), replace=False)]
        a, b = nearby_pairs(norm, idx, rng, max_gap)
        views = []
        for frames in (a, b):
            x = torch.from_numpy(np.stack([norm[i][f] for i, f in zip(idx, frames, strict=True)]))[:, None]
            inp = ((augment(x, gen) - LITE_MEAN) / LITE_STD).expand(-1, 3, -1, -1)
            maps = model.forward_features(inp, taps)
            views.append(head(torch.cat([torch.cat([m.mean((2, 3)), m.amax((2, 3))], 1) for m in maps], 1)))
        loss = info_nce(views[0], views[1], temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log and (step + 1) % 25 == 0:
            print(f"ssl step {step + 1}/{steps} loss {float(loss.detach()):.3f} ({time.time() - t0:.0f}s)",
                  file=sys.stderr, flush=True)
    return partial_state(model, unfreeze_from)
