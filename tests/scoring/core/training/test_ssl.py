"""Self-supervised pretraining (issue 19, direction "ssl"): the loss against hand-computed values,
the pairs, and what a pretraining changes."""
from __future__ import annotations

import math

import numpy as np
import torch

from scoring.core.features.recipe import Recipe
from scoring.core.models.lite0 import load_lite0
from scoring.core.training.ssl import info_nce, nearby_pairs, pretrain_backbone


def test_info_nce_against_hand_computed_values() -> None:
    eye = torch.eye(2)
    # Matched pairs, cosine 1 with the positive and 0 with the negative, temperature 0.1:
    # each row's cross-entropy is log(1 + e^-10).
    assert math.isclose(float(info_nce(eye, eye, 0.1)), math.log1p(math.exp(-10)), rel_tol=0.05)  # float32 near 0
    # Swapped pairs: the positive has cosine 0, the negative 1: log(1 + e^10).
    swapped = eye.flip(0)
    assert math.isclose(float(info_nce(eye, swapped, 0.1)), math.log1p(math.exp(10)), rel_tol=1e-6)
    # Cosine similarity: the scale of an embedding does not matter; the loss is symmetric.
    z1, z2 = torch.randn(5, 8, generator=torch.Generator().manual_seed(0)), torch.randn(5, 8)
    assert torch.isclose(info_nce(3 * z1, z2), info_nce(z1, z2))
    assert torch.isclose(info_nce(z1, z2), info_nce(z2, z1))


def test_nearby_pairs_stay_within_the_gap_and_differ() -> None:
    clips = [np.zeros((n, 4, 4), np.uint8) for n in (1, 2, 10, 120)]
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = nearby_pairs(clips, [0, 1, 2, 3], rng, max_gap=4)
        assert a[0] == b[0] == 0  # one frame: the pair is the frame with itself
        for i, n in enumerate((1, 2, 10, 120)):
            assert 0 <= a[i] < n and 0 <= b[i] < n and abs(int(a[i]) - int(b[i])) <= 4
            if n > 1:
                assert a[i] != b[i]


def test_pretraining_moves_only_the_deeper_blocks() -> None:
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (6, 64, 64), dtype=np.uint8) for _ in range(4)]
    recipe = Recipe(hand=False)
    state = pretrain_backbone(clips, recipe, seed=0, steps=2, clips_per_batch=3, lr=1e-2, log=False)
    blocks = {int(k.split(".")[1]) for k in state}
    assert blocks == set(range(5, max(recipe.hires_taps) + 1))  # blocks 5-10, nothing shallower
    imagenet = load_lite0(n_blocks=max(recipe.hires_taps) + 1).state_dict()
    moved = [k for k, v in state.items() if v.dtype.is_floating_point and not torch.equal(v, imagenet[k])]
    assert moved and all("running_" not in k for k in moved)  # weights learn, BatchNorm statistics stay
