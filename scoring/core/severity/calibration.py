"""Calibration of the risk of a severe course: temperature scaling fitted out of fold.

The severity model (:mod:`scoring.core.severity.bundle`) predicts the *course class* of the whole
stay (COVID-BLUES rule: oxygen therapy, ICU or death on any day; :mod:`scoring.core.training.covid_blues`),
and the risk shown is ``P(severe or critical course)``. Trained on 42 patients it is badly
over-confident (raw out-of-fold probabilities from 1e-6 to 0.99999). Temperature scaling (Guo et
al. 2017) divides its log-probabilities by one number ``T`` fitted to minimise the 4-class
log-loss of *out-of-fold* predictions (patient-grouped CV, several fold seeds pooled): the class
ranking and the predicted class do not change, only how sure the model says it is.

The out-of-fold ECE is honest twice over: every prediction comes from a model that never saw the
patient, and is calibrated by a temperature fitted on the other patients' predictions only
(:func:`cross_fitted`). With 42 patients an ECE over 10 bins is noisy - a perfectly calibrated
predictor making the same predictions scores about 0.13 on one CV seed - so the figure pools
the fold seeds, and :func:`chance_ece` reports that noise floor beside it.

Pure numpy/scipy (no Django, no torch).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from scoring.core.severity.risk import OUTCOME, SEVERE_FROM
from scoring.core.stats import calibration

#: The search range of the temperature (log scale): from sharpening 20x to flattening 100x.
_LOG_T_BOUNDS = (float(np.log(0.05)), float(np.log(100.0)))
_EPS = 1e-12


def severe_risk(probs: np.ndarray) -> np.ndarray:
    """P(severe or critical course) from 4-class probabilities ``[N, 4]``."""
    return np.asarray(probs, float)[:, SEVERE_FROM:].sum(1)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row by row: the same class order, softer (T > 1) or sharper (T < 1)."""
    z = np.log(np.clip(np.asarray(probs, float), _EPS, 1.0)) / float(temperature)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the mean 4-class log-loss of ``probs`` [N, 4] for labels ``y``."""
    p = np.asarray(probs, float)
    labels = np.asarray(y, int)

    def loss(log_t: float) -> float:
        q = apply_temperature(p, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(q[np.arange(len(labels)), labels], _EPS, 1.0))))

    res = minimize_scalar(loss, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def risk_ece(severe: np.ndarray, risk: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the shown risk: over ``bins`` equal-width bins of the risk,
    |mean risk - share of severe courses|, weighted by the bin's share of predictions
    (:func:`scoring.core.stats.calibration` with the shown class always "severe")."""
    r = np.asarray(risk, float)
    return calibration(np.asarray(severe, int), np.ones(len(r), int), np.c_[1 - r, r], bins=bins)["ece"]


def chance_ece(risk: np.ndarray, bins: int = 10, draws: int = 500, seed: int = 0) -> float:
    """The ECE a perfectly calibrated predictor making these predictions would show on average
    (outcomes drawn from the predicted risks): the noise floor of :func:`risk_ece` at this n."""
    r = np.asarray(risk, float)
    rng = np.random.default_rng(seed)
    return float(np.mean([risk_ece(rng.random(len(r)) < r, r, bins) for _ in range(draws)]))


def cross_fitted(oof: Sequence[np.ndarray], y: np.ndarray, groups: Sequence[str], folds: int = 5, seed: int = 0
                 ) -> list[np.ndarray]:
    """Calibrated out-of-fold probabilities: each patient's (in every fold seed) scaled by a
    temperature fitted on the other patients' out-of-fold predictions of all seeds."""
    from sklearn.model_selection import StratifiedGroupKFold  # lazy: training only

    labels = np.asarray(y, int)
    out = [np.zeros_like(np.asarray(p, float)) for p in oof]
    n_splits = max(2, min(folds, int(np.bincount(labels).max()), len(set(groups))))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for tr, te in splitter.split(np.zeros(len(labels)), labels, np.asarray(groups)):
        t = fit_temperature(np.concatenate([np.asarray(p)[tr] for p in oof]), np.tile(labels[tr], len(oof)))
        for dst, p in zip(out, oof, strict=True):
            dst[te] = apply_temperature(np.asarray(p)[te], t)
    return out


@dataclass(frozen=True)
class Calibration:
    """The fitted temperature and the out-of-fold figures of the risk it calibrates."""

    method: str
    temperature: float
    ece: float  # out-of-fold, cross-fitted, fold seeds pooled
    ece_per_seed: list[float]
    ece_uncalibrated: float
    chance_ece: float
    brier: float
    brier_uncalibrated: float
    severe_accuracy: float  # calibrated risk >= 0.5 against a severe course, pooled
    n_patients: int
    n_predictions: int
    bins: int
    outcome: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def calibrate(oof: Sequence[np.ndarray], y: np.ndarray, groups: Sequence[str], bins: int = 10,
              seed: int = 0) -> Calibration:
    """Fit the temperature on all out-of-fold predictions ``oof`` (one [N, 4] array per fold seed)
    and measure the calibrated risk out of fold (:func:`cross_fitted`)."""
    labels = np.asarray(y, int)
    k = len(oof)
    severe = np.tile(labels >= SEVERE_FROM, k)
    raw = np.concatenate([severe_risk(p) for p in oof])
    calibrated = cross_fitted(oof, labels, groups, seed=seed)
    risk = np.concatenate([severe_risk(p) for p in calibrated])
    return Calibration(
        method="temperature", temperature=fit_temperature(np.concatenate(list(oof)), np.tile(labels, k)),
        ece=risk_ece(severe, risk, bins),
        ece_per_seed=[risk_ece(labels >= SEVERE_FROM, severe_risk(p), bins) for p in calibrated],
        ece_uncalibrated=risk_ece(severe, raw, bins), chance_ece=chance_ece(risk, bins),
        brier=float(np.mean((risk - severe) ** 2)), brier_uncalibrated=float(np.mean((raw - severe) ** 2)),
        severe_accuracy=float(np.mean((risk >= 0.5) == severe)), n_patients=len(labels), n_predictions=len(risk),
        bins=bins, outcome=OUTCOME,
    )
