"""Frame -> clip aggregation of per-frame class probabilities.

Aggregators (``probs``: float [T, C], rows sum to 1) return ``(clip_probs [C], clip_score)``:

* ``argmax_mean`` - mean of the frame probabilities, then argmax;
* ``max_argmax`` - the highest per-frame argmax (the worst frame decides); clip_probs is the
  histogram of the per-frame argmax votes (so clip_score need not be its argmax);
* ``mode`` - the modal per-frame argmax (ties -> the lower score); clip_probs is the vote
  histogram;
* ``uninorm`` - the learned min-uninorm of Roy et al. 2020 (:class:`UninormAggregator`).

Uninorm: for each class c a neutral element e_c in (0, 1); with the product t-norm
T(x, y) = x*y and its dual t-conorm S(x, y) = x + y - x*y,

    U(x, y) = e * T(x/e, y/e)                              if x, y <= e
              e + (1-e) * S((x-e)/(1-e), (y-e)/(1-e))      if x, y >= e
              min(x, y)                                    otherwise (min-uninorm)

folded left over the frames: u = U(...U(U(p_0, p_1), p_2)..., p_{T-1}). Values above e
reinforce each other (OR-like), values below e attenuate (AND-like). The clip probabilities
are ``softmax(tau * u)``; ``tau`` (a learned temperature, > 0) is needed because u lies in
[0, 1] and a plain softmax of it would be nearly flat. Only e_c and tau are trained, on clip
labels, with the frame model frozen.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

AGGREGATORS: tuple[str, ...] = ("argmax_mean", "max_argmax", "mode", "uninorm")


def argmax_mean(probs: np.ndarray) -> tuple[np.ndarray, int]:
    """Argmax of the mean probability."""
    p = np.asarray(probs, dtype=np.float64)
    m = p.mean(0)
    return m, int(np.argmax(m))


def _votes(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return np.bincount(p.argmax(1), minlength=p.shape[1]) / p.shape[0]


def max_argmax(probs: np.ndarray) -> tuple[np.ndarray, int]:
    """Max over frames of the per-frame argmax."""
    p = np.asarray(probs)
    return _votes(p), int(p.argmax(1).max())


def mode(probs: np.ndarray) -> tuple[np.ndarray, int]:
    """Modal per-frame argmax (np.argmax takes the lowest class on ties)."""
    v = _votes(probs)
    return v, int(np.argmax(v))


def uninorm_pair(x: torch.Tensor, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Min-uninorm U_e(x, y) built from the product t-norm and probabilistic-sum t-conorm."""
    both_low = (x <= e) & (y <= e)
    both_high = (x >= e) & (y >= e)
    t = x * y / e
    one_m_e = 1.0 - e
    xs = (x - e) / one_m_e
    ys = (y - e) / one_m_e
    s = e + one_m_e * (xs + ys - xs * ys)
    return torch.where(both_low, t, torch.where(both_high, s, torch.minimum(x, y)))


def uninorm_fold(probs: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Fold U over the frame axis: probs [..., T, C], e [C] -> [..., C]."""
    acc = probs[..., 0, :]
    for i in range(1, probs.shape[-2]):
        acc = uninorm_pair(acc, probs[..., i, :], e)
    return acc


class UninormAggregator(nn.Module):
    """Learned per-class neutral elements e_c = sigmoid(a_c) (clamped to [0.01, 0.99])."""

    def __init__(self, n_classes: int = 4, e_init: float = 0.5, tau_init: float = 10.0) -> None:
        super().__init__()
        a = float(np.log(e_init / (1 - e_init)))
        self.a = nn.Parameter(torch.full((n_classes,), a))
        self.log_tau = nn.Parameter(torch.tensor(float(np.log(tau_init))))

    @property
    def e(self) -> torch.Tensor:
        """Neutral elements in [0.01, 0.99]."""
        return 0.01 + 0.98 * torch.sigmoid(self.a)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """probs [T, C] or [B, T, C] -> clip logits tau*u ([C] or [B, C])."""
        return self.log_tau.exp() * uninorm_fold(probs, self.e)

    def aggregate(self, probs: np.ndarray) -> tuple[np.ndarray, int]:
        """numpy convenience: (clip_probs, clip_score)."""
        with torch.no_grad():
            z = self.forward(torch.as_tensor(np.asarray(probs), dtype=torch.float32))
            p = torch.softmax(z, -1).numpy().astype(np.float64)
        return p, int(np.argmax(p))

    def fit(self, clips: list[np.ndarray], labels: list[int], steps: int = 300, lr: float = 0.05,
            seed: int = 0) -> UninormAggregator:
        """Fit e_c and tau by cross-entropy on clip labels (frame probabilities frozen)."""
        torch.manual_seed(seed)
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        # Pad every clip to the longest one with the neutral element (U(x, e) = x), so all
        # clips fold in one batched pass.
        tmax = max(len(c) for c in clips)
        xs = torch.zeros((len(clips), tmax, self.a.shape[0]))
        pad = torch.ones((len(clips), tmax), dtype=torch.bool)
        for i, c in enumerate(clips):
            xs[i, : len(c)] = torch.as_tensor(np.asarray(c), dtype=torch.float32)
            pad[i, : len(c)] = False
        y = torch.as_tensor(labels, dtype=torch.long)
        # Balanced weights: the data set is skewed towards low scores.
        w = torch.bincount(y, minlength=self.a.shape[0]).float().clamp_min(1)
        w = (1.0 / w) / (1.0 / w).mean()
        for _ in range(steps):
            opt.zero_grad()
            x = torch.where(pad[..., None], self.e.expand_as(xs), xs)
            z = self.forward(x)
            loss = nn.functional.cross_entropy(z, y, weight=w)
            loss.backward()
            opt.step()
        return self


def get_aggregator(name: str, uninorm: UninormAggregator | None = None) -> Callable[[np.ndarray], tuple[np.ndarray, int]]:
    """Aggregator function by name (``uninorm`` needs a fitted module)."""
    if name == "argmax_mean":
        return argmax_mean
    if name == "max_argmax":
        return max_argmax
    if name == "mode":
        return mode
    if name == "uninorm":
        if uninorm is None:
            raise ValueError("uninorm aggregator needs fitted parameters")
        return uninorm.aggregate
    raise ValueError(f"unknown aggregator {name!r}; choose from {AGGREGATORS}")
