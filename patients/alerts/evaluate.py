"""Which rules hold for an exam or a blood gas: the findings the services turn into alerts.

Every exam rule reads the score of record (``patients.readings.selectors.record_scores``: the
clinician's reading, else the AI's draft) and says which it used: ``source`` is
:data:`SOURCE_CLINICIAN` when every zone it used is a clinician's reading, else
:data:`SOURCE_AI`; ``details`` keeps each zone's score and source.

* Previous exam: the patient's latest exam acquired before this one with any zone on record.
  Zones compare by site (``right-lateral-lower``), so exams of two protocols compare where their
  zones are the same place. A zone missing from either exam (no clip, or nothing read) never fires.
* Global score: LUSS / (3 x the protocol's zones), only when every zone of the protocol is on
  record - a partial exam never fires, however high its zones.
* New consolidation (decided here): a zone "has consolidation" when its record reading marks the
  finding ``consolidation`` or scores 3. For the AI's reading that finding is the model's
  consolidation head (probability > 0.5, ``ai_reading_record``): the same output the six-class
  scale's "consolidation" class is read from, frame by frame. The six-class class itself is not
  read: it stays the AI's after a clinician reads the zone, and would then contradict the record.
  ``details["evidence"]`` names what it was (``finding`` and/or ``score 3``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from patients.alerts.models import AlertKind, AlertRule
from patients.alerts.rules import THRESHOLDS
from patients.readings.selectors import ZoneRecord, record_scores
from patients.records.models import BloodGas, Exam
from patients.studies.protocols import get_protocol

SOURCE_CLINICIAN = "record: clinician reading"
SOURCE_AI = "AI, not reviewed"
SOURCE_GAS = "blood gas"


@dataclass(frozen=True)
class Finding:
    """A rule that holds: what the alert will say and keep."""

    kind: str
    key: str
    message: str
    source: str
    details: dict[str, Any] = field(default_factory=dict)


def threshold_of(rule: AlertRule) -> float:
    """The rule's threshold, its default when unset."""
    return float(rule.threshold if rule.threshold is not None else THRESHOLDS[rule.kind][0] or 0)


def _site(protocol: str, code: str) -> str:
    try:
        return get_protocol(protocol).zone(code).site
    except KeyError:
        return code


def _source(*records: ZoneRecord) -> str:
    return SOURCE_CLINICIAN if all(r.source == "clinician" for r in records) else SOURCE_AI


def _scored(zones: dict[str, ZoneRecord]) -> dict[str, ZoneRecord]:
    return {z: r for z, r in zones.items() if r.score is not None}


def previous_exam(exam: Exam) -> tuple[Exam | None, dict[str, ZoneRecord]]:
    """The patient's latest exam before ``exam`` with a zone on record, and its zones on record."""
    earlier = list(Exam.objects.filter(patient_id=exam.patient_id, acquired_at__lte=exam.acquired_at)
                   .exclude(pk=exam.pk).order_by("-acquired_at", "-pk"))
    earlier = [e for e in earlier if e.acquired_at < exam.acquired_at or e.pk < exam.pk]
    records = record_scores(exam_ids=[e.pk for e in earlier]) if earlier else {}
    for e in earlier:
        zones = _scored(records.get(e.pk, {}))
        if zones:
            return e, zones
    return None, {}


def _zone_pair(exam: Exam, zones: dict[str, ZoneRecord], prev: Exam,
               prev_zones: dict[str, ZoneRecord]) -> list[tuple[str, ZoneRecord, ZoneRecord]]:
    """(zone, now, before) for each zone on record in both exams (matched by site)."""
    before = {_site(prev.protocol, z): r for z, r in prev_zones.items()}
    return [(z, r, before[_site(exam.protocol, z)]) for z, r in zones.items() if _site(exam.protocol, z) in before]


def _zone_details(zone: str, now: ZoneRecord, then: ZoneRecord, prev: Exam, **extra: Any) -> dict[str, Any]:
    return {"zone": zone, "score": now.score, "source_now": now.source, "previous_score": then.score,
            "previous_zone": then.zone, "previous_source": then.source, "previous_exam": prev.pk, **extra}


def zone_worsened(exam: Exam, zones: dict[str, ZoneRecord], prev: Exam | None, prev_zones: dict[str, ZoneRecord],
                  threshold: float) -> list[Finding]:
    if prev is None:
        return []
    out = []
    for zone, now, then in _zone_pair(exam, zones, prev, prev_zones):
        assert now.score is not None and then.score is not None
        rise = now.score - then.score
        if rise >= threshold:
            out.append(Finding(
                AlertKind.ZONE_WORSENED, f"exam:{exam.pk}:zone:{zone}",
                f"Zone {zone} rose from {then.score} to {now.score} (+{rise} points) since the previous exam",
                _source(now, then), _zone_details(zone, now, then, prev, rise=rise, threshold=threshold)))
    return out


def _consolidation(r: ZoneRecord) -> list[str]:
    return [e for e, holds in (("finding", r.findings.get("consolidation", False)), ("score 3", r.score == 3)) if holds]


def new_consolidation(exam: Exam, zones: dict[str, ZoneRecord], prev: Exam | None,
                      prev_zones: dict[str, ZoneRecord]) -> list[Finding]:
    if prev is None:
        return []
    out = []
    for zone, now, then in _zone_pair(exam, zones, prev, prev_zones):
        evidence = _consolidation(now)
        if evidence and not _consolidation(then):
            who = "clinician" if now.source == "clinician" else "AI"
            out.append(Finding(
                AlertKind.NEW_CONSOLIDATION, f"exam:{exam.pk}:zone:{zone}",
                f"New consolidation in zone {zone} ({who}: {' and '.join(evidence)}), not at the previous exam",
                _source(now, then), _zone_details(zone, now, then, prev, evidence=evidence)))
    return out


def global_score(exam: Exam, zones: dict[str, ZoneRecord], threshold: float) -> list[Finding]:
    try:
        codes = get_protocol(exam.protocol).codes
    except KeyError:
        return []
    if not codes or any(code not in zones for code in codes):
        return []  # full coverage only
    luss = sum(int(zones[c].score or 0) for c in codes)
    maximum = 3 * len(codes)
    fraction = luss / maximum
    if fraction <= threshold:
        return []
    return [Finding(
        AlertKind.GLOBAL_SCORE, f"exam:{exam.pk}",
        f"LUSS {luss}/{maximum} is {fraction:.2f} of the maximum, above {threshold:g}",
        _source(*(zones[c] for c in codes)),
        {"luss": luss, "max": maximum, "fraction": round(fraction, 4), "threshold": threshold,
         "zones": {c: {"score": zones[c].score, "source": zones[c].source} for c in codes}})]


def exam_findings(exam: Exam, rules: dict[str, AlertRule]) -> list[Finding]:
    """The enabled rules that hold for ``exam`` on its score of record."""
    zones = _scored(record_scores(exam_ids=[exam.pk])[exam.pk])
    if not zones:
        return []
    prev, prev_zones = previous_exam(exam)
    out: list[Finding] = []
    on = {kind for kind, rule in rules.items() if rule.enabled}
    if AlertKind.ZONE_WORSENED in on:
        out += zone_worsened(exam, zones, prev, prev_zones, threshold_of(rules[AlertKind.ZONE_WORSENED]))
    if AlertKind.GLOBAL_SCORE in on:
        out += global_score(exam, zones, threshold_of(rules[AlertKind.GLOBAL_SCORE]))
    if AlertKind.NEW_CONSOLIDATION in on:
        out += new_consolidation(exam, zones, prev, prev_zones)
    return out


def gas_findings(gas: BloodGas, rules: dict[str, AlertRule]) -> list[Finding]:
    """The P/F rule for ``gas``, when enabled and its P/F is below the threshold."""
    rule = rules.get(AlertKind.PF_RATIO)
    pf = gas.pf_ratio
    if rule is None or not rule.enabled or pf is None:
        return []
    threshold = threshold_of(rule)
    if pf >= threshold:
        return []
    return [Finding(AlertKind.PF_RATIO, f"gas:{gas.pk}", f"P/F {pf:.0f} mmHg, below {threshold:g}", SOURCE_GAS,
                    {"pf": round(pf, 1), "pao2_mmhg": gas.pao2_mmhg, "fio2": gas.fio2, "threshold": threshold})]
