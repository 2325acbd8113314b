"""The two-stage cascade of Xing et al. 2022, model-agnostic.

Everything works on indices into one data set held by the caller. A model enters as a
``FitPredict`` callable: ``fit_predict(train_idx, test_idx)`` fits on the training items and
returns its predictions for the test items, either classes [len(test_idx)] or probabilities
[len(test_idx), C].

* **Stage one** (:func:`stage_one_filter`): inside the training items, patient-grouped k folds
  (k=5: five models, one per fold, the folds of :func:`scoring.core.training.cv.cv_splits`); every
  item gets the prediction of the model that did not see it, and items whose out-of-fold
  prediction is ``noise_filter`` or more classes from their label are dropped (``noise_filter=1``:
  any disagreement, as in the paper; the same meaning as ``Recipe.noise_filter``). As the product's
  filter does (``fit_with_noise_filter``), a class is never dropped entirely unless
  ``keep_every_class=False``.
* **Stage two** (:func:`cascade_fit_predict`): three members are fitted on the kept items and vote
  with :func:`scoring.core.inference.vote.vote_batch` (majority; all different: the most confident
  if >= 0.8, else the median class).

:func:`make_cascade` wraps both stages as one ``FitPredict``, so a cascade is cross-validated with
the same folds as any other model.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from scoring.core.inference.vote import VOTE_CONF, vote_batch
from scoring.core.training.cv import cv_splits

FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


def as_classes(pred: np.ndarray) -> np.ndarray:
    """Predictions as classes: probabilities [N, C] -> argmax, classes [N] unchanged."""
    p = np.asarray(pred)
    return p.argmax(1).astype(int) if p.ndim == 2 else p.astype(int)


def oof_classes(fit_predict: FitPredict, y: np.ndarray, groups: Sequence[str], idx: np.ndarray,
                k: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold classes of the items ``idx`` (patient-grouped k folds over ``idx`` only)."""
    idx = np.asarray(idx, int)
    y_sub = np.asarray(y, int)[idx]
    g_sub = [groups[i] for i in idx]
    pred = np.full(len(idx), -1, int)
    for tr, te in cv_splits(y_sub, g_sub, np.ones(len(idx), bool), k, seed):
        pred[te] = as_classes(fit_predict(idx[tr], idx[te]))
    return pred


def stage_one_filter(fit_predict: FitPredict, y: np.ndarray, groups: Sequence[str], idx: np.ndarray | None = None,
                     k: int = 5, seed: int = 0, noise_filter: int = 1, keep_every_class: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Stage one. Returns (kept indices, out-of-fold classes of ``idx``)."""
    y = np.asarray(y, int)
    idx = np.arange(len(y)) if idx is None else np.asarray(idx, int)
    if noise_filter < 1:
        raise ValueError("noise_filter must be >= 1 (1: drop every disagreeing item)")
    pred = oof_classes(fit_predict, y, groups, idx, k, seed)
    keep = np.abs(pred - y[idx]) < noise_filter
    if keep_every_class:
        for c in np.unique(y[idx]):
            if not (keep & (y[idx] == c)).any():
                keep |= y[idx] == c
    return idx[keep], pred


def cascade_fit_predict(members: Sequence[FitPredict], train_idx: np.ndarray, test_idx: np.ndarray,
                        conf: float = VOTE_CONF) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stage two: fit the three members on ``train_idx`` (already filtered), vote on ``test_idx``.
    Members must return probabilities. Returns (probabilities [N, C], classes [N], rules)."""
    if len(members) != 3:
        raise ValueError(f"the cascade needs exactly three members, got {len(members)}")
    outs = []
    for m in members:
        p = np.asarray(m(np.asarray(train_idx, int), np.asarray(test_idx, int)), np.float64)
        if p.ndim != 2:
            raise ValueError("stage-two members must return probabilities [N, C]")
        outs.append(p)
    return vote_batch(outs, conf)


def make_cascade(filter_model: FitPredict, members: Sequence[FitPredict], y: np.ndarray, groups: Sequence[str],
                 k: int = 5, seed: int = 0, noise_filter: int = 1, conf: float = VOTE_CONF,
                 log: Callable[[str], None] | None = None) -> FitPredict:
    """Both stages as one ``FitPredict`` returning the voted probabilities: stage one filters the
    training indices it is given (never the test ones), stage two fits and votes."""

    def fit_predict(train_idx: np.ndarray, test_idx: np.ndarray) -> np.ndarray:
        kept, _ = stage_one_filter(filter_model, y, groups, train_idx, k, seed, noise_filter)
        if log:
            log(f"cascade stage one: kept {len(kept)} of {len(train_idx)} training items")
        probs, _, _ = cascade_fit_predict(members, kept, test_idx, conf)
        return probs

    return fit_predict
