"""Review tags for pages that sit below readings and cannot ask it themselves (``{% load review %}``):

* ``{% worklist_count study %}``: how many exams of a study wait for review (draft or amended) -
  the home page (``patients.studies``) and the study page (``patients.records``);
* ``{% clip_record clip as record %}``: a clip's score of record beside the AI's reading, as the
  user may see it (a blind read hides the AI) - the clip page (``patients.imaging``);
* ``{% exam_records exams as records %}``: exam id -> :class:`ExamRecord` (global score of record,
  its source, review status) - the patient page's exam list; ``{% latest_records patients as
  latest %}``: patient id -> the :class:`ExamRecord` of their latest exam - the study page;
* ``{% clip_readings clip as readings %}``: the clip's clinician readings, newest first - the clip page.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import template
from django.db.models import QuerySet

from patients.imaging.models import ZoneClip
from patients.readings.models import ZoneReading
from patients.readings.selectors import (
    CLINICIAN_SOURCES,
    ZoneRecord,
    record_scores,
    review_states,
    visible_readings,
)
from patients.readings.selectors import clip_record as _clip_record
from patients.readings.worklist import worklist_count as _worklist_count
from patients.records.models import Exam, Patient
from patients.studies.models import Study

register = template.Library()


@register.simple_tag
def worklist_count(study: Study) -> int:
    """Exams of ``study`` with clips that are draft (never signed) or amended."""
    return _worklist_count(study=study)


@register.simple_tag(takes_context=True)
def clip_record(context: dict[str, Any], clip: ZoneClip) -> ZoneRecord:
    """The clip's :class:`~patients.readings.selectors.ZoneRecord` for the page's user."""
    request = context.get("request")
    return _clip_record(clip=clip, user=getattr(request, "user", None))


@dataclass(frozen=True)
class ExamRecord:
    """An exam's global score of record for a list: the sum of its zones' records (None: no zone
    scored), how many of the scored zones a clinician read, and the review status."""

    luss: int | None
    zones: int  # zones with a score of record
    read: int  # of them, read by a clinician (or adjudicated)
    status: str  # draft | reviewed | amended

    @property
    def source(self) -> str:
        """"clinician", "ai" (AI, not reviewed) or "mixed" (some zones read)."""
        if self.read == 0:
            return "ai"
        return "clinician" if self.read == self.zones else "mixed"


def _exam_records(exam_ids: list[int], user: Any) -> dict[int, ExamRecord]:
    records = record_scores(exam_ids=exam_ids, user=user)
    states = review_states(exam_ids=exam_ids)
    out = {}
    for exam_id in exam_ids:
        scored = [r for r in records[exam_id].values() if r.score is not None]
        out[exam_id] = ExamRecord(sum(r.score for r in scored if r.score is not None) if scored else None,
                                  len(scored), sum(1 for r in scored if r.source == "clinician"),
                                  states[exam_id].status)
    return out


@register.simple_tag(takes_context=True)
def exam_records(context: dict[str, Any], exams: Iterable[Exam]) -> dict[int, ExamRecord]:
    """exam id -> :class:`ExamRecord` for the page's user (a fixed number of queries)."""
    request = context.get("request")
    return _exam_records([e.pk for e in exams], getattr(request, "user", None))


@register.simple_tag(takes_context=True)
def latest_records(context: dict[str, Any], patients: Iterable[Patient]) -> dict[int, ExamRecord]:
    """patient id -> the :class:`ExamRecord` of their latest exam with a score of record."""
    request = context.get("request")
    ids = [p.pk for p in patients]
    exams = list(Exam.objects.filter(patient_id__in=ids).order_by("patient_id", "-acquired_at", "-pk")
                 .values_list("pk", "patient_id"))
    records = _exam_records([pk for pk, _ in exams], getattr(request, "user", None))
    out: dict[int, ExamRecord] = {}
    for pk, patient_id in exams:
        if patient_id not in out and records[pk].luss is not None:
            out[patient_id] = records[pk]
    return out


@register.simple_tag(takes_context=True)
def clip_readings(context: dict[str, Any], clip: ZoneClip) -> QuerySet[ZoneReading]:
    """The clip's clinician and adjudication readings the page's user may see (a blind reader only
    their own), newest first."""
    request = context.get("request")
    return visible_readings(clip=clip, user=getattr(request, "user", None)).filter(source__in=CLINICIAN_SOURCES)


@register.filter
def get_item(mapping: dict[Any, Any] | None, key: Any) -> Any:
    """``{{ mapping|get_item:key }}``: a dict lookup by a variable key (None when absent)."""
    return None if mapping is None else mapping.get(key)
