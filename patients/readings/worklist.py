"""A study's review worklist: the exams waiting for a clinician, most urgent first.

An exam waits when it has clips and is ``draft`` (never signed) or ``amended`` (a reading changed
after sign-off). Priority, each criterion deciding only between exams tied on the ones before:

1. zones the AI was unsure of: its probability of its score below :data:`UNSURE_BELOW`, or the
   clip unlike its training clips (``in_domain`` False), most first;
2. zones whose AI score moved by 2 or more from the record score of the same zone at the
   patient's previous exam that has one, most first;
3. time since acquisition: the oldest exam first.

That is the ``urgent`` order. The layers above readings may add other orders of the same exams
(:func:`worklist_order_register`; scoring adds ``label-more``, the clips most worth labelling to
improve the model): readings cannot import them, so they register when their app is ready.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils import timezone

from patients.imaging.models import ZoneClip
from patients.readings.selectors import ZoneRecord, record_scores, review_states
from patients.records import chrono
from patients.records.models import Exam
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.protocols import get_protocol

UNSURE_BELOW = 0.5
MOVED_BY = 2
WAITING = ("draft", "amended")
URGENT = "urgent"
URGENT_LABEL = "Most urgent first"


@dataclass(frozen=True)
class WorklistItem:
    exam_id: int
    patient_id: int
    patient_code: str
    acquired_at: dt.datetime
    status: str  # "draft" | "amended"
    zones: int  # zones with a clip
    unsure: list[str]  # zones the AI was unsure of
    moved: list[str]  # zones whose AI score moved by >= 2 from the previous record
    unread: list[str]  # zones without a clinician reading

    @property
    def priority(self) -> tuple[int, int]:
        return len(self.unsure), len(self.moved)


def _unsure(r: ZoneRecord) -> bool:
    return (r.ai_confidence is not None and r.ai_confidence < UNSURE_BELOW) or r.ai_in_domain is False


def _site(protocol: str, code: str) -> str:
    """Where the zone is (``right-lateral-lower``), so exams of other protocols compare in the
    same place (a BLUE-6 R3 is a 12-zone R4); a code outside its protocol stays itself."""
    try:
        return get_protocol(protocol).zone(code).site
    except KeyError:
        return code


def _moved(zones: dict[str, ZoneRecord], previous: dict[str, int], protocol: str) -> list[str]:
    """Zones whose AI score moved by >= MOVED_BY from the same site's previous record; a zone
    missing from either exam never counts."""
    return [z for z, r in zones.items() if r.ai_score is not None and _site(protocol, z) in previous
            and abs(r.ai_score - previous[_site(protocol, z)]) >= MOVED_BY]


def worklist(*, study: Study, user: Any = None) -> list[WorklistItem]:
    """The study's exams waiting for review, in priority order (see the module). ``user``: an exam
    they read blind shows no AI reading, so it counts no unsure or moved zone."""
    exams = list(Exam.objects.filter(patient__study=study).order_by("patient_id", "acquired_at", "pk")
                 .values_list("pk", "patient_id", "patient__code", "acquired_at", "protocol"))
    ids = [e[0] for e in exams]
    records = record_scores(exam_ids=ids, user=user)
    states = review_states(exam_ids=ids)
    items: list[WorklistItem] = []
    previous: dict[int, dict[str, int]] = {}  # patient -> site -> latest record score so far
    for exam_id, patient_id, code, acquired_at, protocol in exams:
        zones = records.get(exam_id, {})
        before = previous.setdefault(patient_id, {})
        status = states[exam_id].status
        if zones and status in WAITING:
            items.append(WorklistItem(
                exam_id, patient_id, code, acquired_at, status, len(zones),
                unsure=[z for z, r in zones.items() if _unsure(r)], moved=_moved(zones, before, protocol),
                unread=[z for z, r in zones.items() if r.source != "clinician"]))
        before.update({_site(protocol, z): r.score for z, r in zones.items() if r.score is not None})
    return sorted(items, key=lambda i: (-i.priority[0], -i.priority[1], i.acquired_at, i.exam_id))


@dataclass(frozen=True)
class Ranked:
    """An exam in another order than the urgent one: its item, the order's value for it (None: the
    order cannot rank it), why it is there in words, and per zone the order's figures (JSON-able
    dicts, each with its ``text`` for the page), best first."""

    item: WorklistItem
    value: float | None
    why: str
    zones: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Reordered:
    """The waiting exams in an order: ``items``, what the order used in words (``note``, for the
    page's explanation) and the same as figures (``meta``, for the API)."""

    items: list[Ranked]
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorklistOrder:
    """Another order of the worklist: ``key`` (``?order=<key>``), the switch's ``label``, and
    ``rank(study, user, items)`` re-ordering the waiting exams (given in the urgent order)."""

    key: str
    label: str
    rank: Callable[[Study, Any, list[WorklistItem]], Reordered]


_ORDERS: dict[str, WorklistOrder] = {}


def worklist_order_register(order: WorklistOrder) -> None:
    """Add (or replace) an order of the worklist; called from a higher layer's ``AppConfig.ready``."""
    if order.key == URGENT:
        raise ValueError(f"{URGENT!r} is the worklist's own order")
    _ORDERS[order.key] = order


def worklist_orders() -> list[tuple[str, str]]:
    """(key, label) of every order, the urgent one first (the page's switch)."""
    return [(URGENT, URGENT_LABEL)] + [(o.key, o.label) for o in _ORDERS.values()]


def worklist_reordered(*, study: Study, user: Any = None, order: str) -> Reordered:
    """The waiting exams (:func:`worklist`) in ``order``; KeyError for an order nobody registered."""
    items = worklist(study=study, user=user)
    if order == URGENT:
        return Reordered([Ranked(i, None, "") for i in items])
    return _ORDERS[order].rank(study, user, items)


def worklist_count(*, study: Study) -> int:
    """How many exams of the study wait for review (the links' counts)."""
    ids = list(ZoneClip.objects.filter(exam__patient__study=study).values_list("exam_id", flat=True).distinct())
    return sum(1 for state in review_states(exam_ids=ids).values() if state.status in WAITING)


def worklist_counts(*, studies: list[Study]) -> dict[int, int]:
    """study id -> :func:`worklist_count` (the home page's list of studies)."""
    rows = ZoneClip.objects.filter(exam__patient__study__in=studies).values_list("exam_id", "exam__patient__study_id")
    study_of = dict(rows.distinct())
    counts = dict.fromkeys((s.pk for s in studies), 0)
    for exam_id, state in review_states(exam_ids=list(study_of)).items():
        if state.status in WAITING:
            counts[study_of[exam_id]] += 1
    return counts


def waiting_text(since: dt.datetime, now: dt.datetime) -> str:
    """How long an exam has waited, in words ("5 h", "3 days 4 h")."""
    hours = max(0, int((now - since).total_seconds() // 3600))
    days, rest = divmod(hours, 24)
    if not days:
        return f"{rest} h"
    return f"{days} day{'s' if days > 1 else ''}" + (f" {rest} h" if rest else "")


def worklist_page(*, study: Study, user: Any, order: str = URGENT) -> dict[str, Any]:
    """The worklist page's context: ``rows`` in ``order`` (an unknown order falls back to the
    urgent one; ``order`` says which was used), each item with its rank, the exam's time as the user
    may see it (``label``), how long it has waited (``waiting``: None for researchers, who see no
    dates), the exam page's address (``review_url`` opens its review mode) and the order's ``value``,
    ``why`` and ``zones``; ``note``: what the order used; ``orders``: (key, label) for the switch."""
    if order != URGENT and order not in _ORDERS:
        order = URGENT
    reordered = worklist_reordered(study=study, user=user, order=order)
    dates = permissions.can_see_identifying(user, study)
    clocks = chrono.study_clocks(study_id=study.pk, shows_dates=dates)
    now = timezone.now()
    rows = [{"item": r.item, "rank": n, "label": clocks[r.item.patient_id].label(r.item.acquired_at),
             "waiting": waiting_text(r.item.acquired_at, now) if dates else None,
             "exam_url": reverse("exam-detail", args=[r.item.exam_id]),
             "review_url": reverse("exam-detail", args=[r.item.exam_id]) + "?review=1",
             "value": r.value, "why": r.why, "zones": r.zones}
            for n, r in enumerate(reordered.items, start=1)]
    return {"rows": rows, "order": order, "note": reordered.note, "orders": worklist_orders()}
