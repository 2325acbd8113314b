"""The study inbox's writes: assign a waiting instance to patient, exam and zone, or discard it.

An inbox item holds a received DICOM instance that the study's mapping rules could not file on
their own (``patients.receiving.models.InboxItem``). :func:`inbox_item_assign` sends the held file
through the same ingest as an upload (``patients.imaging.accept.clip_accept``: a pending clip,
checked by the ``ingest`` worker), links the clip and marks the item assigned; the held file is
removed once that commits. :func:`inbox_item_discard` marks it discarded and removes the file.
Both are audited and refuse (``ServiceError``, nothing changed) an item that no longer waits.
"""
from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.imaging.accept import clip_accept, upload_remove
from patients.imaging.models import ZoneClip
from patients.receiving import mapping
from patients.receiving.models import InboxItem, InboxState
from patients.records.models import Exam, Patient
from patients.records.services import exam_create
from patients.studies import permissions


def _waiting(item: InboxItem) -> InboxItem:
    """The item's row, locked; refused when it was assigned or discarded meanwhile."""
    locked = InboxItem.objects.select_for_update().filter(pk=item.pk).first()
    if locked is None or locked.state != InboxState.WAITING:
        state = locked.get_state_display().lower() if locked is not None else "removed"
        raise ServiceError(f"this inbox item no longer waits (it was {state})", code="not_waiting", status=409)
    return locked


def _file_drop(name: str, storage: Any) -> None:
    if name:
        storage.delete(name)


def _held_file_release(locked: InboxItem) -> None:
    """Empty the item's file field now; delete the stored file once the transaction commits."""
    field: FieldFile = locked.file
    name, storage = str(field.name or ""), field.storage
    locked.file = ""  # type: ignore[assignment]
    transaction.on_commit(functools.partial(_file_drop, name, storage), robust=True)


def _exam_for(item: InboxItem, *, patient: Patient, exam: Exam | None, acquired_at: dt.datetime | None,
              by: Any) -> Exam:
    """The chosen exam of ``patient``, or a new one at ``acquired_at`` (the instance's time by default)."""
    if exam is not None:
        if exam.patient_id != patient.pk:
            raise ServiceError("the exam belongs to another patient", code="bad_exam")
        return exam
    when = acquired_at or item.acquired_at
    if when is None:
        raise ServiceError("choose an exam of the patient or give the new exam's date and time",
                           code="missing_exam")
    created = exam_create(patient=patient, acquired_at=when, by=by)
    uid = mapping.exam_uid(item.study, item.study_instance_uid)
    if uid and not Exam.objects.filter(patient=patient, study_instance_uid=uid).exists():
        Exam.objects.filter(pk=created.pk).update(study_instance_uid=uid)
        created.study_instance_uid = uid
    return created


def inbox_item_assign(*, item: InboxItem, patient: Patient, zone: str, by: Any, exam: Exam | None = None,
                      exam_acquired_at: dt.datetime | None = None, replace: bool = False) -> ZoneClip:
    """File the waiting ``item`` as ``zone`` of ``exam`` (or of a new exam of ``patient`` at
    ``exam_acquired_at``, the instance's own time by default) through the upload's ingest; the clip
    is pending until the ``ingest`` worker checks it. Returns the clip. Refuses a user who may not
    write, a patient of another study, an exam of another patient, an item that no longer waits,
    and whatever the ingest refuses (zone, format, a zone with a clip), leaving the item waiting
    and nothing stored."""
    return inbox_items_assign(items=[item], patient=patient, zones={item.pk: zone}, by=by, exam=exam,
                              exam_acquired_at=exam_acquired_at, replace=replace)[0]


def inbox_items_assign(*, items: Sequence[InboxItem], patient: Patient, zones: Mapping[int, str], by: Any,
                       exam: Exam | None = None, exam_acquired_at: dt.datetime | None = None,
                       replace: bool = False) -> list[ZoneClip]:
    """File several waiting items of one study (a series) into one exam, each as its zone in
    ``zones`` (item id -> zone): all of them or none (:func:`inbox_item_assign` for the refusals).
    A new exam takes the first item's time and Study Instance UID."""
    items = list({i.pk: i for i in items}.values())
    if not items:
        raise ServiceError("choose at least one received instance", code="no_items")
    study = items[0].study
    if any(i.study_id != study.pk for i in items):
        raise ServiceError("the instances belong to different studies", code="bad_items")
    permissions.require_write(by, study)
    if patient.study_id != study.pk:
        raise ServiceError("the patient belongs to another study", code="bad_patient")
    created: list[ZoneClip] = []
    try:
        with transaction.atomic():
            locked = [_waiting(i) for i in sorted(items, key=lambda i: i.pk)]
            target = _exam_for(locked[0], patient=patient, exam=exam, acquired_at=exam_acquired_at, by=by)
            by_pk = {i.pk: _assign(i, patient=patient, exam=target, zone=zones.get(i.pk, ""), by=by,
                                   replace=replace, created=created) for i in locked}
    except BaseException:
        for clip in created:
            upload_remove(clip)  # the rolled-back clip rows named them
        raise
    return [by_pk[i.pk] for i in items]


def _assign(locked: InboxItem, *, patient: Patient, exam: Exam, zone: str, by: Any, replace: bool,
            created: list[ZoneClip]) -> ZoneClip:
    """One locked item through ``clip_accept`` into ``exam``; marked assigned and audited."""
    with locked.file.open("rb") as held:
        result = clip_accept(exam=exam, upload=held, zone=zone, by=by, replace=replace,
                             filename=f"inbox-{locked.pk}.dcm")
    if result.created:
        created.append(result.clip)
    old_patient, old_exam = locked.patient_id, locked.exam_id
    _held_file_release(locked)
    locked.state, locked.clip, locked.patient, locked.exam = InboxState.ASSIGNED, result.clip, patient, exam
    locked.resolved_at, locked.resolved_by = timezone.now(), by
    locked.save(update_fields=["state", "clip", "patient", "exam", "resolved_at", "resolved_by", "file"])
    audit_record(actor=by, action=AuditAction.UPDATE, study=locked.study, obj=locked, changes={
        "state": {"old": InboxState.WAITING, "new": InboxState.ASSIGNED},
        "patient": {"old": old_patient, "new": patient.pk}, "exam": {"old": old_exam, "new": exam.pk},
        "zone": {"old": locked.zone_hint or None, "new": result.clip.zone},
        "clip": {"old": None, "new": result.clip.pk},
    })
    return result.clip


def inbox_item_discard(*, item: InboxItem, by: Any) -> InboxItem:
    """Mark the waiting ``item`` discarded; its held file is removed once that commits."""
    permissions.require_write(by, item.study)
    with transaction.atomic():
        locked = _waiting(item)
        _held_file_release(locked)
        locked.state, locked.resolved_at, locked.resolved_by = InboxState.DISCARDED, timezone.now(), by
        locked.save(update_fields=["state", "resolved_at", "resolved_by", "file"])
        audit_record(actor=by, action=AuditAction.UPDATE, study=locked.study, obj=locked, changes={
            "state": {"old": InboxState.WAITING, "new": InboxState.DISCARDED},
            "sha256": {"old": locked.sha256, "new": locked.sha256},
        })
    return locked
