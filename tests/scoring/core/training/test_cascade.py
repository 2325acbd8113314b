from __future__ import annotations

import numpy as np
import pytest

from scoring.core.training.cascade import (
    as_classes,
    cascade_fit_predict,
    make_cascade,
    oof_classes,
    stage_one_filter,
)

# Toy data set: 1-D feature, three classes around 0, 10 and 20; patient p<i> owns the items
# 0.i, 10.i and 20.i. Two labels are wrong: x=0.3 (index 3) says 1, x=20.5 (index 25) says 0.
X = np.concatenate([np.arange(10) / 10 + 10 * c for c in range(3)])
Y_TRUE = np.repeat([0, 1, 2], 10)
Y = Y_TRUE.copy()
Y[3], Y[25] = 1, 0
GROUPS = [f"p{i % 10}" for i in range(30)]


def nearest_centroid(x: np.ndarray, y: np.ndarray, calls: list[tuple[np.ndarray, np.ndarray]] | None = None):
    """Nearest class centroid of the training items (classes absent from training never predicted)."""

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        if calls is not None:
            calls.append((tr.copy(), te.copy()))
        cls = np.unique(y[tr])
        cent = np.array([x[tr][y[tr] == c].mean() for c in cls])
        return cls[np.abs(x[te][:, None] - cent[None]).argmin(1)]

    return fit_predict


def knn_probs(x: np.ndarray, y: np.ndarray, k: int, n_classes: int = 3,
              seen: list[np.ndarray] | None = None):
    """k nearest neighbours; probabilities = neighbours' label fractions."""

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        if seen is not None:
            seen.append(tr.copy())
        d = np.abs(x[te][:, None] - x[tr][None])
        nn = np.argsort(d, 1, kind="stable")[:, :k]
        return np.stack([np.bincount(y[tr][row], minlength=n_classes) / k for row in nn])

    return fit_predict


def test_nearest_centroid_toy_model_is_what_the_filter_tests_assume() -> None:
    fp = nearest_centroid(X, Y)
    assert fp(np.arange(30), np.array([3, 25, 0, 12, 29])).tolist() == [0, 2, 0, 1, 2]


def test_out_of_fold_uses_five_patient_grouped_folds() -> None:
    calls: list[tuple[np.ndarray, np.ndarray]] = []
    oof_classes(nearest_centroid(X, Y, calls), Y, GROUPS, np.arange(30), k=5, seed=0)
    assert len(calls) == 5
    tests = np.concatenate([te for _, te in calls])
    assert sorted(tests.tolist()) == list(range(30))  # every item predicted exactly once
    for tr, te in calls:
        assert not set(tr) & set(te)
        assert not {GROUPS[i] for i in tr} & {GROUPS[i] for i in te}  # a patient never split


def test_stage_one_drops_exactly_the_mislabelled_items() -> None:
    for seed in (0, 1, 2):
        kept, pred = stage_one_filter(nearest_centroid(X, Y), Y, GROUPS, seed=seed)
        assert pred.tolist() == Y_TRUE.tolist()
        assert kept.tolist() == [i for i in range(30) if i not in (3, 25)]


def test_noise_filter_two_keeps_one_class_disagreements() -> None:
    kept, _ = stage_one_filter(nearest_centroid(X, Y), Y, GROUPS, noise_filter=2)
    assert 3 in kept and 25 not in kept and len(kept) == 29
    with pytest.raises(ValueError):
        stage_one_filter(nearest_centroid(X, Y), Y, GROUPS, noise_filter=0)


def test_stage_one_on_a_subset_uses_global_indices() -> None:
    idx = np.array([i for i in range(30) if i % 10 < 8])  # patients p0..p7
    kept, pred = stage_one_filter(nearest_centroid(X, Y), Y, GROUPS, idx=idx)
    assert len(pred) == len(idx)
    assert kept.tolist() == [i for i in idx if i not in (3, 25)]


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_a_class_is_never_dropped_entirely_unless_asked() -> None:
    # one extra item labelled 3 at x=5 (between the class 0 and class 1 clusters): the models that do not see it cannot predict class 3.
    x = np.append(X, 5.0)
    y = np.append(Y_TRUE, 3)
    g = [*GROUPS, "p0"]
    kept, pred = stage_one_filter(nearest_centroid(x, y), y, g)
    assert pred[30] == 0 and 30 in kept and len(kept) == 31
    kept, _ = stage_one_filter(nearest_centroid(x, y), y, g, keep_every_class=False)
    assert 30 not in kept and len(kept) == 30


def test_stage_two_votes_the_three_members() -> None:
    tr = np.array([i for i in range(30) if i not in (3, 25)])
    te = np.array([0, 15, 25])
    probs, classes, rules = cascade_fit_predict(
        [knn_probs(X, Y, 1), knn_probs(X, Y, 3), knn_probs(X, Y, 5)], tr, te)
    assert classes.tolist() == [0, 1, 2] and rules == ["majority"] * 3
    assert np.allclose(probs, np.eye(3)[[0, 1, 2]])
    with pytest.raises(ValueError, match="probabilities"):
        cascade_fit_predict([nearest_centroid(X, Y)] * 3, tr, te)
    with pytest.raises(ValueError, match="three"):
        cascade_fit_predict([knn_probs(X, Y, 1)] * 2, tr, te)


def test_cascade_filters_the_training_set_then_votes() -> None:
    # x=20.47 sits next to the mislabelled 20.5: without stage one, 1-NN says 0 and 2-NN splits
    # 0.5/0.5 (argmax 0), so the vote would be 0 (majority of 1-NN and 2-NN against 5-NN's 2).
    x = np.append(X, 20.47)
    y = np.append(Y, 2)
    g = [*GROUPS, "q"]
    seen: list[np.ndarray] = []
    members = [knn_probs(x, y, 1, seen=seen), knn_probs(x, y, 2, seen=seen), knn_probs(x, y, 5, seen=seen)]
    tr, te = np.arange(30), np.array([30])
    _, unfiltered, _ = cascade_fit_predict(members, tr, te)
    assert unfiltered.tolist() == [0]
    seen.clear()
    cascade = make_cascade(nearest_centroid(x, y), members, y, g)
    probs = cascade(tr, te)
    assert as_classes(probs).tolist() == [2]
    assert len(seen) == 3 and all(3 not in s and 25 not in s and len(s) == 28 for s in seen)
