from __future__ import annotations

import numpy as np
import pytest
import torch

from scoring.core.inference.gradcam import _normalise, gradcam_pp_weights


def test_gradcam_pp_weights_hand_computed() -> None:
    acts = torch.full((1, 1, 2, 2), 2.0)  # sum over space = 8
    grads = torch.full((1, 1, 2, 2), 0.5)
    # alpha = g^2 / (2 g^2 + sum(A) g^3) = 0.25 / (0.5 + 8 * 0.125) = 1/6; w = 4 * (1/6 * 0.5) = 1/3
    assert float(gradcam_pp_weights(acts, grads)[0, 0]) == pytest.approx(1 / 3)
    # negative gradients contribute nothing; zero gradients give 0 (no division by zero)
    assert float(gradcam_pp_weights(acts, -grads)[0, 0]) == 0.0
    assert float(gradcam_pp_weights(acts, torch.zeros_like(grads))[0, 0]) == 0.0


def test_normalise_is_finite_and_bounded() -> None:
    m = _normalise(np.array([[np.nan, -1.0], [2.0, np.inf]]))
    assert np.isfinite(m).all() and m.max() == 1.0 and m.min() == 0.0
    assert _normalise(np.zeros((3, 3))).max() == 0.0
