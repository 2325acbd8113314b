"""Receiving a DICOM instance from a machine: the one service that the DICOM receiver
(``lus_dicom_scp``, C-STORE) and DICOMweb STOW-RS both call.

:func:`instance_receive` refuses what can never become a clip (``ServiceError``, nothing stored),
then files the instance by the study's rules (``patients.receiving.mapping``): PatientID names the
patient, the Study Instance UID the exam (created on first sight, one per UID even under concurrent
associations), the study's zone tag and pattern the zone. A filed instance goes through the same
ingest as an upload (``patients.imaging.accept.clip_accept``: a pending clip checked, de-identified
and stored by the ingest worker, then scored). What the rules cannot file, or what would collide
with a clip already in its zone, waits in the study's inbox (``InboxItem``) with the reason.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any, Literal

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.imaging.accept import clip_accept
from patients.imaging.checks import IngestError, max_upload_bytes, too_large
from patients.imaging.models import ZoneClip
from patients.receiving import mapping
from patients.receiving.models import InboxItem, InboxState, ReceivedVia
from patients.records.models import Exam, Patient
from patients.studies import permissions
from patients.studies.models import Study


@dataclass(frozen=True)
class Received:
    """Where a received instance went.

    ``kind`` is ``"clip"`` (filed: ``clip`` is the pending clip the ingest worker checks, or the
    clip already holding these bytes, and ``exam`` its exam) or ``"inbox"`` (``inbox`` is the item
    waiting for a clinician, ``exam`` the exam it was resolved to, if any). ``reason`` says why it
    is in the inbox, or that the instance had already been received; '' for a new clip.
    """

    kind: Literal["clip", "inbox"]
    clip: ZoneClip | None
    inbox: InboxItem | None
    exam: Exam | None
    reason: str


def received_from(via: str, calling_aet: str) -> str:
    """The words the audit records for the sender: ``AE US01 via DICOM C-STORE``."""
    label = ReceivedVia(via).label
    return f"AE {calling_aet} via {label}" if calling_aet else f"via {label}"


def instance_receive(*, study: Study, data: bytes, via: str, calling_aet: str = "", by: Any = None) -> Received:
    """File one received DICOM instance (``data``: the DICOM file's bytes) in ``study``.

    ``via`` is a ``ReceivedVia`` value (``"dimse"`` for C-STORE, ``"stow"`` for STOW-RS);
    ``calling_aet`` the sender's AE title (C-STORE), recorded on the inbox item and in the audit.
    ``by`` is the signed-in user (STOW-RS), who must be allowed to write to the study; ``None`` is
    the DICOM receiver itself, which has no user: the caller has checked the sender against the
    study's ``dicom_calling_aets`` and the audit says "received from AE X via DICOM C-STORE".

    Raises ``ServiceError`` and stores nothing for input that can never be a clip (codes of
    :func:`mapping.header_read`: ``not_dicom``, ``bad_header``, ``not_an_image``, ``no_pixel_data``,
    ``bad_pixel_data``, ``unsupported_transfer_syntax``; ``study_archived``; ``too_large`` past
    ``MAX_UPLOAD_MB``; the ingest's other refusals); ``PermissionDenied`` when ``by`` may not write.
    The same bytes sent again answer with the clip (or waiting inbox item) already holding them.
    """
    if via not in ReceivedVia.values:
        raise ServiceError(f"unknown channel {via!r}; expected one of {', '.join(ReceivedVia.values)}",
                           code="bad_channel")
    if study.archived:
        raise ServiceError(f"study {study.name!r} is archived and receives nothing", code="study_archived",
                           status=403)
    if by is not None:
        permissions.require_write(by, study)
    if len(data) > max_upload_bytes():  # the inbox keeps what the upload limit would refuse
        raise too_large(max_upload_bytes())
    ds = mapping.header_read(data)
    facts = mapping.instance_facts(ds, study)
    sender = received_from(via, calling_aet)
    target = _target(study, facts)
    if isinstance(target, str):
        return _to_inbox(study, data, facts, reason=target, via=via, calling_aet=calling_aet, by=by, sender=sender)
    patient, exam, zone = target
    try:
        with transaction.atomic():
            exam = exam or _exam_for(patient, facts, by=by, sender=sender)
            result = clip_accept(exam=exam, upload=io.BytesIO(data), zone=zone, by=by,
                                 filename=f"{facts.sop_instance_uid or 'instance'}.dcm",
                                 received_from=sender)
    except IngestError as exc:
        if exc.status != 409:
            raise
        # A clip (or an upload being checked) already fills the zone: a clinician decides. (An exam
        # made in the rolled-back transaction is gone: the inbox names only one that exists.)
        exam = Exam.objects.filter(pk=exam.pk).first() if exam is not None else None
        return _to_inbox(study, data, facts, reason=exc.message, via=via, calling_aet=calling_aet, by=by,
                         sender=sender, patient=patient, exam=exam, zone=zone)
    reason = "" if result.created else "this instance was already received"
    return Received("clip", result.clip, None, result.clip.exam, reason)


_Target = tuple[Patient, Exam | None, str]


def _target(study: Study, facts: mapping.InstanceFacts) -> _Target | str:
    """(patient, existing exam or None, zone) the rules file the instance under, or why they cannot."""
    patient = mapping.patient_for(study, facts.patient_id)
    if patient is None:
        field = study.get_dicom_patient_match_display().lower()
        return (f"PatientID {facts.patient_id!r} names no single patient of this study (matched by {field})"
                if facts.patient_id else "the instance has no PatientID")
    uid = mapping.exam_uid(study, facts.study_instance_uid)
    if not uid:
        return "the instance has no Study Instance UID, so it cannot be grouped into an exam"
    exam = _existing_exam(patient, uid)
    if isinstance(exam, str):
        return exam
    zone = mapping.zone_for(study, facts.zone_value, exam.protocol if exam else None)
    if zone is None:
        return (f"{study.dicom_zone_tag} {facts.zone_value!r} names no zone of the "
                f"{exam.protocol if exam else study.protocol} protocol (pattern {study.dicom_zone_pattern})"
                if facts.zone_value else f"the instance has no {study.dicom_zone_tag} to read the zone from")
    return patient, exam, zone


def _existing_exam(patient: Patient, uid: str) -> Exam | None | str:
    """The patient's exam recorded with ``uid`` (or holding clips of it); a reason when the UID
    belongs to another patient of the study."""
    exam = Exam.objects.filter(patient=patient, study_instance_uid=uid).first()
    if exam is not None:
        return exam
    other = (Exam.objects.filter(patient__study_id=patient.study_id, study_instance_uid=uid)
             .exclude(patient=patient).select_related("patient").first())
    clip = (ZoneClip.objects.filter(exam__patient__study_id=patient.study_id, study_instance_uid=uid)
            .select_related("exam__patient").order_by("pk").first())
    owner = other.patient if other is not None else (clip.exam.patient if clip is not None else None)
    if owner is not None and owner.pk != patient.pk:
        return f"this Study Instance UID is already recorded for another patient of the study ({owner.code})"
    return clip.exam if clip is not None else None


def _exam_for(patient: Patient, facts: mapping.InstanceFacts, *, by: Any, sender: str) -> Exam:
    """The patient's exam of this Study Instance UID, created on first sight; concurrent
    associations meet on the ``one_exam_per_dicom_study`` constraint and share one exam."""
    study = patient.study
    uid = mapping.exam_uid(study, facts.study_instance_uid)
    acquired = facts.acquired_at or timezone.now()
    exam, created = Exam.objects.get_or_create(
        patient=patient, study_instance_uid=uid,
        defaults={"acquired_at": acquired, "protocol": study.protocol, "device": facts.device[:200],
                  "created_by": by})
    if created:
        audit_record(actor=by, action=AuditAction.CREATE, study=study, obj=exam, changes={
            "patient": {"old": None, "new": patient.pk}, "acquired_at": {"old": None, "new": acquired},
            "protocol": {"old": None, "new": exam.protocol}, "study_instance_uid": {"old": None, "new": uid},
            "received_from": sender})
    return exam


def _to_inbox(study: Study, data: bytes, facts: mapping.InstanceFacts, *, reason: str, via: str, calling_aet: str,
              by: Any, sender: str, patient: Patient | None = None, exam: Exam | None = None,
              zone: str | None = None) -> Received:
    """Keep the instance in the study's inbox with the reason; the same bytes waiting already
    answer with that item."""
    sha = hashlib.sha256(data).hexdigest()
    waiting = InboxItem.objects.filter(study=study, sha256=sha, state=InboxState.WAITING).first()
    if waiting is not None:
        return Received("inbox", None, waiting, waiting.exam, waiting.reason)
    if patient is None:
        patient = mapping.patient_for(study, facts.patient_id)
    if exam is None and patient is not None:
        found = _existing_exam(patient, mapping.exam_uid(study, facts.study_instance_uid))
        exam = found if isinstance(found, Exam) else None
    item = InboxItem(
        study=study, reason=reason, sha256=sha, size_bytes=len(data), received_via=via, calling_aet=calling_aet[:16],
        sop_class_uid=facts.sop_class_uid, sop_instance_uid=facts.sop_instance_uid,
        study_instance_uid=facts.study_instance_uid, series_instance_uid=facts.series_instance_uid,
        patient_identifier=facts.patient_id, series_description=facts.series_description,
        image_comments=facts.image_comments, zone_hint=(zone or _zone_hint(study, facts))[:8],
        acquired_at=facts.acquired_at, patient=patient, exam=exam)
    return _inbox_save(item, data, by=by, sender=sender)


def _zone_hint(study: Study, facts: mapping.InstanceFacts) -> str:
    return mapping.zone_for(study, facts.zone_value) or ""


def _inbox_save(item: InboxItem, data: bytes, *, by: Any, sender: str) -> Received:
    item.file.save(f"{item.sha256}.dcm", ContentFile(data), save=False)
    try:
        with transaction.atomic():
            item.save()
            audit_record(actor=by, action=AuditAction.CREATE, study=item.study, obj=item, changes={
                "reason": item.reason, "sha256": item.sha256, "sop_instance_uid": item.sop_instance_uid,
                "patient_identifier": item.patient_identifier, "received_from": sender})
    except IntegrityError:
        # The same bytes arrived at once on another association: that copy waits; drop this one.
        item.file.storage.delete(str(item.file.name))
        waiting = InboxItem.objects.get(study=item.study, sha256=item.sha256, state=InboxState.WAITING)
        return Received("inbox", None, waiting, waiting.exam, waiting.reason)
    return Received("inbox", None, item, item.exam, item.reason)
