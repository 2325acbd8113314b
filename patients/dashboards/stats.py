"""Pure dashboard computations: correlation parameters, pressures, trends and flags.

No Django import: everything here works on plain values so it is unit-tested on hand-made data,
and the selectors only translate rows to and from these types. Exams are paired with blood
gases by :mod:`patients.records.pairing`; the correlation statistics computed on the pairs live
in :mod:`scoring.core.stats` (the one statistics module).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from patients.records.units import KPA_TO_MMHG

SCORES: dict[str, str] = {
    "luss": "Global LUS score of record",
    "mean": "Mean zone score of record",
    "severity": "Risk model's predicted course class (0 mild, 1 moderate, 2 severe, 3 critical; not the state "
                "at the exam)",
    "severe_prob": "Risk model's P(severe course): oxygen, ICU or death during the stay",
    "six_class": "AI six-class severity (Hu et al. 2021), 0-4",
}
GASES: dict[str, str] = {"paco2": "PaCO₂", "pao2": "PaO₂", "pf": "P/F ratio"}
UNITS = ("mmHg", "kPa")
SEVERITY_LABELS = ("mild", "moderate", "severe", "critical")
DEFAULT_WINDOW_HOURS = 12.0
MAX_WINDOW_HOURS = 24.0 * 14


# --- parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationParams:
    """What to correlate: ``score`` against ``gas`` paired within ``window_hours``, in ``unit``.

    ``score``: ``luss`` (global LUS score), ``mean`` (mean zone score), ``severity`` (the risk
    model's predicted course class, ordinal 0 mild .. 3 critical), ``severe_prob`` (its P(severe or
    critical course)) or ``six_class`` (the AI's exam
    severity on the six-class scale of Hu et al., 0-4: no clinician reads it). ``gas``: ``paco2``,
    ``pao2`` or ``pf`` (PaO2/FiO2). ``unit``: ``mmHg`` or ``kPa`` for the pressures; the P/F
    ratio is conventionally always in mmHg, so ``unit`` is forced to ``mmHg`` for ``pf``.
    ``reviewed``: only the exams a clinician signed off.
    """

    score: str = "luss"
    gas: str = "paco2"
    window_hours: float = DEFAULT_WINDOW_HOURS
    unit: str = "mmHg"
    reviewed: bool = False  # only exams a clinician signed off (reviewed, or amended since)

    @property
    def score_label(self) -> str:
        return SCORES[self.score]

    @property
    def gas_label(self) -> str:
        return f"{GASES[self.gas]} ({self.unit})"


def parse_correlation_params(query: Mapping[str, Any]) -> CorrelationParams:
    """Read ``score``, ``gas``, ``window_hours``, ``unit`` and ``reviewed`` from a query mapping.

    Missing or empty values take the defaults; invalid ones raise ``ValueError`` naming the
    parameter and the valid choices.
    """

    def get(name: str, default: str) -> str:
        raw = query.get(name)
        return default if raw in (None, "") else str(raw)

    score = get("score", "luss")
    if score not in SCORES:
        raise ValueError(f"score={score!r}: expected one of {', '.join(SCORES)}")
    gas = get("gas", "paco2")
    if gas not in GASES:
        raise ValueError(f"gas={gas!r}: expected one of {', '.join(GASES)}")
    unit_raw = get("unit", "mmHg")
    unit = {"mmhg": "mmHg", "kpa": "kPa"}.get(unit_raw.lower())
    if unit is None:
        raise ValueError(f"unit={unit_raw!r}: expected mmHg or kPa")
    window_raw = get("window_hours", str(DEFAULT_WINDOW_HOURS))
    try:
        window = float(window_raw)
    except ValueError:
        raise ValueError(f"window_hours={window_raw!r} is not a number") from None
    if not (0 < window <= MAX_WINDOW_HOURS) or math.isnan(window):
        raise ValueError(f"window_hours={window_raw!r}: expected more than 0 and at most {MAX_WINDOW_HOURS:g}")
    if gas == "pf":
        unit = "mmHg"
    reviewed_raw = get("reviewed", "0").strip().lower()
    if reviewed_raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"reviewed={reviewed_raw!r}: expected 1 or 0")
    return CorrelationParams(score=score, gas=gas, window_hours=window, unit=unit,
                             reviewed=reviewed_raw in ("1", "true", "yes"))


def convert_pressure(value_mmhg: float | None, unit: str) -> float | None:
    """A partial pressure stored in mmHg, expressed in ``unit`` (``mmHg`` or ``kPa``)."""
    if value_mmhg is None:
        return None
    if unit == "mmHg":
        return value_mmhg
    if unit == "kPa":
        return value_mmhg / KPA_TO_MMHG
    raise ValueError(f"unit {unit!r}: expected mmHg or kPa")


def pf_ratio(pao2_mmhg: float | None, fio2: float | None) -> float | None:
    """PaO2/FiO2 in mmHg; None when either is unknown (or FiO2 is 0)."""
    if pao2_mmhg is None or not fio2:
        return None
    return pao2_mmhg / fio2


def severity_ordinal(label: str | None) -> int | None:
    """mild 0, moderate 1, severe 2, critical 3; None for no prediction."""
    if label is None:
        return None
    return SEVERITY_LABELS.index(label)


# --- trends and flags ----------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """Change of a score against the previous exam: delta and an arrow (up = worse for LUS)."""

    delta: float | None
    arrow: str
    direction: str  # "worse", "better", "same" or "" (no previous score)


def trend(current: float | None, previous: float | None) -> Trend:
    """Delta of ``current`` vs ``previous`` (None when either is unknown)."""
    if current is None or previous is None:
        return Trend(None, "", "")
    delta = current - previous
    if delta > 0:
        return Trend(delta, "↑", "worse")
    if delta < 0:
        return Trend(delta, "↓", "better")
    return Trend(delta, "→", "same")


def default_threshold(n_zones: int) -> int:
    """Half of the maximum global score (3 per zone): 18 for 12 zones."""
    return (3 * n_zones) // 2


def normalised(luss: float | None, max_luss: float | None) -> float | None:
    """The global score over its maximum (0-1), so exams of different protocols share an axis."""
    if luss is None or not max_luss:
        return None
    return luss / max_luss


def coverage_text(scanned: int, expected: int) -> str:
    """``8/12 zones``: how much of its protocol an exam's score covers."""
    return f"{scanned}/{expected} zones"


@dataclass(frozen=True)
class Change:
    """Like with like: two exams compared on the zones scored at both (``zones`` of them).
    ``before``/``after`` sum those zones, ``mean_before``/``mean_after`` average them; all None
    when no zone was scored at both."""

    zones: int
    before: float | None
    after: float | None
    mean_before: float | None
    mean_after: float | None

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


def like_change(previous: Mapping[Any, int | None], current: Mapping[Any, int | None]) -> Change:
    """Change between two exams over the zones (keys: anatomical sites) scored at both: a zone
    missing from either exam never moves the figures."""
    common = [z for z, v in current.items() if v is not None and previous.get(z) is not None]
    if not common:
        return Change(0, None, None, None, None)
    before = float(sum(previous[z] or 0 for z in common))
    after = float(sum(current[z] or 0 for z in common))
    return Change(len(common), before, after, before / len(common), after / len(common))


@dataclass(frozen=True)
class ExamSummary:
    """What the flags look at for one exam: its time, global score and zone scores.

    ``zones`` are keyed by anatomical site (or code, within one protocol); ``names`` gives the
    code shown for a key. ``max_luss`` and ``expected`` (zones of its protocol) say whether two
    exams are comparable as wholes; left None, every exam counts as complete and alike."""

    key: Hashable
    at: dt.datetime
    luss: float | None
    zones: Mapping[Any, int | None] = field(default_factory=dict)
    max_luss: float | None = None
    expected: int | None = None
    names: Mapping[Any, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        scored = sum(1 for v in self.zones.values() if v is not None)
        return self.expected is None or scored >= self.expected


def comparable(previous: ExamSummary, current: ExamSummary) -> bool:
    """Both exams scored every zone of the same protocol: their global scores compare directly."""
    return previous.complete and current.complete and previous.max_luss == current.max_luss


def like_trend(previous: ExamSummary | None, current: ExamSummary | None) -> tuple[Trend, Change | None]:
    """The trend of ``current`` from ``previous``: the global scores when the exams are comparable,
    else the sum over the zones scored at both (the Change says how many)."""
    if previous is None or current is None:
        return trend(current.luss if current else None, None), None
    if comparable(previous, current):
        return trend(current.luss, previous.luss), None
    change = like_change(previous.zones, current.zones)
    return trend(change.after, change.before), change


@dataclass(frozen=True)
class Flag:
    kind: str  # "zone_worsened", "threshold_up", "threshold_down"
    exam: Hashable
    at: dt.datetime
    text: str
    zones: tuple[str, ...] = ()


def worsened_zones(previous: Mapping[Any, int | None], current: Mapping[Any, int | None],
                   by: int = 2) -> list[Any]:
    """Zones (in ``current``'s order) whose score rose by at least ``by``; unknown scores never count."""
    out = []
    for zone, score in current.items():
        before = previous.get(zone)
        if score is not None and before is not None and score - before >= by:
            out.append(zone)
    return out


def threshold_crossing(previous: float | None, current: float | None, threshold: float) -> str:
    """``up`` when the score reached the threshold from below, ``down`` when it fell below, else ``""``."""
    if previous is None or current is None:
        return ""
    if previous < threshold <= current:
        return "up"
    if current < threshold <= previous:
        return "down"
    return ""


def _crossing_flag(prev: ExamSummary, cur: ExamSummary, threshold: float, scale: float | None) -> Flag | None:
    """A threshold crossing between two scored exams, judged like with like.

    Comparable exams: the global score against the threshold (``threshold`` points of ``scale``,
    as the same fraction of the exam's own maximum). Otherwise the mean zone score over the zones
    scored at both exams against the same fraction of 3, so missing zones never make a crossing."""
    assert prev.luss is not None and cur.luss is not None
    if comparable(prev, cur):
        points = threshold if scale is None or cur.max_luss is None else threshold / scale * cur.max_luss
        crossing = threshold_crossing(prev.luss, cur.luss, points)
        verb = {"up": "rose to", "down": "fell to"}.get(crossing)
        sign = "≥" if crossing == "up" else "<"
        text = f"global score {verb} {cur.luss:g} ({sign} {points:g}) from {prev.luss:g}"
    else:
        change = like_change(prev.zones, cur.zones)
        full = scale or cur.max_luss or 3.0 * max(cur.expected or len(cur.zones), 1)
        level = 3.0 * threshold / full
        crossing = threshold_crossing(change.mean_before, change.mean_after, level)
        verb = {"up": "rose to", "down": "fell to"}.get(crossing)
        sign = "≥" if crossing == "up" else "<"
        text = (f"mean zone score over the {change.zones} zones scored at both exams {verb} "
                f"{change.mean_after or 0:.2f} ({sign} {level:.2f}) from {change.mean_before or 0:.2f}")
    if not crossing:
        return None
    return Flag(f"threshold_{crossing}", cur.key, cur.at, text)


def exam_flags(exams: Sequence[ExamSummary], threshold: float, zone_jump: int = 2,
               scale: float | None = None) -> list[Flag]:
    """Flags between consecutive *scored* exams (time order): zones up by >= ``zone_jump`` (on the
    zones scored at both) and threshold crossings (:func:`_crossing_flag`; ``threshold`` in points
    of ``scale``, the study protocol's maximum, or of each exam's own points when None).
    Unscored exams are skipped, not treated as 0; missing zones never raise a flag."""
    scored = [e for e in sorted(exams, key=lambda e: e.at) if e.luss is not None]
    flags: list[Flag] = []
    for prev, cur in zip(scored, scored[1:]):
        zones = worsened_zones(prev.zones, cur.zones, zone_jump)
        if zones:
            names = [cur.names.get(z, str(z)) for z in zones]
            detail = ", ".join(f"{n} {prev.zones[z]}→{cur.zones[z]}" for n, z in zip(names, zones))
            flags.append(Flag("zone_worsened", cur.key, cur.at, f"zone worsened by ≥{zone_jump}: {detail}",
                              tuple(names)))
        crossing = _crossing_flag(prev, cur, threshold, scale)
        if crossing:
            flags.append(crossing)
    return flags


def day_since(at: dt.date, origin: dt.date | None) -> int | None:
    """Whole days from ``origin`` (admission) to ``at``; day 0 is the admission day."""
    if origin is None:
        return None
    return (at - origin).days
