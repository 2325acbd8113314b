"""A study's ward list: one row per patient with what a ward round looks at first.

Per patient: the latest score of record (the global LUS score of the latest exam with one,
normalised to its protocol as a share of the maximum, 3 x zones, with the raw score and its source:
the clinicians' record, the AI's reading not reviewed, or partly reviewed), its change since the
previous scored exam (in points of the maximum, and raw when both exams share a protocol), the
review state of the exam shown, the open alerts, the last blood gas (P/F and PaCO2, with its time)
and the days since admission (since the first exam when the admission date is unknown, as
:mod:`patients.records.chrono` counts them).

Researchers get pseudonym codes and day numbers only. The rows load in a fixed number of queries
whatever the number of patients or exams; :func:`sort_rows` orders them by any column, missing
values last in both directions, ties by patient code.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from patients.alerts.selectors import open_alert_counts
from patients.readings.selectors import ZoneRecord, record_scores, review_states
from patients.records import chrono
from patients.records.models import BloodGas, Exam, Patient
from patients.records.severity_now import pf_ratio
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.protocols import get_protocol

#: Review states in the order a ward round wants them: never signed, changed since signing, signed.
REVIEW_ORDER = {"draft": 0, "amended": 1, "reviewed": 2}
_GAS = ("sampled_at", "pao2_mmhg", "fio2", "paco2_mmhg")


def _review_rank(row: dict[str, Any]) -> int | None:
    return REVIEW_ORDER.get(row["review_status"]) if row["review_status"] else None


#: Sort key -> the row's value for it (None: missing, sorted last in both directions).
SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "code": lambda r: r["code"],
    "score": lambda r: r["score_pct"],
    "change": lambda r: r["change_pct"],
    "review": _review_rank,
    "alerts": lambda r: r["open_alerts"],
    "pf": lambda r: r["gas"]["pf"] if r["gas"] else None,
    "paco2": lambda r: r["gas"]["paco2"] if r["gas"] else None,
    "gas_at": lambda r: r["gas"]["at"] if r["gas"] else None,
    "days": lambda r: r["days"],
}


def sort_rows(rows: list[dict[str, Any]], key: str, direction: str = "asc") -> list[dict[str, Any]]:
    """``rows`` ordered by ``key`` (:data:`SORT_KEYS`), ``asc`` or ``desc``: stable (ties keep the
    patient-code order), rows without a value last whichever the direction."""
    value = SORT_KEYS[key]
    by_code = sorted(rows, key=lambda r: r["code"])
    present = [r for r in by_code if value(r) is not None]
    missing = [r for r in by_code if value(r) is None]
    return sorted(present, key=value, reverse=direction == "desc") + missing


def ward_rows(*, study: Study, user: Any, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One row per patient of ``study``, by code (see the module). Identifying fields (``name``,
    ``hospital_number``) only for users who may see them; times as ``user`` may see them."""
    identifying = permissions.can_see_identifying(user, study)
    now = now or timezone.now()
    patients = _patients(study, identifying)
    exams: dict[int, list[dict[str, Any]]] = {}
    for e in (Exam.objects.filter(patient__study=study).order_by("patient_id", "acquired_at", "pk")
              .values("id", "patient_id", "acquired_at", "protocol")):
        exams.setdefault(e["patient_id"], []).append(dict(e))
    ids = [e["id"] for ex in exams.values() for e in ex]
    records = record_scores(exam_ids=ids, user=user)
    states = review_states(exam_ids=ids)
    alerts = open_alert_counts(study)
    clocks = chrono.clocks_for(patients={p["id"]: p["admission_date"] for p in patients},
                               first_exam_at={pid: ex[0]["acquired_at"] for pid, ex in exams.items()},
                               shows_dates=identifying)
    rows = []
    for p in patients:
        clock = clocks[p["id"]]
        scores = [_exam_score(e, records.get(e["id"], {})) for e in exams.get(p["id"], [])]
        scored = [s for s in scores if s is not None]
        day = clock.day(now)
        rows.append({
            "id": p["id"], "code": p["code"], "name": p.get("name"), "hospital_number": p.get("hospital_number"),
            "page_url": reverse("patient-detail", args=[p["id"]]),
            "timeline_url": reverse("dashboard-patient-timeline", args=[p["id"]]),
            "exam_count": len(exams.get(p["id"], [])),
            **_latest(scored, clock, states),
            "open_alerts": alerts.get(p["id"], 0),
            "gas": _gas(p, clock),
            "days": None if day is None else math.floor(day), "day_zero": clock.origin_kind,
        })
    return rows


def _patients(study: Study, identifying: bool) -> list[dict[str, Any]]:
    """The study's patients by code, each with its latest blood gas's fields (``gas_<field>``): one query."""
    latest = BloodGas.objects.filter(patient_id=OuterRef("pk")).order_by("-sampled_at", "-pk")
    fields = ["id", "code", "admission_date"] + (["name", "hospital_number"] if identifying else [])
    return list(Patient.objects.filter(study=study)
                .annotate(**{f"gas_{f}": Subquery(latest.values(f)[:1]) for f in _GAS})
                .order_by("code").values(*fields, *(f"gas_{f}" for f in _GAS)))


def _exam_score(exam: dict[str, Any], zones: dict[str, ZoneRecord]) -> dict[str, Any] | None:
    """An exam's global score of record over its protocol's maximum (None: no zone scored)."""
    scored = [r for r in zones.values() if r.score is not None]
    if not scored:
        return None
    protocol = get_protocol(exam["protocol"])
    luss = sum(r.score for r in scored if r.score is not None)
    read = sum(1 for r in scored if r.source == "clinician")
    return {**exam, "luss": luss, "max_luss": protocol.max_score, "pct": round(100.0 * luss / protocol.max_score, 1),
            "zones": len(scored), "expected": len(protocol.codes), "read": read,
            "source": "ai" if read == 0 else "clinician" if read == len(scored) else "mixed"}


def _latest(scored: list[dict[str, Any]], clock: chrono.PatientClock,
            states: dict[int, Any]) -> dict[str, Any]:
    """The latest scored exam's score, source, review state, and its change since the previous one."""
    if not scored:
        return {"score": None, "score_pct": None, "change_pct": None, "change": None, "review_status": None,
                "exam": None}
    latest = scored[-1]
    previous = scored[-2] if len(scored) > 1 else None
    same_protocol = previous is not None and previous["protocol"] == latest["protocol"]
    return {
        "score": latest, "score_pct": latest["pct"],
        "change_pct": round(latest["pct"] - previous["pct"], 1) if previous else None,
        "change": latest["luss"] - previous["luss"] if previous and same_protocol else None,
        "previous": {"luss": previous["luss"], "max_luss": previous["max_luss"], "pct": previous["pct"],
                     "label": clock.label(previous["acquired_at"], with_time=False)} if previous else None,
        "review_status": states[latest["id"]].status,
        "exam": {"id": latest["id"], "label": clock.label(latest["acquired_at"]),
                 "url": reverse("exam-detail", args=[latest["id"]])},
    }


def _gas(p: dict[str, Any], clock: chrono.PatientClock) -> dict[str, Any] | None:
    """The patient's latest blood gas: P/F (mmHg), PaCO2 (mmHg), its time and its label."""
    at = p["gas_sampled_at"]
    if at is None:
        return None
    pf = pf_ratio(p["gas_pao2_mmhg"], p["gas_fio2"])
    return {"pf": None if pf is None else round(pf), "paco2": p["gas_paco2_mmhg"], "at": at,
            "label": clock.label(at)}

