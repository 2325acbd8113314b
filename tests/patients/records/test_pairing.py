"""Pairing of exams with blood gases (patients.records.pairing): the rules pinned by hand."""
from __future__ import annotations

import datetime as dt

from patients.records import pairing

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_pairing_takes_the_nearest_gas_within_the_window() -> None:
    exams = [pairing.ExamPoint("e1", "p1", h(0), 10), pairing.ExamPoint("e2", "p1", h(48), 20),
             pairing.ExamPoint("e3", "p1", h(100), 30)]
    gases = [pairing.GasPoint("far-before", "p1", h(-11), 41.0), pairing.GasPoint("near-after", "p1", h(3), 42.0),
             pairing.GasPoint("outside", "p1", h(48 + 12.5), 43.0), pairing.GasPoint("edge", "p1", h(100 - 12), 44.0)]
    pairs = pairing.pair_nearest(exams, gases, 12)
    assert [(p.exam, p.gas) for p in pairs] == [("e1", "near-after"), ("e3", "edge")]  # e2: only gas 12.5 h away
    assert pairs[0].hours_apart == 3.0 and pairs[1].hours_apart == -12.0
    assert pairs[0].score == 10 and pairs[0].value == 42.0


def test_pairing_tie_goes_to_the_earlier_gas_and_one_gas_per_exam() -> None:
    exams = [pairing.ExamPoint("e1", "p1", h(0), 5)]
    gases = [pairing.GasPoint("after", "p1", h(2), 50.0), pairing.GasPoint("before", "p1", h(-2), 40.0),
             pairing.GasPoint("later", "p1", h(5), 60.0)]
    pairs = pairing.pair_nearest(exams, gases, 12)
    assert len(pairs) == 1 and pairs[0].gas == "before" and pairs[0].hours_apart == -2.0


def test_pairing_stays_within_patient_and_skips_unknown_values() -> None:
    exams = [pairing.ExamPoint("e1", "p1", h(0), 5), pairing.ExamPoint("e2", "p2", h(0), 7),
             pairing.ExamPoint("e3", "p1", h(1), None)]
    gases = [pairing.GasPoint("g-p2", "p2", h(0.5), 50.0), pairing.GasPoint("g-p1-null", "p1", h(0.1), None),
             pairing.GasPoint("g-p1", "p1", h(4), 45.0)]
    pairs = pairing.pair_nearest(exams, gases, 6)
    assert [(p.exam, p.gas, p.group) for p in pairs] == [("e1", "g-p1", "p1"), ("e2", "g-p2", "p2")]


def test_gas_within_window_for_gaps() -> None:
    times = [h(-20), h(30)]
    assert not pairing.has_gas_within(h(0), times, 12)
    assert pairing.has_gas_within(h(0), times, 20)
    assert pairing.has_gas_within(h(40), times, 12)
    assert not pairing.has_gas_within(h(0), [], 12)
