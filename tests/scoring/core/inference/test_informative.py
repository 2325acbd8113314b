"""The label-more order's maths: the clip descriptor, the standardised nearest distance to the
labelled clips, and the rank average of uncertainty and novelty."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scoring.core.inference.informative import READOUT, clip_descriptor, nearest_distances, rank_average

ROOT = Path(__file__).resolve().parents[4]


def test_readout_width_is_the_severity_features_head() -> None:
    from scoring.core.severity.features import HEAD_FINDINGS, HEAD_PROBS

    assert HEAD_PROBS.start == 0 and READOUT == HEAD_FINDINGS.stop == 10


def test_informative_maths_loads_no_torch() -> None:
    """The web process ranks the worklist: the module must not pull torch in (why READOUT is a copy)."""
    code = "import sys, scoring.core.inference.informative; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_descriptor_drops_the_readout_and_averages_the_sets() -> None:
    head = np.arange(READOUT, dtype=float)
    sets = np.stack([np.concatenate([head, [0.5, 4.0]]), np.concatenate([head + 9, [1.5, 2.0]])])
    assert clip_descriptor(sets).tolist() == [1.0, 3.0]
    assert clip_descriptor(np.concatenate([head, [7.0]])).tolist() == [7.0]  # one vector
    assert clip_descriptor(None) is None and clip_descriptor(np.zeros((2, READOUT))) is None  # no pooled part
    assert clip_descriptor(np.full((1, READOUT + 1), np.nan)) is None


def test_nearest_distance_by_hand() -> None:
    # Feature 0 over all four rows: 0, 4, 0, 0 -> mean 1, SD sqrt(3); feature 1: 0, 0, 2, -2 -> mean 0, SD sqrt(2);
    # feature 2 is constant and left out (2 features kept).
    cand = np.array([[0.0, 0.0, 5.0], [4.0, 0.0, 5.0]])
    lab = np.array([[0.0, 2.0, 5.0], [0.0, -2.0, 5.0]])
    d = nearest_distances(cand, lab)
    # c1 differs from both labelled rows by sqrt(2) SDs in feature 1 only: sqrt(2) / sqrt(2 features).
    # c2: (4 / sqrt 3)^2 + (2 / sqrt 2)^2 = 16/3 + 2 = 22/3 -> sqrt(22/3 / 2).
    assert d.tolist() == pytest.approx([1.0, math.sqrt(11 / 3)])
    assert nearest_distances(np.ones((2, 3)), np.ones((1, 3))).tolist() == [0.0, 0.0]  # nothing varies
    for bad in (np.zeros((0, 3)), np.zeros((1, 2))):
        with pytest.raises(ValueError):
            nearest_distances(cand, bad)


def test_rank_average_by_hand() -> None:
    """Uncertainty ranks 1/3, 2/3, 1 and novelty ranks 1, 1/3, 2/3: means 2/3, 1/2, 5/6."""
    parts = rank_average([0.1, 0.5, 0.9], [9.0, 1.0, 2.0])
    assert [p.uncertainty_rank for p in parts] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert [p.novelty_rank for p in parts] == pytest.approx([1.0, 1 / 3, 2 / 3])
    assert [p.value for p in parts] == pytest.approx([2 / 3, 1 / 2, 5 / 6])
    assert (parts[0].uncertainty, parts[0].novelty) == (0.1, 9.0)


def test_unknown_novelty_ranks_below_every_known_one() -> None:
    parts = rank_average([0.2, 0.4, 0.6, 0.8], [None, 3.0, None, 1.0])
    assert [p.novelty_rank for p in parts] == [0.0, 1.0, 0.0, 0.75]  # known: (4 - 2 + rank) / 4
    assert [p.value for p in parts] == pytest.approx([0.125, 0.75, 0.375, 0.875])
    assert rank_average([], []) == []
    with pytest.raises(ValueError):
        rank_average([0.1], [])
