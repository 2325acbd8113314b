from __future__ import annotations

import numpy as np
import pytest

from scoring.core.inference.vote import VOTE_CONF, vote_batch, vote_rule


def _one(*members: list[float]) -> tuple[np.ndarray, int, str]:
    probs, classes, rules = vote_batch([np.array([m]) for m in members])
    return probs[0], int(classes[0]), rules[0]


def test_two_one_majority_wins_with_the_agreeing_members_mean() -> None:
    p, c, rule = _one([0.6, 0.2, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.5, 0.3, 0.1, 0.1])
    assert (c, rule) == (0, "majority")
    assert p == pytest.approx([0.55, 0.25, 0.1, 0.1])


def test_three_zero_is_unanimous() -> None:
    p, c, rule = _one([0.1, 0.1, 0.7, 0.1], [0.0, 0.2, 0.5, 0.3], [0.1, 0.3, 0.4, 0.2])
    assert (c, rule) == (2, "majority")
    assert p == pytest.approx([0.2 / 3, 0.2, 1.6 / 3, 0.2])


def test_all_different_confident_member_wins_at_085() -> None:
    p, c, rule = _one([0.85, 0.05, 0.05, 0.05], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7])
    assert (c, rule) == (0, "confident")
    assert p == pytest.approx([0.85, 0.05, 0.05, 0.05])


def test_threshold_is_inclusive_at_08() -> None:
    assert VOTE_CONF == 0.8
    _, c, rule = _one([0.1, 0.1, 0.8, 0.0], [0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.1, 0.2])
    assert (c, rule) == (2, "confident")


def test_all_different_below_08_takes_the_median_class() -> None:
    # classes 0 (0.7), 1 (0.5), 3 (0.6): median 1. Neither the most confident member (0) nor the
    # argmax of the mean probabilities ([0.333, 0.233, 0.167, 0.267] -> 0).
    members = [[0.7, 0.1, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1], [0.1, 0.1, 0.2, 0.6]]
    p, c, rule = _one(*members)
    assert (c, rule) == (1, "median")
    assert p == pytest.approx([0.2, 0.5, 0.2, 0.1])
    assert int(np.argmax(np.mean(members, 0))) == 0


def test_tie_in_confidence_goes_to_the_first_listed_member() -> None:
    a, b, c3 = [0.05, 0.85, 0.05, 0.05], [0.85, 0.05, 0.05, 0.05], [0.1, 0.1, 0.1, 0.7]
    assert _one(a, b, c3)[1:] == (1, "confident")
    assert _one(b, a, c3)[1:] == (0, "confident")
    # tied below the threshold: the median of 0, 2, 3 whatever the order
    lo1, lo2, lo3 = [0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.2, 0.6]
    assert _one(lo1, lo2, lo3)[1:] == (2, "median")
    assert _one(lo3, lo2, lo1)[1:] == (2, "median")


def test_batch_rows_are_voted_independently() -> None:
    m1 = np.array([[0.6, 0.2, 0.1, 0.1], [0.85, 0.05, 0.05, 0.05]])
    m2 = np.array([[0.1, 0.5, 0.3, 0.1], [0.1, 0.6, 0.2, 0.1]])
    m3 = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    probs, classes, rules = vote_batch([m1, m2, m3])
    assert classes.tolist() == [0, 0] and rules == ["majority", "confident"]
    assert probs.shape == (2, 4) and np.allclose(probs.sum(1), 1)
    assert vote_rule([m1[1], m2[1], m3[1]], conf=0.9) == "median"


def test_needs_three_members_of_one_shape() -> None:
    with pytest.raises(ValueError, match="exactly three"):
        vote_batch([np.eye(4)[:1], np.eye(4)[:1]])
    with pytest.raises(ValueError, match="shape"):
        vote_batch([np.eye(4)[:1], np.eye(4)[:2], np.eye(4)[:1]])
