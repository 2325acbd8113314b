"""Patient-grouped cross-validation and the label-noise filter built on it."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from scoring.core.features.recipe import Recipe
from scoring.core.inference.bundle import Bundle
from scoring.core.labels import N_CLASSES
from scoring.core.stats import classification_report
from scoring.core.training.fitting import fit_bundle


def fit_with_noise_filter(feats: Sequence[dict[str, np.ndarray]], y: np.ndarray, findings: np.ndarray,
                          groups: Sequence[str], recipe: Recipe, seed: int,
                          frame_heads: bool = True) -> tuple[Bundle, np.ndarray]:
    """Xing et al. 2022 style label-noise filtering, then the final fit.

    Out-of-fold predictions (patient-grouped 5-fold inside the given training set) are
    compared with the labels; clips whose prediction is ``noise_filter`` or more classes away
    are dropped and the model is refitted on the rest. Returns (bundle, kept mask).
    ``frame_heads=False``: only the clip score is wanted (see ``fit_bundle``).
    """
    keep = np.ones(len(y), bool)
    if recipe.noise_filter > 0:
        pred = oof_predict(feats, y, findings, groups, recipe, seed, k=5)
        keep = np.abs(pred - y) < recipe.noise_filter
        # Never drop a whole class.
        for c in range(N_CLASSES):
            if (y == c).any() and not (keep & (y == c)).any():
                keep |= y == c
    sel = [int(i) for i in np.nonzero(keep)[0]]
    b = fit_bundle([feats[i] for i in sel], y[sel], findings[sel], recipe, seed, frame_heads=frame_heads)
    return b, keep


def folds(y: np.ndarray, groups: Sequence[str], k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped stratified k folds (a patient's clips are never split)."""
    g = np.asarray(groups)
    k = min(k, len(set(g)))
    return list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, g))


def oof_predict(feats: Sequence[dict[str, np.ndarray]], y: np.ndarray, findings: np.ndarray,
                groups: Sequence[str], recipe: Recipe, seed: int, k: int = 5) -> np.ndarray:
    """Out-of-fold clip scores (no noise filtering inside)."""
    inner = Recipe.from_dict({**recipe.to_dict(), "noise_filter": 0})
    pred = np.zeros(len(y), int)
    for tr, te in folds(y, groups, k, seed):
        b = fit_bundle([feats[i] for i in tr], y[tr], findings[tr], inner, seed, frame_heads=False)
        for i in te:
            pred[i] = b.predict(feats[i])["clip_score"]
    return pred


def cv_splits(y: np.ndarray, groups: Sequence[str], eval_mask: np.ndarray, k: int, seed: int
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training indices, test indices) of one seed's patient-grouped folds.

    Only the ``eval_mask`` clips are split into folds; the others are always in training (a pooled
    data set). The folds are sets of patients that depend on the patients' names (their sorted
    order) and class counts, not on the order of the clips, so two callers that hold the same
    patients under names of the same pattern (``cb10``, ``CB-10``) get the same folds.
    """
    em = np.asarray(eval_mask, bool)
    out = []
    for _tr, te in folds(y[em], np.asarray(groups)[em], k, seed):
        te_idx = np.nonzero(em)[0][te]
        out.append((np.setdiff1d(np.arange(len(y)), te_idx), te_idx))
    return out


def cv_summary(per_seed: Sequence[dict[str, object]], seeds: Sequence[int], k: int, n_clips: int,
               n_patients: int) -> dict[str, object]:
    """Mean, sd and per-seed values of every scalar metric of per-seed classification reports."""
    summary: dict[str, object] = {"seeds": list(seeds), "k": k, "n_clips": n_clips, "n_patients": n_patients}
    for key in CV_METRICS:
        vals = np.array([float(r[key]) for r in per_seed])  # type: ignore[arg-type]
        summary[key] = {"mean": float(vals.mean()), "sd": float(vals.std()), "per_seed": vals.tolist()}
    summary["confusion_seed0"] = per_seed[0]["confusion"]
    summary["sensitivity_seed0"] = per_seed[0]["sensitivity"]
    summary["specificity_seed0"] = per_seed[0]["specificity"]
    return summary


#: The scalar metrics of a CV block (``cv_summary``), as model cards list them.
CV_METRICS = ("accuracy", "within1", "spearman", "spearman_expected", "qwk", "macro_f1", "ece", "brier")


def seed_report(y: np.ndarray, idx: np.ndarray, outs: dict[int, dict[str, object]]) -> dict[str, object]:
    """The classification report of the predictions ``outs`` (clip index -> ``Bundle.predict``
    output) of the clips ``idx``."""
    probs = np.stack([np.asarray(outs[int(i)]["clip_probs"], float) for i in idx])
    pred = np.array([int(outs[int(i)]["clip_score"]) for i in idx])  # type: ignore[call-overload]
    return classification_report(y[idx], pred, expected=probs @ np.arange(N_CLASSES), probs=probs)


def cross_validate(feats: Sequence[dict[str, np.ndarray]], y: np.ndarray, findings: np.ndarray,
                   groups: Sequence[str], recipe: Recipe, seeds: Sequence[int] = (0, 1, 2),
                   k: int = 5, eval_mask: np.ndarray | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, object]:
    """Patient-grouped k-fold CV repeated over seeds; mean and sd of every scalar metric.

    ``eval_mask``: only these clips are scored (e.g. COVID-BLUES when POCUS is added to the
    training folds); the others are always in training.
    """
    y = np.asarray(y, int)
    em = np.ones(len(y), bool) if eval_mask is None else np.asarray(eval_mask, bool)
    per_seed: list[dict[str, object]] = []
    for seed in seeds:
        outs: dict[int, dict[str, object]] = {}
        for tr_idx, te_idx in cv_splits(y, groups, em, k, seed):
            trg = [groups[i] for i in tr_idx]
            # The CV scores the clip score only: the frame heads are not fitted when it does not read them.
            b, _ = fit_with_noise_filter([feats[i] for i in tr_idx], y[tr_idx], findings[tr_idx], trg, recipe, seed,
                                         frame_heads=False)
            outs.update({int(i): b.predict(feats[i]) for i in te_idx})
        rep = seed_report(y, np.nonzero(em)[0], outs)
        per_seed.append(rep)
        if log:
            log(f"seed {seed}: acc {rep['accuracy']:.3f} within1 {rep['within1']:.3f} "
                f"spearman {rep['spearman']:.3f} qwk {rep['qwk']:.3f} macroF1 {rep['macro_f1']:.3f} "
                f"ECE {rep['ece']:.3f} Brier {rep['brier']:.3f}")
    return cv_summary(per_seed, seeds, k, int(em.sum()), len(set(np.asarray(groups)[em])))
