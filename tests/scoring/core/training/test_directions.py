"""The usaugment experiment's CV (issue 19): copies join training folds only, and the baseline is
the same CV without them."""
from __future__ import annotations

import numpy as np

from scoring.core.features.featurizer import hires_columns
from scoring.core.models.lite0 import LITE0_BLOCK_CHANNELS
from scoring.core.training.cv import cross_validate, cv_splits
from scoring.core.training.directions import Arm, cross_validate_pair, screening, training_set
from tests.scoring.core.training.test_fitting import HIRES, _synthetic, _with_hires


def test_a_training_set_adds_copies_of_its_own_clips_only() -> None:
    feats = [{"frame": np.full((2, 3), i, np.float32), "summary": np.zeros(3, np.float32),
              "hires": np.full(4, i, np.float32)} for i in range(5)]
    copies = [[np.full(4, 10 * i + c, np.float32) for c in range(2)] for i in range(5)]
    rows, origin = training_set(feats, copies, np.array([0, 3]))
    assert origin.tolist() == [0, 3, 0, 0, 3, 3]
    assert [float(r["hires"][0]) for r in rows] == [0, 3, 0, 1, 30, 31]
    assert all(np.array_equal(r["frame"], feats[o]["frame"]) for r, o in zip(rows, origin, strict=True))
    assert feats[0]["hires"][0] == 0  # the clip's own features are not touched


def test_without_copies_both_arms_are_the_default_cv() -> None:
    feats, y, fnd, groups = _synthetic(n_clips=40)
    _with_hires(feats, y, tap=7)
    cv = cross_validate_pair(feats, Arm("usaugment", copies=[[] for _ in feats]), y, fnd, groups, HIRES, seeds=[0, 1],
                             k=4)
    plain = cross_validate(feats, y, fnd, groups, HIRES, seeds=[0, 1], k=4)
    for arm in ("baseline", "usaugment"):
        assert cv[arm]["accuracy"]["per_seed"] == plain["accuracy"]["per_seed"]  # type: ignore[index]
        assert cv[arm]["n_clips"] == 40
    assert screening(cv, "usaugment")["passes"] is False  # equal is not better


def test_copies_change_only_the_augmented_arm_and_test_clips_are_never_copied() -> None:
    feats, y, fnd, groups = _synthetic(n_clips=40)
    _with_hires(feats, y, tap=7)
    rng = np.random.default_rng(1)
    # Noisy copies: the augmented arm's fits change, the baseline's do not.
    copies = [[f["hires"] + rng.normal(0, 3, f["hires"].shape).astype(np.float32)] for f in feats]
    cv = cross_validate_pair(feats, Arm("usaugment", copies=copies), y, fnd, groups, HIRES, seeds=[0], k=4)
    plain = cross_validate(feats, y, fnd, groups, HIRES, seeds=[0], k=4)
    assert cv["baseline"]["accuracy"]["per_seed"] == plain["accuracy"]["per_seed"]  # type: ignore[index]
    assert cv["usaugment"]["accuracy"]["per_seed"] != plain["accuracy"]["per_seed"]  # type: ignore[index]
    for tr, te in cv_splits(y, groups, np.ones(len(y), bool), 4, 0):
        _, origin = training_set(feats, copies, tr)
        assert not set(origin.tolist()) & set(te.tolist())


def test_a_replaced_descriptor_is_what_training_and_test_clips_both_read() -> None:
    feats, y, fnd, groups = _synthetic(n_clips=40)
    _with_hires(feats, y, tap=7)
    block = hires_columns(HIRES, list(LITE0_BLOCK_CHANNELS), "hr:7")
    for f, label in zip(feats, y, strict=True):
        f["hires"][block] += 0.5 * label  # the whole tap-7 block carries the score: CV can read it
    # The masks arm with the clips' own descriptors is the baseline, seed for seed ...
    same = cross_validate_pair(feats, Arm("masks", hires=[f["hires"] for f in feats]), y, fnd, groups, HIRES,
                               seeds=[0], k=4)
    assert same["masks"]["accuracy"]["per_seed"] == same["baseline"]["accuracy"]["per_seed"]  # type: ignore[index]
    # ... and descriptors without the label's signal, in training and test, fall to chance.
    rng = np.random.default_rng(2)
    noise = [rng.normal(0, 1, f["hires"].shape).astype(np.float32) for f in feats]
    cv = cross_validate_pair(feats, Arm("masks", hires=noise), y, fnd, groups, HIRES, seeds=[0], k=4)
    assert cv["baseline"]["accuracy"]["mean"] > 0.6 > cv["masks"]["accuracy"]["mean"]  # type: ignore[index,operator]
    s = screening(cv, "masks")
    assert s["passes"] is False and s["challenger_accuracy"] == cv["masks"]["accuracy"]["mean"]  # type: ignore[index]
