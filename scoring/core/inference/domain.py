"""Is a clip like the clips the model was trained on? (out-of-domain check)

The clip heads read a descriptor of the clip (the 224-px view's pooled feature maps). A clip
from another scanner, preset or probe, or a synthetic phantom, lands away from the training
clips in that space, and the cross-validated figures of the model say nothing about it - the
model's own probabilities do not show it (measured: phantoms get 56-68 % for a wrong score).

The check is a principal-component model of the standardised training descriptors: the
distance of a clip is its squared reconstruction residual outside the top ``k`` components,
relative to the mean training residual. The threshold is a high quantile of *leave-one-patient-
out* distances (each patient scored against a model fitted without them), so a new patient
from the training population exceeds it at about the stated rate, not less as in-sample
distances would suggest.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_COMPONENTS = 10
DEFAULT_QUANTILE = 0.99


@dataclass
class DomainCheck:
    """Residual distance of a descriptor to the training cloud, and the threshold it is judged by."""

    mu: np.ndarray  # [D]
    sd: np.ndarray  # [D]
    components: np.ndarray  # [k, D], orthonormal rows
    residual_mean: float  # mean training residual (the distance unit)
    threshold: float  # leave-one-patient-out quantile of training distances
    quantile: float
    n_training: int

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Distance of each row of ``x`` ([N, D] or [D]); 1.0 is a typical training clip."""
        z = (np.atleast_2d(np.asarray(x, np.float64)) - self.mu) / self.sd
        proj = z @ self.components.T
        residual = np.sum((z - proj @ self.components) ** 2, axis=1)
        return np.asarray(residual / self.residual_mean)

    def to_state(self) -> dict[str, object]:
        """Tensors and numbers (loads with ``torch.load(weights_only=True)``)."""
        return {
            "mu": torch.from_numpy(self.mu.astype(np.float32)),
            "sd": torch.from_numpy(self.sd.astype(np.float32)),
            "components": torch.from_numpy(self.components.astype(np.float32)),
            "residual_mean": float(self.residual_mean), "threshold": float(self.threshold),
            "quantile": float(self.quantile), "n_training": int(self.n_training),
        }

    @classmethod
    def from_state(cls, st: dict[str, object]) -> DomainCheck:
        """Inverse of :meth:`to_state`."""
        def arr(key: str) -> np.ndarray:
            value = st[key]
            assert isinstance(value, torch.Tensor), key
            return value.numpy().astype(np.float64)

        def num(key: str) -> float:
            value = st[key]
            if not isinstance(value, int | float):
                raise ValueError(f"domain check: {key} must be a number, got {type(value).__name__}")
            return float(value)

        return cls(arr("mu"), arr("sd"), arr("components"), num("residual_mean"), num("threshold"),
                   num("quantile"), int(num("n_training")))


def _fit_model(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mu = x.mean(0)
    # Constant columns (e.g. a channel that never fires) would divide by zero.
    sd = x.std(0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    z = (x - mu) / sd
    _u, _s, vt = np.linalg.svd(z, full_matrices=False)
    comp = vt[:k]
    residual = np.sum((z - (z @ comp.T) @ comp) ** 2, axis=1)
    return mu, sd, comp, float(residual.mean())


def fit_domain_check(x: np.ndarray, groups: Sequence[str], *, k: int = DEFAULT_COMPONENTS,
                     quantile: float = DEFAULT_QUANTILE) -> DomainCheck:
    """Fit on the training descriptors ``x`` [N, D] of patients ``groups``.

    Raises ValueError when there are too few clips or patients to leave one out (k + 2 clips
    and 3 patients at least), or when ``quantile`` is not in (0, 1).
    """
    x = np.asarray(x, np.float64)
    g = np.asarray(groups)
    if x.ndim != 2 or len(x) != len(g):
        raise ValueError(f"x must be [N, D] with one group per row; got {x.shape} and {len(g)} groups")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    patients = np.unique(g)
    if len(patients) < 3 or len(x) < k + 2:
        raise ValueError(f"a domain check needs >= 3 patients and >= {k + 2} clips; got {len(patients)} and {len(x)}")
    held_out = np.zeros(len(x))
    for p in patients:
        out = g == p
        mu, sd, comp, res_mean = _fit_model(x[~out], k)
        check = DomainCheck(mu, sd, comp, res_mean, np.inf, quantile, int((~out).sum()))
        held_out[out] = check.distance(x[out])
    mu, sd, comp, res_mean = _fit_model(x, k)
    return DomainCheck(mu, sd, comp, res_mean, float(np.quantile(held_out, quantile)), quantile, len(x))
