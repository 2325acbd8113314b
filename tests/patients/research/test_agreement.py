"""Agreement between every pair of raters - clinicians, an imported rater, the AI - and each
against the record: figures equal scikit-learn's quadratic weighted kappa and a confusion matrix
counted directly."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient
from sklearn.metrics import cohen_kappa_score

from patients.readings.services import blind_read_start, imported_reading_set, reading_adjudicate, reading_create
from patients.research.agreement import RECORD_RATER, study_ratings
from tests.patients.readings.ward import AI, Ward

pytestmark = pytest.mark.django_db

ZONES = list(AI)
CLINICIAN = [0, 1, 2, 3, 0, 1, 2, 3, 1, 1, 2, 0]
SECOND = [0, 1, 3, 3, 1, 1, 2, 2, 1, 0]  # the first ten zones only
EXPERT = [1, 1, 2, 3, 0, 2, 2, 3, 1, 1, 3, 0]


def _direct(a: list[int], b: list[int]) -> list[list[int]]:
    matrix = [[0] * 4 for _ in range(4)]
    for x, y in zip(a, b, strict=True):
        matrix[x][y] += 1
    return matrix


def _expect(pair: dict[str, Any], a: list[int], b: list[int]) -> None:
    assert pair["n"] == len(a)
    assert pair["accuracy"] == pytest.approx(np.mean(np.array(a) == np.array(b)))
    assert pair["within1"] == pytest.approx(np.mean(np.abs(np.array(a) - np.array(b)) <= 1))
    assert pair["qwk"] == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))
    assert pair["confusion"] == _direct(a, b)


def test_every_pair_and_the_record_match_sklearn(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    ai = [AI[z] for z in ZONES]
    for zone, c, e in zip(ZONES, CLINICIAN, EXPERT, strict=True):
        reading_create(clip=ward.clips[zone], by=ward.clinician, score=c)
        imported_reading_set(clip=ward.clips[zone], rater_name="expert", by=ward.admin, score=e)
    for zone, s in zip(ZONES[:10], SECOND, strict=True):
        reading_create(clip=ward.clips[zone], by=ward.users["second"], score=s)
    # R3: the two clinicians disagree (2 vs 3); the adjudication (3) becomes the record.
    reading_adjudicate(clip=ward.clips["R3"], by=ward.admin, score=3)
    data = api_for(ward.researcher).get(f"/api/v1/studies/{ward.study.pk}/agreement/",
                                        {"rater": "rw-clinician"}).json()
    assert data["everyone"] == ["expert", "rw-clinician", "rw-second", "model:test-model-1", "clinician-override",
                                RECORD_RATER]
    assert data["raters"] == ["expert", "rw-clinician", "rw-second", "clinician-override"]
    _expect(data, CLINICIAN, ai)  # the rater-vs-model figures at the top, as before
    pairs = {(p["a"], p["b"]): p for p in data["pairs"]}
    assert len(pairs) == 15  # 6 raters, every pair once
    # The record: the latest of the two clinicians on the first ten zones, the adjudication on R3.
    record = [*SECOND[:10], *CLINICIAN[10:]]
    record[2] = 3
    _expect(pairs[("rw-clinician", "rw-second")], CLINICIAN[:10], SECOND)
    _expect(pairs[("expert", "rw-clinician")], EXPERT, CLINICIAN)
    _expect(pairs[("expert", "model:test-model-1")], EXPERT, ai)
    _expect(pairs[("model:test-model-1", RECORD_RATER)], ai, record)
    _expect(pairs[("rw-clinician", RECORD_RATER)], CLINICIAN, record)
    _expect(pairs[("expert", RECORD_RATER)], EXPERT, record)
    _expect(pairs[("clinician-override", RECORD_RATER)], record, record)


def test_zones_still_on_the_ai_are_not_the_record_and_blind_reads_are_left_out(ward: Ward) -> None:
    reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1)
    ratings = study_ratings(study=ward.study)
    assert ratings.scores[RECORD_RATER] == {ward.clips["R1"].pk: 1}  # the other zones are AI, not reviewed
    assert len(ratings.scores["model:test-model-1"]) == 12
    blind_read_start(exam=ward.exam, by=ward.users["second"])
    hidden = study_ratings(study=ward.study, user=ward.users["second"])
    assert hidden.scores.get("model:test-model-1", {}) == {} and hidden.scores[RECORD_RATER] == {}
