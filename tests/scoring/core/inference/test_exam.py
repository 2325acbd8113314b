from __future__ import annotations

import pytest

from scoring.core.inference.exam import ZONES_12, ZONES_BLUE6, exam_score


def test_full_12_zone_exam() -> None:
    scores = dict(zip(ZONES_12, [0, 1, 2, 3, 0, 1, 2, 2, 0, 0, 1, 3], strict=True))
    ex = exam_score(scores)
    assert ex.global_score == 15
    assert ex.max_score == 36
    assert ex.mean_zone_score == pytest.approx(15 / 12)
    assert (ex.worst_zone, ex.worst_score) == ("R4", 3)  # first zone with the maximum
    assert ex.zones_ge2 == ["R3", "R4", "L1", "L2", "L6"]
    assert ex.coverage == 1.0 and ex.missing == []


def test_missing_zones_are_not_zero() -> None:
    ex = exam_score({"R1": 2, "R2": None, "L1": 3}, expected=ZONES_BLUE6)
    assert ex.global_score == 5
    assert ex.max_score == 18
    assert ex.mean_zone_score == pytest.approx(2.5)  # 5 / 2 present zones, not 5 / 6
    assert ex.missing == ["R2", "R3", "L2", "L3"]
    assert ex.present == ["R1", "L1"]
    assert ex.coverage == pytest.approx(2 / 6)
    assert ex.worst_zone == "L1"


def test_protocol_inference_and_empty() -> None:
    assert exam_score({"R1": 1, "L3": 0}).max_score == 18  # BLUE-6 names only
    assert exam_score({"R5": 1}).max_score == 36
    ex = exam_score({}, expected=ZONES_12)
    assert ex.global_score == 0 and ex.mean_zone_score is None and ex.coverage == 0.0
    assert ex.worst_zone is None and len(ex.missing) == 12


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        exam_score({"R1": 4})
    with pytest.raises(ValueError):
        exam_score({"X9": 1}, expected=ZONES_BLUE6)
