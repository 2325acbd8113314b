"""Pixel-level modes: augmentation and a one-step backbone adaptation (seconds)."""
from __future__ import annotations

import numpy as np
import torch

from scoring.core.features.featurizer import Featurizer
from scoring.core.features.recipe import Recipe
from scoring.core.training.finetune import augment, partial_state, state_tag, train_backbone


def test_augment_shape_range_and_determinism() -> None:
    x = torch.rand(5, 1, 48, 48)
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a, x)


def test_train_backbone_and_apply_state() -> None:
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (4, 48, 48), dtype=np.uint8) for _ in range(4)]
    y = np.array([0, 1, 2, 3])
    recipe = Recipe(size=48, taps=(2, 4), hand=False, summary_images=False)
    state = train_backbone(clips, y, recipe, seed=0, epochs=1, per_clip=2, clips_per_batch=4, unfreeze_from=3,
                           log=False)
    assert state and all(k.startswith("_blocks.") and int(k.split(".")[1]) >= 3 for k in state)
    assert len(state_tag(state)) == 16
    plain = Featurizer(recipe)
    adapted = Featurizer(recipe, backbone_state=state)
    x = rng.random((2, 48, 48)).astype(np.float32)
    assert plain.cnn(x).shape == adapted.cnn(x).shape
    assert not np.allclose(plain.cnn(x), adapted.cnn(x))
    full = partial_state(torch.nn.Linear(2, 2), 0)
    assert set(full) == {"weight", "bias"}
