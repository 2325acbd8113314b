"""Soft ORDinal (SORD) targets, Diaz & Marathe 2019, as used for LUS by Roy et al. 2020.

For a true class ``t`` the target distribution over the classes ``i`` is

    q_i = softmax_i( -alpha * phi(t, i) ),   phi(t, i) = (pos[t] - pos[i]) ** 2

with the squared distance. Roy et al. found it best to push score 0 (healthy) further away
from the pathological scores; we do it by **placing class 0 at position -1** instead of 0,
i.e. ``pos = (-1, 1, 2, 3)`` (``zero_position=-1``): the 0-1 distance becomes 2 (squared 4)
while the 1-2 and 2-3 distances stay 1. Hand-computed, for t=0 and alpha=1:
``softmax(-[0, 4, 9, 16]) = [0.98189, 0.01798, 0.00012, 0.0000001]``; for t=1:
``softmax(-[4, 0, 1, 4]) = [0.01304, 0.71199, 0.26193, 0.01304]`` (pinned by the tests).
"""
from __future__ import annotations

import numpy as np
import torch


def class_positions(n_classes: int = 4, zero_position: float = -1.0) -> np.ndarray:
    """Positions of the classes on the ordinal axis (class 0 moved to ``zero_position``)."""
    pos = np.arange(n_classes, dtype=np.float64)
    pos[0] = zero_position
    return pos


def sord_targets(
    labels: np.ndarray | list[int], n_classes: int = 4, alpha: float = 1.0, zero_position: float = -1.0
) -> np.ndarray:
    """Soft targets [N, n_classes] (float64, rows sum to 1) for integer labels."""
    y = np.asarray(labels, dtype=int).reshape(-1)
    pos = class_positions(n_classes, zero_position)
    phi = (pos[y][:, None] - pos[None, :]) ** 2
    z = -alpha * phi
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def sord_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 1.0,
              zero_position: float = -1.0, weight: torch.Tensor | None = None) -> torch.Tensor:
    """THE SORD loss: cross-entropy between ``softmax(logits)`` and the SORD targets of ``labels``
    (mean over rows, or weighted mean with ``weight``)."""
    q = torch.as_tensor(
        sord_targets(labels.detach().cpu().numpy(), logits.shape[1], alpha, zero_position),
        dtype=logits.dtype, device=logits.device,
    )
    return soft_cross_entropy(logits, q, weight)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """Cross-entropy between ``softmax(logits)`` and target distributions [N, C] (SORD targets,
    a teacher's probabilities); mean over rows, or weighted mean with ``weight`` [N]."""
    ce = -(targets * torch.log_softmax(logits, 1)).sum(1)
    if weight is not None:
        return (ce * weight).sum() / weight.sum().clamp_min(1e-12)
    return ce.mean()
