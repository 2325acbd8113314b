"""Out-of-domain check: PCA residual distance with a leave-one-patient-out threshold."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from scoring.core.inference.domain import DomainCheck, fit_domain_check


def _cloud(rng: np.random.Generator, n: int, basis: np.ndarray, noise: float = 0.1) -> np.ndarray:
    """Points near the span of ``basis`` ([k, D]) with isotropic noise."""
    return rng.normal(size=(n, basis.shape[0])) @ basis * 3.0 + rng.normal(scale=noise, size=(n, basis.shape[1]))


def _train(seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(40, 4)))[0].T  # 4 orthonormal directions in 40 dims
    x = _cloud(rng, 120, basis)
    groups = [f"p{i // 6}" for i in range(120)]  # 20 patients x 6 clips
    return x, groups, basis


def test_same_population_passes_and_other_structure_is_flagged() -> None:
    x, groups, basis = _train()
    check = fit_domain_check(x, groups, k=4, quantile=0.99)
    rng = np.random.default_rng(1)
    new = _cloud(rng, 400, basis)
    flagged = 1.0 - (check.distance(new) <= check.threshold).mean()
    assert flagged < 0.06  # ~1 % expected; a loose bound for 120 training clips
    # Same scale, but energy off the training subspace: what another scanner does to the descriptor.
    other = _cloud(rng, 50, np.linalg.qr(rng.normal(size=(40, 4)))[0].T)
    assert (check.distance(other) <= check.threshold).mean() == 0.0
    assert float(np.median(check.distance(new))) == pytest.approx(1.0, abs=0.25)  # 1 = typical


def test_threshold_is_the_held_out_quantile_not_the_in_sample_one() -> None:
    x, groups, _ = _train()
    check = fit_domain_check(x, groups, k=4, quantile=0.9)
    # Held-out patients sit further from a model fitted without them than training clips do.
    assert check.threshold > float(np.quantile(check.distance(x), 0.9))
    # By hand for one patient: refit without p0, its clips' distances are part of that quantile.
    out = np.array([g == "p0" for g in groups])
    alone = fit_domain_check(x[~out], [g for g, o in zip(groups, out, strict=True) if not o], k=4, quantile=0.9)
    assert alone.distance(x[out]).shape == (6,)
    assert check.n_training == 120 and check.components.shape == (4, 40)
    assert np.allclose(check.components @ check.components.T, np.eye(4), atol=1e-8)


def test_state_round_trip_and_constant_columns() -> None:
    x, groups, _ = _train()
    x[:, 5] = 7.0  # a channel that never changes must not divide by zero
    check = fit_domain_check(x, groups, k=4)
    st = check.to_state()
    assert all(isinstance(st[k], torch.Tensor) for k in ("mu", "sd", "components"))
    back = DomainCheck.from_state(st)
    probe = np.random.default_rng(3).normal(size=(5, 40))
    assert np.allclose(back.distance(probe), check.distance(probe), rtol=1e-4)
    assert back.threshold == check.threshold and np.isfinite(check.distance(probe)).all()
    with pytest.raises(ValueError, match="residual_mean must be a number"):
        DomainCheck.from_state({**st, "residual_mean": "x"})


def test_bad_input_is_refused_with_the_reason() -> None:
    x, groups, _ = _train()
    with pytest.raises(ValueError, match="3 patients"):
        fit_domain_check(x[:12], groups[:12], k=4)
    with pytest.raises(ValueError, match="one group per row"):
        fit_domain_check(x, groups[:-1], k=4)
    with pytest.raises(ValueError, match="quantile"):
        fit_domain_check(x, groups, k=4, quantile=1.0)
