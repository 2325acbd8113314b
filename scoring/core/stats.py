"""THE statistics of LUSWeb: scipy where scipy does it, a hand implementation where it has none.

* classification metrics of ordinal 0..3 severity scores (training, evaluation, agreement):
  :func:`confusion`, :func:`quadratic_kappa`, :func:`spearman`, :func:`calibration`,
  :func:`classification_report`;
* the correlations the dashboards show: :func:`correlate` (Pearson with its Fisher-z interval
  and p, Spearman and p, the least-squares line: ``scipy.stats``) and
  :func:`repeated_measures_correlation` (Bakdash & Marusich 2017, as R's ``rmcorr``: scipy has
  none), with :func:`fisher_ci` and :func:`correlation_p_value` for a correlation known only by
  its value and its number of points;
* uncertainty and ranks (the review worklist's "most informative first" order):
  :func:`normalised_entropy` of a class distribution and :func:`percentile_ranks`.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

# --- classification metrics (ordinal scores) ------------------------------------------------------


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
    r = sps.spearmanr(a_, b_).statistic
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


# --- correlations (dashboards) --------------------------------------------------------------------

#: Two-sided 95 % normal quantile for the Fisher z interval.
Z_975 = float(sps.norm.ppf(0.975))


@dataclass(frozen=True)
class Correlation:
    """Pearson r with Fisher-z CI and two-sided p, Spearman rho and p, least-squares line.

    Every figure is None when ``n < 3`` (or when a variable is constant) and ``message`` says why.
    """

    n: int
    pearson_r: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    spearman_rho: float | None = None
    spearman_p: float | None = None
    slope: float | None = None
    intercept: float | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "pearson_r": self.pearson_r, "p_value": self.p_value, "ci_low": self.ci_low,
            "ci_high": self.ci_high, "spearman_rho": self.spearman_rho, "spearman_p": self.spearman_p,
            "slope": self.slope, "intercept": self.intercept, "message": self.message,
        }


def correlation_p_value(r: float, n: int) -> float:
    """Two-sided p of H0: rho = 0, from t = r sqrt((n-2)/(1-r^2)) with n-2 degrees of freedom."""
    if abs(r) >= 1.0:
        return 0.0
    df = n - 2
    t = abs(r) * math.sqrt(df / (1.0 - r * r))
    return float(min(1.0, 2.0 * sps.t.sf(t, df)))


def fisher_ci(r: float, n: int, z: float = Z_975) -> tuple[float, float]:
    """Confidence interval of a correlation r of n points: tanh(atanh(r) -+ z / sqrt(n - 3)).

    n = 3 leaves no degree of freedom for the interval: (-1, 1). |r| = 1 gives (r, r).
    (For data, ``scipy.stats.pearsonr(...).confidence_interval()`` is the same interval.)
    """
    if abs(r) >= 1.0:
        return r, r
    if n <= 3:
        return -1.0, 1.0
    zr = math.atanh(r)
    half = z / math.sqrt(n - 3)
    return math.tanh(zr - half), math.tanh(zr + half)


def correlate(xs: Sequence[float], ys: Sequence[float]) -> Correlation:
    """Pearson (with 95 % Fisher CI, two-sided p), Spearman and the least-squares line of y on x."""
    if len(xs) != len(ys):
        raise ValueError(f"xs has {len(xs)} values but ys has {len(ys)}")
    n = len(xs)
    if n < 3:
        return Correlation(n=n, message=f"Only {n} paired exam{'s' if n != 1 else ''}: at least 3 are needed.")
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    slope = intercept = None
    if np.ptp(x) > 0:
        line = sps.linregress(x, y)
        slope, intercept = float(line.slope), float(line.intercept)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(n=n, slope=slope, intercept=intercept,
                           message="One of the variables is constant: no correlation can be computed.")
    pearson = sps.pearsonr(x, y)
    with np.errstate(invalid="ignore"):  # 3 collinear pairs: atanh(+-1) +- inf; scipy answers (-1, 1)
        ci = pearson.confidence_interval(0.95)
    spearman_ = sps.spearmanr(x, y)
    return Correlation(
        n=n, pearson_r=float(pearson.statistic), p_value=float(pearson.pvalue), ci_low=float(ci.low),
        ci_high=float(ci.high), spearman_rho=float(spearman_.statistic), spearman_p=float(spearman_.pvalue),
        slope=slope, intercept=intercept,
    )


@dataclass(frozen=True)
class RepeatedCorrelation:
    """Repeated-measures correlation (Bakdash & Marusich 2017, as R's ``rmcorr``).

    The common within-patient association: every patient keeps their own intercept, all share
    one slope. Exams of one patient are not independent, so this, not the pooled Pearson r, is
    the figure for "does the gas move with the score in a patient". Only patients with at least
    two pairs count; ``df = n - patients - 1``. Figures are None (``message`` says why) when
    ``df < 2`` or nothing varies within patients.
    """

    n: int  # pairs from patients with >= 2 pairs
    patients: int
    df: int
    r: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    slope: float | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "patients": self.patients, "df": self.df, "r": self.r, "p_value": self.p_value,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "slope": self.slope, "message": self.message}


def repeated_measures_correlation(xs: Sequence[float], ys: Sequence[float],
                                  groups: Sequence[Hashable]) -> RepeatedCorrelation:
    """r_rm = sum(x'y') / sqrt(sum(x'^2) sum(y'^2)) over values centred on their patient's means.

    With df = N - k - 1 the p-value is the t test of r on df degrees of freedom and the 95 % CI
    is tanh(atanh(r) -+ z / sqrt(df - 1)) - r behaves like a Pearson r of df + 2 points. This
    reproduces rmcorr's published example (Bland & Altman 1995: r -0.507, df 38, p 0.00085,
    CI -0.707 to -0.232).
    """
    if not len(xs) == len(ys) == len(groups):
        raise ValueError(f"xs, ys and groups differ in length ({len(xs)}, {len(ys)}, {len(groups)})")
    by: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    kept = [idx for idx in by.values() if len(idx) >= 2]
    n, k = sum(len(idx) for idx in kept), len(kept)
    df = n - k - 1
    if df < 2:
        return RepeatedCorrelation(n=n, patients=k, df=max(df, 0),
                                   message="Too few patients with two or more paired exams "
                                           f"({k} patients, {n} pairs): at least 4 pairs from them are needed.")
    sxx = sxy = syy = 0.0
    for idx in kept:
        mx = math.fsum(xs[i] for i in idx) / len(idx)
        my = math.fsum(ys[i] for i in idx) / len(idx)
        sxx += math.fsum((xs[i] - mx) ** 2 for i in idx)
        syy += math.fsum((ys[i] - my) ** 2 for i in idx)
        sxy += math.fsum((xs[i] - mx) * (ys[i] - my) for i in idx)
    if sxx == 0 or syy == 0:
        return RepeatedCorrelation(n=n, patients=k, df=df,
                                   message="One of the variables does not change within any patient.")
    r = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
    low, high = fisher_ci(r, df + 2)
    return RepeatedCorrelation(n=n, patients=k, df=df, r=r, p_value=correlation_p_value(r, df + 2),
                               ci_low=low, ci_high=high, slope=sxy / sxx)


# --- uncertainty and ranks -------------------------------------------------------------------------


def normalised_entropy(probs: Sequence[float]) -> float:
    """Shannon entropy of a class distribution divided by its largest possible value, log K: 0 when
    one class holds all the mass, 1 when the K classes are equally likely. ``probs`` is renormalised
    first (stored probabilities are rounded). Raises ValueError for fewer than two classes, a
    negative or non-finite probability, or an all-zero distribution."""
    p = np.asarray(probs, float)
    if p.ndim != 1 or len(p) < 2 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"probs must be >= 2 non-negative finite numbers with a positive sum, got {list(probs)}")
    return float(sps.entropy(p / p.sum()) / math.log(len(p)))


def percentile_ranks(values: Sequence[float]) -> list[float]:
    """Each value's rank among ``values`` (1 = the smallest, ties sharing their mean rank:
    ``scipy.stats.rankdata``) divided by their number: in (0, 1], 1.0 for the largest. Ranks carry
    no unit, so two measures on different scales average into one order."""
    if not len(values):
        return []
    return [float(r) / len(values) for r in sps.rankdata(np.asarray(values, float), method="average")]
