"""Severity now: the WHO level and the guideline class of the exam day, boundary by boundary."""
from __future__ import annotations

import pytest

from patients.records.severity_now import StateInputs, guideline_class, pf_ratio, severity_now, who_scale

#: A room-air patient far from every threshold: mild or moderate, WHO 1-4.
WELL = {"oxygen_support": "none", "spo2": 97.0, "respiratory_rate": 18.0}


def _class(**values: object) -> tuple[str | None, str | None]:
    now = severity_now(StateInputs(**{**WELL, **values}))  # type: ignore[arg-type]
    return now.guideline_low, now.guideline_high


def test_the_reported_first_exam_is_severe_now() -> None:
    """Issue 17: on oxygen with SpO2 91 % - shown as "moderate, 0 %" by the risk model."""
    now = severity_now(StateInputs(oxygen_support="nasal_cannula", spo2=91.0, respiratory_rate=24.0))
    assert (now.who_text, now.guideline, now.guideline_text) == ("5", "severe", "severe")
    assert now.criteria == ("SpO2 91 % <= 93 %",) and now.missing == ()
    assert now.who_meaning == "oxygen by mask or nasal prongs"


def test_the_reported_recovered_exam_is_not_severe_now() -> None:
    """Four days later, off oxygen with normal values - shown as "severe, 100 %" by the risk model."""
    now = severity_now(StateInputs(oxygen_support="none", spo2=96.0, respiratory_rate=17.0, pao2_mmhg=85.0,
                                   fio2=0.21))
    assert (now.who_low, now.who_high, now.guideline) == (1, 4, "mild_or_moderate")
    assert now.guideline_text == "mild or moderate" and now.pf_ratio == pytest.approx(404.8, abs=0.05)
    assert now.who_meaning == "no oxygen; 4 if in hospital"


@pytest.mark.parametrize(("rr", "expected"), [(29.9, "mild_or_moderate"), (30.0, "severe"), (30.1, "severe")])
def test_respiratory_rate_boundary(rr: float, expected: str) -> None:
    assert _class(respiratory_rate=rr) == (expected, expected)


@pytest.mark.parametrize(("spo2", "expected"), [(93.1, "mild_or_moderate"), (93.0, "severe"), (85.0, "severe")])
def test_spo2_boundary(spo2: float, expected: str) -> None:
    assert _class(spo2=spo2) == (expected, expected)


@pytest.mark.parametrize(("pao2", "fio2", "expected"), [
    (150.5, 0.5, "mild_or_moderate"),  # P/F 301
    (150.0, 0.5, "severe"),  # P/F 300: inclusive
    (60.0, 0.21, "severe"),  # P/F 286 on room air although SpO2 reads 97 %
])
def test_pf_boundary(pao2: float, fio2: float, expected: str) -> None:
    assert _class(pao2_mmhg=pao2, fio2=fio2) == (expected, expected)


@pytest.mark.parametrize("oxygen", ["invasive", "ecmo"])
def test_mechanical_ventilation_is_critical_whatever_the_values(oxygen: str) -> None:
    now = severity_now(StateInputs(oxygen_support=oxygen, spo2=99.0, respiratory_rate=14.0))
    assert now.guideline == "critical" and now.missing == (() if oxygen == "ecmo" else ("P/F (a blood gas with "
                                                                                          "PaO2 and FiO2)",))


@pytest.mark.parametrize(("oxygen", "pf", "who"), [
    ("none", None, (1, 4)), ("nasal_cannula", None, (5, 5)), ("mask", None, (5, 5)), ("hfnc", None, (6, 6)),
    ("niv", None, (6, 6)), ("invasive", 150.0, (7, 8)), ("invasive", 149.9, (8, 9)), ("invasive", None, (7, 9)),
    ("ecmo", 80.0, (9, 9)), ("", None, (None, None)), (None, 400.0, (None, None)),
])
def test_who_scale_levels(oxygen: str | None, pf: float | None, who: tuple[int | None, int | None]) -> None:
    assert who_scale(oxygen, pf)[:2] == who


def test_who_text() -> None:
    assert severity_now(StateInputs(oxygen_support="invasive", pao2_mmhg=60, fio2=0.6)).who_text == "8-9"
    assert severity_now(StateInputs(oxygen_support="hfnc")).who_text == "6"
    assert severity_now(StateInputs()).who_text == "unknown"


def test_missing_inputs_are_named_and_never_guessed() -> None:
    # On oxygen with a good SpO2 and no gas: the SpO2 is not on room air, so P/F <= 300 stays possible.
    now = severity_now(StateInputs(oxygen_support="mask", spo2=96.0, respiratory_rate=20.0))
    assert (now.guideline_low, now.guideline_high) == ("mild_or_moderate", "severe")
    assert now.guideline is None and now.guideline_text == "mild or moderate or severe"
    assert now.missing == ("P/F (a blood gas with PaO2 and FiO2)",)
    # Nothing recorded near the exam.
    empty = severity_now(StateInputs())
    assert (empty.guideline_low, empty.guideline_high) == ("mild_or_moderate", "critical")
    assert empty.guideline_text == "undetermined (mild or moderate to critical)"
    assert empty.missing == ("oxygen support", "respiratory rate", "SpO2", "P/F, or SpO2 known to be on room air")
    # A met criterion decides "severe" even with gaps; without the oxygen support critical stays open.
    gaps = severity_now(StateInputs(respiratory_rate=34.0))
    assert (gaps.guideline_low, gaps.guideline_high, gaps.missing) == ("severe", "critical", ("oxygen support",))
    assert gaps.guideline_text == "severe or critical"


def test_room_air_spo2_stands_for_a_missing_pf_but_not_the_other_way_round() -> None:
    assert guideline_class("none", 94.0, 20.0, None)[:2] == ("mild_or_moderate", "mild_or_moderate")
    # A good P/F does not stand for a missing SpO2 (the guideline's criteria are alternatives).
    lo, hi, _, missing = guideline_class("none", None, 20.0, 350.0)
    assert (lo, hi, missing) == ("mild_or_moderate", "severe", ["SpO2"])


def test_pf_ratio() -> None:
    assert pf_ratio(90.0, 0.3) == pytest.approx(300.0)
    assert pf_ratio(None, 0.3) is None and pf_ratio(90.0, None) is None and pf_ratio(90.0, 0.0) is None


def test_as_dict_is_the_api_form() -> None:
    d = severity_now(StateInputs(oxygen_support="nasal_cannula", spo2=91.0, respiratory_rate=24.0)).as_dict()
    assert d["who_scale"] == "5" and d["guideline_class"] == "severe" and d["criteria"] == ["SpO2 91 % <= 93 %"]
    assert "ICU admission" in str(d["not_recorded"])
