"""The scoring benchmark reports the default weights' cross-validated quality beside the targets."""
from __future__ import annotations

import pytest

from benchmarks.bench_scoring import QUALITY_TARGETS, quality
from scoring.core.inference.scorer import load_scorer


def test_quality_reads_the_weights_cv_against_the_targets() -> None:
    meta = dict(load_scorer().meta)
    figures = quality(meta)
    assert set(figures) == set(QUALITY_TARGETS)
    for key, f in figures.items():
        assert f["mean"] == pytest.approx(meta["cv"][key]["mean"], abs=5e-4)
        assert f["sd"] == pytest.approx(meta["cv"][key]["sd"], abs=5e-4)
        assert f["target"] == QUALITY_TARGETS[key]


def test_quality_of_weights_without_cv_is_empty() -> None:
    assert quality({}) == {}
    assert quality({"cv": {"accuracy": {"mean": 0.5, "sd": 0.1}}}) == {
        "accuracy": {"mean": 0.5, "sd": 0.1, "target": 0.45}}
