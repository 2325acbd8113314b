"""The exam page's reads: each zone's score of record beside the AI's result, the review state
with its history of readings and signatures, the user's blind read and the severity.

The headline (``scores``) is :func:`scoring.selectors.exam_scores_payload`, the exam API's own
``scores`` block, so the page and ``GET /api/v1/exams/<id>/`` always say the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patients.dashboards import selectors
from patients.imaging.models import IN_FLIGHT
from patients.imaging.selectors import uploads_in_check
from patients.readings.models import FINDINGS, BlindRead, ZoneReading
from patients.readings.selectors import (
    CLINICIAN_SOURCES,
    ZoneRecord,
    exam_history,
    open_blind_exams,
    record_scores,
    review_states,
)
from patients.records.models import Exam
from patients.records.selectors import severity_now_for
from patients.studies import permissions
from patients.studies.protocols import get_protocol
from scoring.core.inference.six_class import SIX_CLASSES
from scoring.models import SEVERITY_ORDER
from scoring.selectors import exam_scores_payload
from scoring.severity import risk_payload

#: Labels of the findings, in the readings' order (the reading form and the history).
FINDING_LABELS = {"a_lines": "A-lines", "b_lines": "B-lines", "confluent_b_lines": "confluent B-lines",
                  "consolidation": "consolidation", "pleural_irregularity": "pleural irregularity",
                  "effusion": "effusion"}


@dataclass(frozen=True)
class ExamView:
    """Who looks at the exam and what they may do there."""

    role: str
    can_write: bool  # clinicians and study admins of a study that is not archived
    identifying: bool  # may see free text (comments, reasons) and dates
    blind: bool  # the user is reading the exam blind now


def exam_view(*, exam: Exam, user: Any, role: str) -> ExamView:
    return ExamView(role, role in permissions.WRITE_ROLES and not exam.study.archived,
                    permissions.can_see_identifying(user, exam.study),
                    bool(open_blind_exams(user=user, exam_ids=[exam.pk])))


def ai_zone(zone: dict[str, Any] | None) -> dict[str, Any] | None:
    """The AI's side of a zone of the ``scores`` block (None when the AI's reading is not shown)."""
    if zone is None or zone["ai_score"] is None:
        return None
    return {"score": zone["ai_score"], "probs": zone["probs"] or [], "confidence": zone["confidence"],
            "in_domain": zone["in_domain"], "domain_distance": zone["domain_distance"],
            "findings": zone["ai_findings"]}


def latest_clinician_readings(exam: Exam, user: Any, *, blind: bool) -> dict[int, dict[str, Any]]:
    """clip id -> the latest clinician or adjudication reading (score, findings, comment, rater,
    at, source, blind); during the user's blind read only their own."""
    qs = ZoneReading.objects.filter(clip__exam=exam, source__in=CLINICIAN_SOURCES).order_by("clip_id", "-created_at",
                                                                                              "-pk")
    if blind:
        qs = qs.filter(rater_id=user.pk)
    latest: dict[int, dict[str, Any]] = {}
    for r in qs.values("clip_id", "score", "findings", "comment", "rater_name", "created_at", "source", "blind"):
        latest.setdefault(r["clip_id"], {"score": r["score"], "findings": r["findings"] or {}, "comment": r["comment"],
                                         "rater": r["rater_name"], "at": r["created_at"], "source": r["source"],
                                         "blind": r["blind"]})
    return latest


def _findings_text(findings: dict[str, Any] | None) -> str:
    return ", ".join(FINDING_LABELS[k] for k in FINDINGS if (findings or {}).get(k)) or "none"


def _zone_row(zone: Any, clip: Any, record: ZoneRecord | None, payload: dict[str, Any] | None,
              latest: dict[str, Any] | None, upload: Any = None) -> dict[str, Any]:
    """One row of the zone table: the record (``record``), the AI's result (``ai``), the latest
    clinician reading (``latest``), what the reading form starts from (``form``) and the zone's
    upload that is not a clip (yet): being checked, or failed with its error (``upload``)."""
    ai = ai_zone(payload)
    start = latest or ({"score": record.score, "findings": record.findings} if record and record.score is not None
                       else None)
    checked = (start or {}).get("findings") or {}
    return {
        "zone": zone, "clip": clip, "record": record, "ai": ai, "payload": payload, "latest": latest, "upload": upload,
        "findings_text": _findings_text(record.findings if record else None),
        "form": {"score": start["score"] if start else None,
                 "findings": [{"key": k, "label": FINDING_LABELS[k], "checked": bool(checked.get(k))}
                              for k in FINDINGS]},
    }


def zone_rows(exam: Exam, user: Any, scores: dict[str, Any], *, blind: bool) -> list[dict[str, Any]]:
    """The protocol's zones in anatomical order, each with its clip (or None) and reads."""
    clips = {c.zone: c for c in exam.clips.all()}
    uploads: dict[str, Any] = {}
    for upload in uploads_in_check(exam=exam):
        uploads.setdefault(upload.zone, upload)  # the zone's latest
    by_zone = {z["zone"]: z for z in scores["zones"]}
    records = record_scores(exam_ids=[exam.pk], user=user)[exam.pk]
    latest = latest_clinician_readings(exam, user, blind=blind)
    return [_zone_row(z, clips.get(z.code), records.get(z.code), by_zone.get(z.code),
                      latest.get(clips[z.code].pk) if z.code in clips else None, uploads.get(z.code))
            for z in get_protocol(exam.protocol).zones]


def _checking(row: dict[str, Any]) -> bool:
    """The zone has an upload a worker is still checking."""
    return row["upload"] is not None and row["upload"].status in IN_FLIGHT


def severity_context(exam: Exam) -> dict[str, Any] | None:
    """The risk of a severe course (:func:`scoring.severity.risk_payload`: calibrated, clipped, with
    the model's CV figures) with its course-class probabilities and the zone attention, largest
    first; None before the model has run."""
    risk = risk_payload(exam=exam)
    if risk is None:
        return None
    attention = sorted((risk.get("zone_attention") or {}).items(), key=lambda kv: -kv[1])
    return {
        **risk,
        "pct": round(100 * risk["probability"]),
        "classes": [{"label": str(c.label), "value": c.value, "pct": round(100 * p)}
                    for c, p in zip(SEVERITY_ORDER, risk["class_probabilities"], strict=True)],
        "attention": [{"zone": z, "weight": w, "pct": round(100 * w)} for z, w in attention],
    }


def severity_now_context(exam: Exam) -> dict[str, Any]:
    """Severity now (the exam day's WHO level and guideline class) with the records it was read from."""
    state = severity_now_for(exams=[(exam.pk, exam.patient_id, exam.acquired_at)])[exam.pk]
    return {**state.as_dict(), "guideline_css": state.now.guideline or "none",
            "clinical_when": _when_text(state.clinical_hours), "gas_when": _when_text(state.gas_hours)}


def _when_text(hours: float | None) -> str:
    """"2 h after the exam", "1.5 h before the exam", "at the exam"."""
    if hours is None:
        return ""
    if hours == 0:
        return "at the exam"
    return f"{abs(hours):g} h {'after' if hours > 0 else 'before'} the exam"


def six_class_card(exam: Exam, scores: dict[str, Any]) -> dict[str, Any] | None:
    """The AI's six-class severity card (``templates/dashboards/_six_class.html``): the exam payload's
    ``six_class`` (None during a blind read or without a stored result), each zone with its place in
    the protocol, and the scale's class values."""
    six = scores.get("six_class")
    if not six:
        return None
    protocols = [get_protocol(exam.protocol)]
    return {**six, "classes": [{"name": name, "value": value} for name, value in SIX_CLASSES],
            "zones": [{**z, "label": selectors.zone_label(z["zone"], protocols)} for z in six["zones"]]}


def _history(exam: Exam, user: Any) -> list[dict[str, Any]]:
    """The exam's readings and signatures, newest first; a signature with the LUSS it signed."""
    rows = exam_history(exam_id=exam.pk, user=user)
    for row in rows:
        if row["kind"] == "signature":
            row["luss"] = sum(v for v in (row.get("record") or {}).values() if v is not None)
    return rows


def exam_page(*, exam: Exam, user: Any, role: str) -> dict[str, Any]:
    """The exam page's context (less the upload form): zones, headline, review, history, blind read."""
    view = exam_view(exam=exam, user=user, role=role)
    scores = exam_scores_payload(exam=exam, user=user)
    zones = zone_rows(exam, user, scores, blind=view.blind)
    with_clip = [z for z in zones if z["clip"] is not None]
    unread = [z["zone"].code for z in with_clip if not (z["record"] and z["record"].source == "clinician")]
    review = review_states(exam_ids=[exam.pk])[exam.pk]
    return {
        "role": role, "can_write": view.can_write, "identifying": view.identifying,
        "is_admin": role in permissions.ADMIN_ROLES and not exam.study.archived,
        "zones": zones, "missing": [z["zone"].code for z in zones if z["clip"] is None and not _checking(z)],
        "uploads_checking": [z["upload"].pk for z in zones if _checking(z)],
        "scores": scores, "progress_pct": round(100 * (scores["progress"] or 0)),
        "six_class": six_class_card(exam, scores),
        "chest_zones": selectors.chest_diagram_zones(exam=exam, user=user),
        "severity": None if view.blind else severity_context(exam),
        "severity_now": severity_now_context(exam),
        "review": review,
        "history": _history(exam, user),
        "blind_read": BlindRead.objects.filter(exam=exam, reader_id=user.pk).first(),
        "blind": view.blind, "unread": unread, "read_zones": len(with_clip) - len(unread),
        "clip_zones": len(with_clip),
        "can_sign": view.can_write and bool(with_clip) and not view.blind and review.status != "reviewed",
        # A blind read comes before the user's own open reading of the exam (the service refuses it after).
        "can_read_blind": view.can_write and bool(with_clip) and not ZoneReading.objects.filter(
            clip__exam=exam, rater_id=user.pk, source__in=CLINICIAN_SOURCES, blind=False).exists(),
    }
