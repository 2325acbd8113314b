"""What the exam pages and API say about how far a model's scores can be trusted."""
from __future__ import annotations

from scoring.selectors import model_cv_summary, score_confidence


def test_model_cv_summary_reads_the_weights_metadata() -> None:
    meta = {"cv": {"n_patients": 42, "accuracy": {"mean": 0.39912, "sd": 0.01}, "within1": {"mean": 0.78},
                   "spearman": {"mean": 0.3381}, "ece": {"mean": 0.0291}, "brier": {"mean": 0.709},
                   "qwk": {"mean": 0.33}}}
    assert model_cv_summary(meta) == {"accuracy": 0.399, "within1": 0.78, "spearman": 0.338, "ece": 0.029,
                                      "brier": 0.709, "n_patients": 42}
    # Older weights without calibration figures: those keys are simply absent.
    assert model_cv_summary({"cv": {"accuracy": {"mean": 0.4}}}) == {"accuracy": 0.4}
    assert model_cv_summary({}) is None and model_cv_summary(None) is None
    assert model_cv_summary({"cv": "not a dict"}) is None
    assert model_cv_summary({"cv": {"accuracy": {"mean": "x"}}}) is None


def test_confidence_is_the_probability_of_the_given_score() -> None:
    assert score_confidence([0.1, 0.2, 0.3, 0.4], 2) == 0.3
    assert score_confidence([0.1, 0.2], 3) is None and score_confidence(None, 0) is None
