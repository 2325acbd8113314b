"""Pure dashboard computations: exam/blood-gas pairing, correlation, trends and flags.

No Django import: everything here works on plain values so it is unit-tested against scipy on
hand-made data, and the selectors only translate rows to and from these types.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy import special

# Same constant as patients.models.KPA_TO_MMHG (duplicated to keep this module Django-free;
# a test pins them equal).
KPA_TO_MMHG = 7.50062
# Two-sided 95 % normal quantile for the Fisher z interval.
Z_975 = 1.959963984540054

SCORES: dict[str, str] = {
    "luss": "Global LUS score",
    "mean": "Mean zone score",
    "severity": "Severity class (0 mild, 1 moderate, 2 severe, 3 critical)",
    "severe_prob": "P(severe or critical)",
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

    ``score``: ``luss`` (global LUS score), ``mean`` (mean zone score), ``severity`` (ordinal
    0 mild .. 3 critical) or ``severe_prob`` (P(severe or critical)). ``gas``: ``paco2``,
    ``pao2`` or ``pf`` (PaO2/FiO2). ``unit``: ``mmHg`` or ``kPa`` for the pressures; the P/F
    ratio is conventionally always in mmHg, so ``unit`` is forced to ``mmHg`` for ``pf``.
    """

    score: str = "luss"
    gas: str = "paco2"
    window_hours: float = DEFAULT_WINDOW_HOURS
    unit: str = "mmHg"

    @property
    def score_label(self) -> str:
        return SCORES[self.score]

    @property
    def gas_label(self) -> str:
        return f"{GASES[self.gas]} ({self.unit})"


def parse_correlation_params(query: Mapping[str, Any]) -> CorrelationParams:
    """Read ``score``, ``gas``, ``window_hours`` and ``unit`` from a query mapping.

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
    return CorrelationParams(score=score, gas=gas, window_hours=window, unit=unit)


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


# --- pairing -------------------------------------------------------------------------------


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


# --- correlation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Correlation:
    """Pearson r with Fisher-z CI and two-sided p, Spearman rho and p, least-squares line.

    Every figure is None when ``n < 3`` (or when a variable is constant) and ``message`` says why.
    """

    n: int
    pearson_r: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    spearman_rho: float | None = None
    spearman_p: float | None = None
    slope: float | None = None
    intercept: float | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "pearson_r": self.pearson_r, "p_value": self.p_value, "ci_low": self.ci_low,
            "ci_high": self.ci_high, "spearman_rho": self.spearman_rho, "spearman_p": self.spearman_p,
            "slope": self.slope, "intercept": self.intercept, "message": self.message,
        }


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> tuple[float | None, float, float, float]:
    """(r or None when a variable is constant, sxx, sxy, syy)."""
    n = len(xs)
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys))
    if sxx == 0 or syy == 0:
        return None, sxx, sxy, syy
    r = sxy / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r)), sxx, sxy, syy


def correlation_p_value(r: float, n: int) -> float:
    """Two-sided p of H0: rho = 0, from t = r sqrt((n-2)/(1-r^2)) with n-2 degrees of freedom."""
    df = n - 2
    if abs(r) >= 1.0:
        return 0.0
    t2 = r * r * df / (1.0 - r * r)
    # P(|T| > t) = I_{df/(df+t^2)}(df/2, 1/2): the regularised incomplete beta, as scipy does.
    return float(min(1.0, special.betainc(df / 2.0, 0.5, df / (df + t2))))


def fisher_ci(r: float, n: int, z: float = Z_975) -> tuple[float, float]:
    """Confidence interval of Pearson r: tanh(atanh(r) -+ z / sqrt(n - 3)).

    n = 3 leaves no degree of freedom for the interval: (-1, 1). |r| = 1 gives (r, r).
    """
    if abs(r) >= 1.0:
        return r, r
    if n <= 3:
        return -1.0, 1.0
    zr = math.atanh(r)
    half = z / math.sqrt(n - 3)
    return math.tanh(zr - half), math.tanh(zr + half)


def rank_average(values: Sequence[float]) -> list[float]:
    """Ranks 1..n, ties sharing their average rank (as scipy.stats.rankdata 'average')."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        avg = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    return ranks


def correlate(xs: Sequence[float], ys: Sequence[float]) -> Correlation:
    """Pearson (with 95 % Fisher CI, two-sided p), Spearman and the least-squares line of y on x."""
    if len(xs) != len(ys):
        raise ValueError(f"xs has {len(xs)} values but ys has {len(ys)}")
    n = len(xs)
    if n < 3:
        return Correlation(n=n, message=f"Only {n} paired exam{'s' if n != 1 else ''}: at least 3 are needed.")
    r, sxx, sxy, _ = _pearson(xs, ys)
    slope = intercept = None
    if sxx > 0:
        slope = sxy / sxx
        intercept = math.fsum(ys) / n - slope * math.fsum(xs) / n
    if r is None:
        return Correlation(n=n, slope=slope, intercept=intercept,
                           message="One of the variables is constant: no correlation can be computed.")
    ci_low, ci_high = fisher_ci(r, n)
    rho, _, _, _ = _pearson(rank_average(xs), rank_average(ys))
    return Correlation(
        n=n, pearson_r=r, p_value=correlation_p_value(r, n), ci_low=ci_low, ci_high=ci_high,
        spearman_rho=rho, spearman_p=None if rho is None else correlation_p_value(rho, n),
        slope=slope, intercept=intercept,
    )


@dataclass(frozen=True)
class RepeatedCorrelation:
    """Repeated-measures correlation (Bakdash & Marusich 2017, as R's ``rmcorr``).

    The common within-patient association: every patient keeps their own intercept, all share
    one slope. Exams of one patient are not independent, so this, not the pooled Pearson r, is
    the figure for "does the gas move with the score in a patient". Only patients with at least
    two pairs count; ``df = n - patients - 1``. Figures are None (``message`` says why) when
    ``df < 2`` or nothing varies within patients.
    """

    n: int  # pairs from patients with >= 2 pairs
    patients: int
    df: int
    r: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    slope: float | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "patients": self.patients, "df": self.df, "r": self.r, "p_value": self.p_value,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "slope": self.slope, "message": self.message}


def repeated_measures_correlation(xs: Sequence[float], ys: Sequence[float],
                                  groups: Sequence[Hashable]) -> RepeatedCorrelation:
    """r_rm = sum(x'y') / sqrt(sum(x'^2) sum(y'^2)) over values centred on their patient's means.

    With df = N - k - 1 the p-value is the t test of r on df degrees of freedom and the 95 % CI
    is tanh(atanh(r) -+ z / sqrt(df - 1)) - r behaves like a Pearson r of df + 2 points. This
    reproduces rmcorr's published example (Bland & Altman 1995: r -0.507, df 38, p 0.00085,
    CI -0.707 to -0.232).
    """
    if not len(xs) == len(ys) == len(groups):
        raise ValueError(f"xs, ys and groups differ in length ({len(xs)}, {len(ys)}, {len(groups)})")
    by: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    kept = [idx for idx in by.values() if len(idx) >= 2]
    n, k = sum(len(idx) for idx in kept), len(kept)
    df = n - k - 1
    if df < 2:
        return RepeatedCorrelation(n=n, patients=k, df=max(df, 0),
                                   message="Too few patients with two or more paired exams "
                                           f"({k} patients, {n} pairs): at least 4 pairs from them are needed.")
    sxx = sxy = syy = 0.0
    for idx in kept:
        mx = math.fsum(xs[i] for i in idx) / len(idx)
        my = math.fsum(ys[i] for i in idx) / len(idx)
        sxx += math.fsum((xs[i] - mx) ** 2 for i in idx)
        syy += math.fsum((ys[i] - my) ** 2 for i in idx)
        sxy += math.fsum((xs[i] - mx) * (ys[i] - my) for i in idx)
    if sxx == 0 or syy == 0:
        return RepeatedCorrelation(n=n, patients=k, df=df,
                                   message="One of the variables does not change within any patient.")
    r = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
    low, high = fisher_ci(r, df + 2)
    return RepeatedCorrelation(n=n, patients=k, df=df, r=r, p_value=correlation_p_value(r, df + 2),
                               ci_low=low, ci_high=high, slope=sxy / sxx)


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


@dataclass(frozen=True)
class ExamSummary:
    """What the flags look at for one exam: its time, global score and zone scores."""

    key: Hashable
    at: dt.datetime
    luss: float | None
    zones: Mapping[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Flag:
    kind: str  # "zone_worsened", "threshold_up", "threshold_down"
    exam: Hashable
    at: dt.datetime
    text: str
    zones: tuple[str, ...] = ()


def worsened_zones(previous: Mapping[str, int | None], current: Mapping[str, int | None], by: int = 2) -> list[str]:
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


def exam_flags(exams: Sequence[ExamSummary], threshold: float, zone_jump: int = 2) -> list[Flag]:
    """Flags between consecutive *scored* exams (time order): zones up by >= ``zone_jump``
    and global-score threshold crossings. Unscored exams are skipped, not treated as 0."""
    scored = [e for e in sorted(exams, key=lambda e: e.at) if e.luss is not None]
    flags: list[Flag] = []
    for prev, cur in zip(scored, scored[1:]):
        zones = worsened_zones(prev.zones, cur.zones, zone_jump)
        if zones:
            detail = ", ".join(f"{z} {prev.zones[z]}→{cur.zones[z]}" for z in zones)
            flags.append(Flag("zone_worsened", cur.key, cur.at, f"zone worsened by ≥{zone_jump}: {detail}",
                              tuple(zones)))
        crossing = threshold_crossing(prev.luss, cur.luss, threshold)
        if crossing == "up":
            flags.append(Flag("threshold_up", cur.key, cur.at,
                              f"global score rose to {cur.luss:g} (≥ {threshold:g}) from {prev.luss:g}"))
        elif crossing == "down":
            flags.append(Flag("threshold_down", cur.key, cur.at,
                              f"global score fell to {cur.luss:g} (< {threshold:g}) from {prev.luss:g}"))
    return flags


def day_since(at: dt.date, origin: dt.date | None) -> int | None:
    """Whole days from ``origin`` (admission) to ``at``; day 0 is the admission day."""
    if origin is None:
        return None
    return (at - origin).days
