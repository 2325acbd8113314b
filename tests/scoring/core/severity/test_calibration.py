"""Calibration of the risk of a severe course: temperature scaling, its ECE, the clipped display,
the calibrator in the weights file, and the three-class cohort end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scoring.core.severity.calibration import (
    apply_temperature,
    calibrate,
    chance_ece,
    cross_fitted,
    fit_temperature,
    risk_ece,
    severe_risk,
)
from scoring.core.severity.risk import DISPLAY_RANGE, displayed_probability


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_temperature_keeps_the_class_order_and_softens() -> None:
    probs = np.array([[0.97, 0.02, 0.01, 0.0], [0.1, 0.2, 0.3, 0.4]])
    soft = apply_temperature(probs, 3.0)
    assert np.allclose(soft.sum(1), 1.0) and (soft.argmax(1) == probs.argmax(1)).all()
    assert soft[0, 0] < probs[0, 0] and soft[0, 3] > 0  # a 0 becomes small but not 0
    # By hand: p_c^(1/T) / sum_k p_k^(1/T).
    row = np.array([0.1, 0.2, 0.3, 0.4]) ** (1 / 3)
    assert soft[1] == pytest.approx(row / row.sum(), abs=1e-9)
    assert apply_temperature(probs[1:], 1.0) == pytest.approx(probs[1:], abs=1e-12)


def test_fit_temperature_recovers_the_temperature_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 4))
    true = _softmax(logits / 2.5)  # the real frequencies are 2.5x softer than the model says
    y = np.array([rng.choice(4, p=p) for p in true])
    assert fit_temperature(_softmax(logits), y) == pytest.approx(2.5, rel=0.08)


def test_risk_ece_by_hand() -> None:
    # Bins of 0.1: [0.1, 0.2) holds 0.15 and 0.15 (mean 0.15, one severe of two: |0.15 - 0.5| = 0.35),
    # [0.8, 0.9) holds 0.85 (severe: |0.85 - 1| = 0.15); weights 2/3 and 1/3.
    risk = np.array([0.15, 0.15, 0.85])
    severe = np.array([True, False, True])
    assert risk_ece(severe, risk) == pytest.approx(2 / 3 * 0.35 + 1 / 3 * 0.15)
    assert severe_risk(np.array([[0.1, 0.2, 0.3, 0.4]]))[0] == pytest.approx(0.7)


def test_chance_ece_is_the_noise_floor_of_a_calibrated_predictor() -> None:
    # 42 patients: even perfectly calibrated risks show an ECE near 0.13-0.15 by chance; 420 far less.
    rng = np.random.default_rng(1)
    small, large = rng.uniform(0.1, 0.9, 42), rng.uniform(0.1, 0.9, 420)
    assert 0.10 < chance_ece(small) < 0.20
    assert chance_ece(large) < 0.07


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.004, 0.5, 0.996, 1.0, -0.2, 1.3])
def test_displayed_probabilities_are_never_0_or_1(p: float) -> None:
    shown = displayed_probability(p)
    assert DISPLAY_RANGE[0] <= shown <= DISPLAY_RANGE[1] and round(100 * shown) not in (0, 100)
    if DISPLAY_RANGE[0] <= p <= DISPLAY_RANGE[1]:
        assert shown == p


def test_cross_fitted_calibration_never_uses_the_patients_own_prediction() -> None:
    """Each patient's temperature is fitted on the other folds' patients only: a confidently wrong
    out-of-fold prediction for patient 0 moves every other fold's calibration, never its own fold's."""
    from sklearn.model_selection import StratifiedGroupKFold

    rng = np.random.default_rng(2)
    n = 40
    y = np.tile(np.arange(4), n // 4)
    oof = [_softmax(rng.normal(0, 2, size=(n, 4)) + 2 * np.eye(4)[y]) for _ in range(2)]
    groups = [f"P{i}" for i in range(n)]
    base = cross_fitted(oof, y, groups)
    wrong = [p.copy() for p in oof]
    for p in wrong:
        p[0] = np.eye(4)[(y[0] + 2) % 4] * 0.999 + 0.00025
    moved = cross_fitted(wrong, y, groups)
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(n), y, groups)
    mates = next(set(te.tolist()) for _, te in folds if 0 in te) - {0}
    for i in range(1, n):
        same = np.allclose(base[0][i], moved[0][i]) and np.allclose(base[1][i], moved[1][i])
        assert same == (i in mates), i


def test_calibrate_lowers_the_ece_of_an_overconfident_model() -> None:
    """A model 4x too sure of itself: the fitted temperature is near 4 and the out-of-fold ECE falls."""
    rng = np.random.default_rng(3)
    n = 300
    logits = rng.normal(0, 1.5, size=(n, 4))
    y = np.array([rng.choice(4, p=p) for p in _softmax(logits)])
    overconfident = [_softmax(4 * logits)]
    cal = calibrate(overconfident, y, [str(i) for i in range(n)])
    assert cal.temperature == pytest.approx(4.0, rel=0.2)
    assert cal.ece < cal.ece_uncalibrated - 0.1 and cal.ece < 0.08
    assert cal.n_predictions == n and cal.brier < cal.brier_uncalibrated


# --- the calibrator in the weights file --------------------------------------------------------


def _tiny_bundle(tmp_path: Path, temperature: float | None) -> tuple[Path, list]:
    from scoring.core.severity.bundle import TrainConfig, save_bundle
    from scoring.core.severity.synth import ZONES_12, synthetic_cohort
    from scoring.core.severity.training import train

    samples = synthetic_cohort(n_patients=24, seed=4)
    trained = train("ma_clr", samples, ZONES_12, TrainConfig(epochs=3))
    path = tmp_path / "severity.pt"
    cal = None if temperature is None else {"method": "temperature", "temperature": temperature, "ece": 0.05}
    save_bundle(trained, path, {"classes": ["mild", "moderate", "severe", "critical"]}, calibration=cal)
    return path, samples


def test_the_calibrator_travels_with_the_weights_and_is_bound_to_the_version(tmp_path: Path) -> None:
    import torch

    from scoring.core.severity.bundle import load_severity

    path, samples = _tiny_bundle(tmp_path, 3.0)
    model = load_severity(path)
    assert model.calibrated and model.temperature == 3.0 and model.meta["calibration"]["ece"] == 0.05
    out = model.predict_exam(samples[0].zone_features, samples[0].clinical)
    raw = np.asarray(out["raw_probs"])
    assert out["probs"] == pytest.approx(apply_temperature(raw[None], 3.0)[0].tolist(), abs=1e-9)
    assert out["severe_probability"] == pytest.approx(sum(out["probs"][2:]))
    # Another temperature is another model: another version.
    (tmp_path / "b").mkdir()
    other, _ = _tiny_bundle(tmp_path / "b", 2.0)
    assert load_severity(other).version != model.version
    # A calibrator that disagrees with its metadata is refused.
    st = torch.load(str(path), weights_only=True)
    st["calibrator"]["temperature"] = 1.0
    torch.save(st, str(path))
    with pytest.raises(ValueError, match="calibrator does not match"):
        load_severity(path)


def test_an_uncalibrated_bundle_loads_and_says_so(tmp_path: Path) -> None:
    from scoring.core.severity.bundle import load_severity

    path, samples = _tiny_bundle(tmp_path, None)
    model = load_severity(path)
    assert not model.calibrated and model.meta["calibration"] is None
    out = model.predict_exam(samples[1].zone_features, samples[1].clinical)
    assert out["probs"] == out["raw_probs"]


def test_the_shipped_model_never_shows_0_or_100_percent_even_for_extreme_inputs() -> None:
    """The installed weights carry their calibrator; zone features far outside anything seen (all
    +-1000) and the most and least severe clinical records still give shown risks within 1-99 %."""
    from scoring.core.severity.bundle import load_severity
    from scoring.severity import DEFAULT_SEVERITY_WEIGHTS

    model = load_severity(DEFAULT_SEVERITY_WEIGHTS)
    assert model.calibrated and model.temperature is not None and model.temperature > 1
    d = model.trained.d_in
    sick = {"age": 95, "oxygen_support": "ecmo", "spo2": 60, "respiratory_rate": 50, "dyspnea": True}
    well = {"age": 20, "oxygen_support": "none", "spo2": 100, "respiratory_rate": 12, "dyspnea": False}
    shown = []
    for value in (-1000.0, 0.0, 1000.0):
        feats = {z: np.full(d, value, np.float32) for z in model.trained.zones}
        for clinical in (sick, well, None):
            out = model.predict_exam(feats, clinical)
            shown += [displayed_probability(out["severe_probability"]), *map(displayed_probability, out["probs"])]
    assert min(shown) >= 0.01 and max(shown) <= 0.99
    assert all(round(100 * p) not in (0, 100) for p in shown)


# --- the three-class cohort, end to end --------------------------------------------------------


def test_a_three_class_cohort_trains_predicts_and_calibrates() -> None:
    """No critical patient (as in many studies): MA-CLR trains in cross-validation, predicts better
    than chance out of fold, and its risk is calibrated and shown - the crash of issue 17."""
    import torch

    from scoring.core.severity.bundle import TrainConfig, predict
    from scoring.core.severity.synth import ZONES_12, synthetic_cohort
    from scoring.core.severity.training import cv_table, oof_predictions, train

    samples = [s for s in synthetic_cohort(n_patients=120, seed=5) if s.label < 3]  # 90 patients
    y = np.array([s.label for s in samples])
    assert set(y) == {0, 1, 2}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the training command: tiny networks train faster on one thread
    try:
        oof = oof_predictions(samples, ZONES_12, kinds=("ma_clr",), folds=3, seeds=(0,), cfg=TrainConfig(epochs=40))
        final = train("ma_clr", samples, ZONES_12, TrainConfig(epochs=40))
    finally:
        torch.set_num_threads(threads)
    probs = oof["ma_clr"][0]
    assert probs.shape == (len(samples), 4) and np.allclose(probs.sum(1), 1.0)
    table = cv_table(y, oof)["ma_clr"]
    assert table["accuracy_mean"] > 0.45  # 0.59 measured; chance is about 1/3
    assert probs[:, 3].mean() < 0.1  # the absent class gets little mass
    cal = calibrate(oof["ma_clr"], y, [s.patient for s in samples])
    assert np.isfinite(cal.temperature) and 0 <= cal.ece <= 1
    out = predict(final, samples[:5])
    assert out["probs"].shape == (5, 4) and np.isfinite(out["attention"]).any()
