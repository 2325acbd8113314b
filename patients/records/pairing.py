"""Pairing of exams with blood gases: each exam with the nearest gas of the same patient.

Pure (no Django): the dashboards' correlation pages and the research export pair the same way
from plain values, so both show the same pairs and the rules are unit-tested on hand-made data.
"""
from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExamPoint:
    """An exam's score at a time; ``group`` is the patient (gases only pair within it)."""

    key: Hashable
    group: Hashable
    at: dt.datetime
    score: float | None


@dataclass(frozen=True)
class GasPoint:
    """A blood-gas measurement (already converted to the wanted unit) at a time."""

    key: Hashable
    group: Hashable
    at: dt.datetime
    value: float | None


@dataclass(frozen=True)
class Pair:
    exam: Hashable
    gas: Hashable
    group: Hashable
    score: float
    value: float
    exam_at: dt.datetime
    gas_at: dt.datetime
    hours_apart: float  # gas time minus exam time: positive when the gas was drawn after the exam


def pair_nearest(exams: Iterable[ExamPoint], gases: Iterable[GasPoint], window_hours: float) -> list[Pair]:
    """Pair each exam with the nearest gas of the same group within +-``window_hours``.

    Rules: exams without a score and gases without a value are ignored (so the nearest gas
    *with the wanted measure* is used); each exam gets at most one gas, the nearest in time;
    on a tie (one gas before, one after, equally far) the earlier gas wins; a gas exactly at
    the window edge is included. A gas may pair with several exams when they are close in
    time (each exam is one observation). Pairs come back in exam order (group, time).
    """
    window = dt.timedelta(hours=window_hours)
    by_group: dict[Hashable, list[GasPoint]] = {}
    for g in gases:
        if g.value is not None:
            by_group.setdefault(g.group, []).append(g)
    times: dict[Hashable, list[dt.datetime]] = {}
    for group, items in by_group.items():
        items.sort(key=lambda g: g.at)
        times[group] = [g.at for g in items]
    pairs: list[Pair] = []
    for e in exams:
        if e.score is None or e.group not in by_group:
            continue
        items, ts = by_group[e.group], times[e.group]
        i = bisect.bisect_left(ts, e.at)
        best: GasPoint | None = None
        # Only the neighbours either side of the exam time can be nearest; scanning left to
        # right with a strict "<" keeps the earlier gas on ties.
        for j in (i - 1, i):
            if 0 <= j < len(items):
                cand = items[j]
                gap = abs(cand.at - e.at)
                if gap <= window and (best is None or gap < abs(best.at - e.at)):
                    best = cand
        if best is not None:
            assert best.value is not None
            pairs.append(Pair(
                exam=e.key, gas=best.key, group=e.group, score=float(e.score), value=float(best.value),
                exam_at=e.at, gas_at=best.at, hours_apart=(best.at - e.at).total_seconds() / 3600.0,
            ))
    return pairs


def has_gas_within(at: dt.datetime, gas_times: Sequence[dt.datetime], window_hours: float) -> bool:
    """Whether any of the sorted ``gas_times`` lies within +-``window_hours`` of ``at``."""
    window = dt.timedelta(hours=window_hours)
    i = bisect.bisect_left(gas_times, at - window)
    return i < len(gas_times) and gas_times[i] <= at + window
