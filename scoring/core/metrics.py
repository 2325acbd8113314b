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


def classification_report(y_true: Any, y_pred: Any, n: int = 4,
                          expected: Any | None = None) -> dict[str, object]:
    """All metrics used by training and evaluation.

    ``expected`` (optional): a continuous severity (e.g. the expected score sum_c c*p_c) used
    for ``spearman_expected`` - a finer ranking than the hard predictions.
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
    return out
