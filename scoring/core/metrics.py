"""Classification metrics for ordinal 0..3 severity scores."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import spearmanr


def confusion(y_true: Any, y_pred: Any, n: int = 4) -> np.ndarray:
    """Confusion matrix [true, pred] (int)."""
    m = np.zeros((n, n), int)
    for t, p in zip(y_true, y_pred, strict=True):
        m[int(t), int(p)] += 1
    return m


def quadratic_kappa(y_true: Any, y_pred: Any, n: int = 4) -> float:
    """Cohen's kappa with quadratic weights (0 when undefined)."""
    o = confusion(y_true, y_pred, n).astype(float)
    if o.sum() == 0:
        return 0.0
    w = np.array([[(i - j) ** 2 for j in range(n)] for i in range(n)], float) / (n - 1) ** 2
    e = np.outer(o.sum(1), o.sum(0)) / o.sum()
    den = (w * e).sum()
    return float(1.0 - (w * o).sum() / den) if den > 0 else 0.0


def spearman(a: Any, b: Any) -> float:
    """Spearman rank correlation; 0.0 when undefined (a constant input)."""
    a_ = np.asarray(a, float)
    b_ = np.asarray(b, float)
    if len(a_) < 2 or np.ptp(a_) == 0 or np.ptp(b_) == 0:
        return 0.0
    r = spearmanr(a_, b_).statistic
    return float(r) if np.isfinite(r) else 0.0


def calibration(y_true: Any, y_pred: Any, probs: Any, bins: int = 10) -> dict[str, float]:
    """How far the shown confidence can be trusted.

    ``ece``: expected calibration error of the confidence a user sees - the probability of the
    *predicted* score (which the vote may pick other than the arg-max) - against being right,
    over ``bins`` equal-width bins, weighted by their share of clips. ``brier``: multi-class
    Brier score, mean of sum_c (p_c - [c == y])^2 (0 perfect, 0.75 for uniform probabilities
    over 4 classes).
    """
    t = np.asarray(y_true, int)
    p = np.asarray(y_pred, int)
    pr = np.asarray(probs, float)
    if pr.ndim != 2 or pr.shape[0] != len(t) or len(p) != len(t):
        raise ValueError(f"probs must be [N, classes] for N = {len(t)} labels, got shape {pr.shape}")
    if not len(t):
        return {"ece": 0.0, "brier": 0.0}
    conf = pr[np.arange(len(t)), p]
    right = (p == t).astype(float)
    # Bin b holds confidences in [b/bins, (b+1)/bins); a confidence of exactly 1 goes to the last bin.
    which = np.minimum((conf * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - right[m].mean())
    onehot = np.eye(pr.shape[1])[t]
    return {"ece": float(ece), "brier": float(np.mean(np.sum((pr - onehot) ** 2, axis=1)))}


def classification_report(y_true: Any, y_pred: Any, n: int = 4,
                          expected: Any | None = None, probs: Any | None = None) -> dict[str, object]:
    """All metrics used by training and evaluation.

    ``expected`` (optional): a continuous severity (e.g. the expected score sum_c c*p_c) used
    for ``spearman_expected`` - a finer ranking than the hard predictions. ``probs``
    (optional, [N, n]): the clip probabilities, for :func:`calibration` (``ece``, ``brier``).
    """
    t = np.asarray(y_true, int)
    p = np.asarray(y_pred, int)
    cm = confusion(t, p, n)
    sens, spec, f1 = [], [], []
    for c in range(n):
        tp = cm[c, c]
        fn = cm[c].sum() - tp
        fp = cm[:, c].sum() - tp
        tn = cm.sum() - tp - fn - fp
        se = tp / (tp + fn) if tp + fn else 0.0
        sp = tn / (tn + fp) if tn + fp else 0.0
        pr = tp / (tp + fp) if tp + fp else 0.0
        sens.append(float(se))
        spec.append(float(sp))
        f1.append(float(2 * pr * se / (pr + se)) if pr + se else 0.0)
    out: dict[str, object] = {
        "n": int(len(t)),
        "accuracy": float((t == p).mean()) if len(t) else 0.0,
        "macro_f1": float(np.mean(f1)),
        "within1": float((np.abs(t - p) <= 1).mean()) if len(t) else 0.0,
        "spearman": spearman(t, p),
        "qwk": quadratic_kappa(t, p, n),
        "sensitivity": sens,
        "specificity": spec,
        "confusion": cm.tolist(),
    }
    if expected is not None:
        out["spearman_expected"] = spearman(t, expected)
    if probs is not None:
        out.update(calibration(t, p, probs))
    return out
