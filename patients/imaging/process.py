"""The worker's part of ingest: check a pending clip and make it ready, or failed.

:func:`clip_process` claims the clip with a conditional UPDATE (idempotent: a duplicate message,
or a clip already checked, is left alone), decodes the stored upload within the decode budgets,
refuses a DICOM of another patient of the study, de-identifies it when the study asks, writes the
de-identified DICOM and the frame cache through the storage API and marks it ``ready`` - sending
``clip_stored`` in that same transaction, so scoring's job commits with it. A file that cannot be
used marks the clip ``failed`` with the words and code a 400 would have carried, and its files are
removed: the zone is free again. Both outcomes are pushed to the exam's pages (``lusweb.live``).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from lusweb.errors import ServiceError
from lusweb.jsonable import jsonable
from lusweb.live import exam_publish
from lusweb.tasks import TRANSIENT_ERRORS
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.imaging.checks import FORMAT_SUFFIXES, IngestError, refuse_foreign_study_instance, text
from patients.imaging.core.framecache import frames_npz
from patients.imaging.decode import Decoded, decode_upload
from patients.imaging.dispatch import claim_timeout
from patients.imaging.models import ClipStatus, ZoneClip
from patients.imaging.signals import clip_stored

logger = logging.getLogger(__name__)

#: Errors that say nothing about the file: the database, or a storage reached over the network,
#: was unreachable. The clip goes back to pending and the task is retried; any other error is final.
TRANSIENT = TRANSIENT_ERRORS


#: What the check writes on a ready clip (the decoded fields, the stored files, the state).
READY_FIELDS = ["status", "checked_at", "error", "error_code", "original_filename", "codec", "frame_count", "fps",
                "rows", "columns", "manufacturer", "model_name", "transducer", "sop_instance_uid",
                "study_instance_uid", "meta", "file", "frames", "source"]


@dataclass(frozen=True)
class ClipProcessed:
    """A checked clip: ``ready``, or ``failed`` with the ``error`` that says why."""

    clip: ZoneClip
    error: IngestError | None


class _ClaimLost(Exception):
    """The clip was deleted, or taken over by another worker, while this one checked it."""


def _claim(clip_id: int) -> ZoneClip | None:
    """Take the clip when it waits for its check, or its worker's claim is dead; None otherwise."""
    now = timezone.now()
    dead = now - dt.timedelta(seconds=claim_timeout())
    taken = ZoneClip.all_objects.filter(pk=clip_id).filter(
        Q(status=ClipStatus.PENDING) | Q(status=ClipStatus.PROCESSING, claimed_at__lt=dead)
    ).update(status=ClipStatus.PROCESSING, claimed_at=now, attempts=F("attempts") + 1)
    if not taken:
        return None
    return ZoneClip.all_objects.select_related("exam__patient__study", "uploaded_by").get(pk=clip_id)


def clip_process(*, clip_id: int) -> ClipProcessed | None:
    """Check pending clip ``clip_id``: ready, or failed with the reason; None when it was not
    waiting for a check (already checked, being checked by a live worker, or deleted).

    Raises only the transient errors (``TRANSIENT``), after putting the clip back to pending.
    """
    clip = _claim(clip_id)
    if clip is None:
        return None
    upload_name = str(clip.received.name or "")
    if clip.attempts > int(settings.INGEST_MAX_ATTEMPTS):
        return _fail(clip, IngestError(
            f"checking this file stopped the worker {clip.attempts - 1} times; it was not stored",
            code="worker_lost"), written=[], upload_name=upload_name)
    written: list[str] = []
    try:
        decoded = decode_upload(clip)
        refuse_foreign_study_instance(exam=clip.exam, stored_uid=text(decoded.meta, "study_instance_uid", 64),
                                      source_uid=decoded.source_study_uid)
        _write_outputs(clip, decoded, written)
        _mark_ready(clip, decoded, upload_name=upload_name)
    except ServiceError as exc:  # the file's fault, or a clip_stored receiver refusing it
        return _fail(clip, IngestError(exc.message, code=exc.code, status=exc.status), written, upload_name)
    except SoftTimeLimitExceeded:
        return _fail(clip, IngestError(
            f"checking this file took longer than the {settings.INGEST_TIME_LIMIT} s limit (LUSWEB_INGEST_TIME_LIMIT);"
            " it was not stored", code="too_slow"), written, upload_name)
    except _ClaimLost:
        _remove(clip, written)
        return None
    except TRANSIENT:
        _remove(clip, written)
        _release(clip)
        raise
    except Exception as exc:
        logger.exception("checking clip %s failed", clip_id)
        return _fail(clip, IngestError(f"the file could not be checked ({exc.__class__.__name__}); it was not stored",
                                       code="processing_failed"), written, upload_name)
    return ClipProcessed(clip, None)


def _write_outputs(clip: ZoneClip, decoded: Decoded, written: list[str]) -> None:
    """Store the de-identified DICOM (when there is one) and the frame cache; every name written
    goes to ``written`` so a failure removes them."""
    if decoded.stored is not None:
        clip.file.save("deidentified.dcm", ContentFile(decoded.stored.data), save=False)
        written.append(str(clip.file.name))
    clip.frames.save("frames.npz", ContentFile(frames_npz(decoded.frames)), save=False)
    written.append(str(clip.frames.name))


def _fill(clip: ZoneClip, decoded: Decoded) -> None:
    """The decoded fields of the clip (its row is saved by the caller)."""
    meta, frames = decoded.meta, decoded.frames
    clip.codec = text(meta, "codec", 64) or text(meta, "transfer_syntax", 64)
    clip.frame_count, clip.rows, clip.columns = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
    clip.fps = decoded.fps
    clip.manufacturer, clip.model_name = text(meta, "manufacturer", 128), text(meta, "model", 128)
    clip.transducer = text(meta, "transducer", 128)
    if not (clip.manufacturer or clip.model_name):
        # Video and image files name no device: the exam's, as the clinician entered it.
        clip.model_name, clip.transducer = clip.exam.device[:128], clip.transducer or clip.exam.probe[:128]
    clip.sop_instance_uid = text(meta, "sop_instance_uid", 64)
    clip.study_instance_uid = text(meta, "study_instance_uid", 64)
    clip.meta = jsonable(meta)
    if decoded.stored is not None:
        # The uploaded name may carry the patient's name: keep only the zone and the type.
        clip.original_filename = f"{clip.zone.lower()}{FORMAT_SUFFIXES.get(clip.format, '')}"


def _mark_ready(clip: ZoneClip, decoded: Decoded, *, upload_name: str) -> None:
    """Replace the zone's clip when asked, make this one ready and announce it, in one transaction."""
    _fill(clip, decoded)
    drop_upload = clip.deidentified and not clip.exam.study.keep_original
    with transaction.atomic():
        if not ZoneClip.all_objects.select_for_update().filter(
                pk=clip.pk, status=ClipStatus.PROCESSING, claimed_at=clip.claimed_at).values_list("pk").first():
            raise _ClaimLost
        replaced = _replace_occupant(clip) if clip.replace else None
        clip.status, clip.checked_at, clip.error, clip.error_code = ClipStatus.READY, timezone.now(), "", ""
        if drop_upload:
            clip.source = ""  # type: ignore[assignment]
        try:
            with transaction.atomic():
                clip.save(update_fields=READY_FIELDS)  # not dispatched_at: the web may be setting it now
        except IntegrityError as exc:
            raise IngestError(f"zone {clip.zone} of this exam was filled concurrently; upload it again",
                              code="conflict", status=409) from exc
        audit_record(actor=clip.uploaded_by, action=AuditAction.UPDATE, study=clip.exam.study, obj=clip, changes={
            "status": {"old": ClipStatus.PENDING, "new": ClipStatus.READY}, "frame_count": {"old": None,
                                                                                         "new": clip.frame_count},
            **({"replaced_clip": {"old": replaced, "new": None}} if replaced else {}),
        })
        clip_stored.send(sender=ZoneClip, clip=clip, by=clip.uploaded_by)
        transaction.on_commit(lambda: exam_publish(clip.exam_id, _message(clip)))
    if drop_upload:  # the clip no longer names it: the untouched upload is not kept
        _remove(clip, [upload_name])


def _replace_occupant(clip: ZoneClip) -> int | None:
    """Delete (audited) the ready clip this one replaces; its files go once that commits."""
    old = ZoneClip.objects.filter(exam_id=clip.exam_id, zone=clip.zone).first()
    if old is None:
        return None
    audit_record(actor=clip.uploaded_by, action=AuditAction.DELETE, study=clip.exam.study, obj=old,
                 changes={"exam": {"old": old.exam_id, "new": None}, "zone": {"old": old.zone, "new": None},
                          "sha256": {"old": old.sha256, "new": None}, "replaced": True})
    pk = old.pk
    old.delete()
    return pk


def _fail(clip: ZoneClip, error: IngestError, written: list[str], upload_name: str) -> ClipProcessed:
    """Mark the clip failed with ``error`` and remove its files (the upload and what was written)."""
    with transaction.atomic():
        failed = ZoneClip.all_objects.filter(pk=clip.pk, status=ClipStatus.PROCESSING,
                                             claimed_at=clip.claimed_at).update(
            status=ClipStatus.FAILED, error=error.message, error_code=error.code, checked_at=timezone.now(),
            file="", source="", frames="")
        if failed:
            audit_record(actor=clip.uploaded_by, action=AuditAction.UPDATE, study=clip.exam.study, obj=clip,
                         changes={"status": {"old": ClipStatus.PENDING, "new": ClipStatus.FAILED},
                                  "error_code": {"old": "", "new": error.code}})
            clip.status, clip.error, clip.error_code = ClipStatus.FAILED, error.message, error.code
            transaction.on_commit(lambda: exam_publish(clip.exam_id, _message(clip)))
    # The upload is removed only by the worker that still holds the clip (another may have taken it over).
    _remove(clip, [*written, upload_name] if failed else written)
    clip.file = clip.source = clip.frames = ""  # type: ignore[assignment]
    return ClipProcessed(clip, error)


def _remove(clip: ZoneClip, names: list[str]) -> None:
    storage = clip.frames.storage
    for name in names:
        if name:
            try:
                storage.delete(name)
            except OSError:  # pragma: no cover - best effort cleanup
                logger.warning("could not remove %s of clip %s", name, clip.pk)


def _release(clip: ZoneClip) -> None:
    """Give the claim back after a transient error, so the retried task can take it again."""
    try:
        ZoneClip.all_objects.filter(pk=clip.pk, status=ClipStatus.PROCESSING, claimed_at=clip.claimed_at).update(
            status=ClipStatus.PENDING, claimed_at=None, attempts=F("attempts") - 1)
    except TRANSIENT:
        logger.warning("could not release clip %s; it is taken up again after %.0f s", clip.pk, claim_timeout())


def _message(clip: ZoneClip) -> dict[str, Any]:
    """The pages' message for a checked clip (``scoring.consumers`` relays it)."""
    message: dict[str, Any] = {"type": "clip", "clip": clip.pk, "zone": clip.zone, "status": str(clip.status)}
    if clip.status == ClipStatus.FAILED:
        message.update(error=clip.error, code=clip.error_code)
    return message
