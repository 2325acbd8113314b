"""The featurizer's input channels: grey copied to three channels, or an experiment's own channels
on the read frames of the hires view (``docs/directions.md``, masks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from scoring.core.features.featurizer import Featurizer
from scoring.core.features.recipe import Recipe
from scoring.core.models.lite0 import LITE_MEAN, LITE_STD


@pytest.fixture(scope="module")
def fz() -> Featurizer:
    return Featurizer(Recipe(hand=False))


def _clip(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((6, 64, 64), dtype=np.float32)


def test_three_channel_input_is_normalised_channel_by_channel(fz: Featurizer) -> None:
    x = _clip()[:2]
    grey = fz.to_input(x)
    stacked = fz.to_input(np.repeat(x[:, None], 3, axis=1))
    assert grey.shape == stacked.shape == (2, 3, 64, 64)
    assert torch.equal(grey, stacked)  # the scorer's grey input is unchanged, bit for bit
    mixed = np.stack([x, np.zeros_like(x), np.ones_like(x)], axis=1)
    t = fz.to_input(mixed)
    assert torch.allclose(t[:, 1], torch.full((2, 64, 64), -LITE_MEAN / LITE_STD))
    assert torch.allclose(t[:, 2], torch.full((2, 64, 64), (1 - LITE_MEAN) / LITE_STD))
    assert t.is_contiguous(memory_format=torch.channels_last)


def test_channels_reach_the_read_frames_only(fz: Featurizer) -> None:
    x = _clip()
    plain = fz.hires([x])[0]
    copies = fz.hires([x], channels=[np.repeat(x[:, None], 2, axis=1)])[0]
    np.testing.assert_array_equal(plain, copies)  # grey in every channel: the same descriptor
    masks = np.zeros((6, 2, 64, 64), np.float32)
    masks[:, :, 20:24] = 1.0
    other = fz.hires([x], channels=[masks])[0]
    assert other.shape == plain.shape and not np.allclose(other, plain)
    # The three summary images stay grey: their part of the descriptor does not move.
    k = fz.recipe.hires_frames
    assert k == 4
    per_tap = [2 * c for c in (40, 80, 112)]  # taps 4, 7, 10: mean and max pooled channels
    pos = 0
    for width in per_tap:
        frames_part = slice(pos, pos + 2 * width)  # mean and std over the read frames
        summary_part = slice(pos + 2 * width, pos + 5 * width)
        assert not np.allclose(other[frames_part], plain[frames_part])
        np.testing.assert_allclose(other[summary_part], plain[summary_part], rtol=1e-5, atol=1e-6)
        pos += 5 * width
    assert pos == len(plain)
