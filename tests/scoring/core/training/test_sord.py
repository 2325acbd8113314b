from __future__ import annotations

import numpy as np
import pytest
import torch

from scoring.core.training.sord import class_positions, sord_loss, sord_targets


def test_positions_push_zero_away() -> None:
    assert class_positions().tolist() == [-1.0, 1.0, 2.0, 3.0]


def test_sord_targets_hand_computed() -> None:
    q = sord_targets([0, 1, 2, 3])
    # t=0: softmax(-[0, 4, 9, 16]); t=1: softmax(-[4, 0, 1, 4]);
    # t=2: softmax(-[9, 1, 0, 1]);  t=3: softmax(-[16, 4, 1, 0])
    e = np.exp
    z0 = 1 + e(-4) + e(-9) + e(-16)
    assert q[0] == pytest.approx([1 / z0, e(-4) / z0, e(-9) / z0, e(-16) / z0], rel=1e-12)
    assert q[0] == pytest.approx([0.98189, 0.01798, 0.00012, 0.0000001], abs=1e-5)
    z1 = 2 * e(-4) + 1 + e(-1)
    assert q[1] == pytest.approx([e(-4) / z1, 1 / z1, e(-1) / z1, e(-4) / z1], rel=1e-12)
    assert q[1] == pytest.approx([0.01304, 0.71199, 0.26193, 0.01304], abs=1e-5)
    z2 = e(-9) + 2 * e(-1) + 1
    assert q[2] == pytest.approx([e(-9) / z2, e(-1) / z2, 1 / z2, e(-1) / z2], rel=1e-12)
    z3 = e(-16) + e(-4) + e(-1) + 1
    assert q[3] == pytest.approx([e(-16) / z3, e(-4) / z3, e(-1) / z3, 1 / z3], rel=1e-12)
    assert np.allclose(q.sum(1), 1.0)


def test_sord_alpha_and_plain_positions() -> None:
    q = sord_targets([1], alpha=0.5, zero_position=0.0)[0]
    z = np.exp(-0.5 * np.array([1.0, 0.0, 1.0, 4.0]))
    assert q == pytest.approx(z / z.sum(), rel=1e-12)


def test_sord_loss_matches_manual_cross_entropy() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0, -2.0], [0.0, 0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    q = torch.tensor(sord_targets([0, 2]), dtype=torch.float32)
    manual = -(q * torch.log_softmax(logits, 1)).sum(1).mean()
    assert float(sord_loss(logits, labels)) == pytest.approx(float(manual), rel=1e-6)
    # Uniform logits: the loss is log(4) whatever the target.
    assert float(sord_loss(logits[1:], labels[1:])) == pytest.approx(np.log(4), rel=1e-6)
