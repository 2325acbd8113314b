"""The upload request's part of ingest: store the upload and a pending clip, cheap checks only.

:func:`clip_accept` checks what the request can check at once (who uploads, the zone, the size,
the format signature, a duplicate), streams the upload into storage through Django's storage API
while hashing it, saves the clip as ``pending`` with its audit event and, once that commits,
sends its check to the ``ingest`` queue (``patients.imaging.dispatch``). Decoding, the decode
budgets, de-identification and the frame cache run in the worker (``patients.imaging.process``).
"""
from __future__ import annotations

import functools
import hashlib
import uuid
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Q

from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.imaging.checks import (
    FORMAT_SUFFIXES,
    UNSUPPORTED,
    IngestError,
    IngestResult,
    check_declared_size,
    checked_zone,
    max_upload_bytes,
    too_large,
)
from patients.imaging.core.reader import PROBE_BYTES, probe_format
from patients.imaging.dispatch import clip_dispatch
from patients.imaging.models import IN_FLIGHT, ClipStatus, ZoneClip
from patients.imaging.names import safe_filename
from patients.records.models import Exam
from patients.studies import permissions
from patients.studies.models import Study


class _Hashing(File):  # type: ignore[type-arg]
    """The upload as the storage reads it: hashes and counts the bytes that pass, refusing them
    past ``limit`` (an upload of unknown size: a file object, a stream)."""

    def __init__(self, upload: IO[bytes], limit: int) -> None:
        super().__init__(upload, name=getattr(upload, "name", None) or "upload")
        self.limit = limit
        self._restart()

    def _restart(self) -> None:
        self.digest = hashlib.sha256()
        self.received = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        position = int(self.file.seek(offset, whence))  # type: ignore[union-attr]
        if position == 0:
            self._restart()  # read again from the start (a storage retrying its write)
        return position

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.file.read(size)  # type: ignore[union-attr]
        self.received += len(data)
        if self.received > self.limit:
            raise too_large(self.limit)
        self.digest.update(data)
        return data


def _sniff(upload: IO[bytes]) -> str:
    """The container format from the first bytes (the file name is never trusted)."""
    upload.seek(0)
    head = upload.read(PROBE_BYTES)
    upload.seek(0)
    if not head:
        raise IngestError("the uploaded file is empty (0 bytes)", code="empty_file")
    fmt = probe_format(head)
    if fmt is None:
        raise IngestError(UNSUPPORTED, code="unsupported_format")
    return fmt


def _store_upload(clip: ZoneClip, upload: IO[bytes], limit: int) -> None:
    """Stream the upload into the clip's field for it (``received``) through the storage API,
    hashing it on the way; nothing is left in storage when it is refused."""
    field = clip.received
    name = field.field.generate_filename(clip, f"upload{FORMAT_SUFFIXES[clip.format]}")
    content = _Hashing(upload, limit)
    try:
        field.save(name.rsplit("/", 1)[-1], content, save=False)
    except BaseException:
        field.storage.delete(name)  # a write stopped midway (over the limit) leaves a partial file
        raise
    clip.sha256 = content.digest.hexdigest()
    clip.size_bytes = content.received


def upload_remove(clip: ZoneClip) -> None:
    """Remove the stored upload of a clip that is not kept (refused, a duplicate, failed)."""
    for field in (clip.file, clip.source):
        if field and field.name:
            field.storage.delete(field.name)


def clip_accept(*, exam: Exam, upload: IO[bytes], zone: str, by: Any, filename: str = "", replace: bool = False,
                dispatch: bool = True, received_from: str = "") -> IngestResult:
    """Store an upload as a pending clip of ``exam``'s ``zone`` and send it to be checked.

    Refuses at once (``IngestError``, nothing stored) what the request can see: a user who may not
    write, a zone outside the protocol, a file over ``MAX_UPLOAD_MB``, an empty file or one that
    is no DICOM, video or image, the same bytes in another zone (409), a zone that has a clip
    (409 unless ``replace``) or an upload still being checked (409). The same bytes in the same
    zone return the clip already there (``created=False``). Otherwise the clip is saved
    ``pending`` and audited, and with ``dispatch`` its check goes to the ``ingest`` queue once the
    transaction commits (a broker that is down only delays it: the recovery loop sends it).

    ``received_from`` names the sender of a received instance (``"AE X via DICOM C-STORE"``) and
    goes into the audit event. With ``by=None`` (the DICOM receiver has no user) the receiver has
    checked the sender against the study's allow-list, so only an archived study refuses it here.
    """
    _require_uploader(by, exam.study, received_from)
    zone = checked_zone(exam, zone)
    limit = max_upload_bytes()
    check_declared_size(upload, limit)
    folder = uuid.uuid4().hex
    clip = ZoneClip(exam=exam, zone=zone, status=ClipStatus.PENDING, folder=f"clips/{folder[:2]}/{folder}",
                    format=_sniff(upload), original_filename=safe_filename(filename), uploaded_by=by,
                    deidentified=exam.study.deidentify, sha256="", size_bytes=0)
    _store_upload(clip, upload, limit)
    try:
        result = _register(clip, by=by, replace=replace, dispatch=dispatch, received_from=received_from)
    except BaseException:
        upload_remove(clip)
        raise
    if not result.created:
        upload_remove(clip)
    return result


def _require_uploader(by: Any, study: Study, received_from: str) -> None:
    """A user who may write to the study, or a machine the receiver let in (``received_from``)."""
    if by is None and received_from:
        if study.archived:
            raise PermissionDenied(f"Study {study.name!r} is archived and read-only.")
        return
    permissions.require_write(by, study)


def _register(clip: ZoneClip, *, by: Any, replace: bool, dispatch: bool, received_from: str = "") -> IngestResult:
    """Save the pending clip, or answer with the zone's clip of the same bytes; serialised per exam."""
    exam = clip.exam
    try:
        with transaction.atomic():
            Exam.objects.select_for_update().filter(pk=exam.pk).first()
            # One read: the exam's uploads of these bytes or in this zone (oldest first).
            related = list(ZoneClip.all_objects.filter(exam=exam).filter(Q(sha256=clip.sha256) | Q(zone=clip.zone))
                           .order_by("pk"))
            same = _same_file(related, clip)
            if same is not None:
                return IngestResult(same, False)
            clip.replace = _zone_taken([c for c in related if c.zone == clip.zone], clip.zone, replace=replace)
            _drop_failed([c for c in related if c.zone == clip.zone and c.status == ClipStatus.FAILED], by=by)
            clip.save()
            audit_record(actor=by, action=AuditAction.CREATE, study=exam.study, obj=clip, changes={
                "exam": {"old": None, "new": exam.pk}, "zone": {"old": None, "new": clip.zone},
                "sha256": {"old": None, "new": clip.sha256}, "status": {"old": None, "new": clip.status},
                "deidentified": {"old": None, "new": clip.deidentified},
                **({"received_from": received_from} if received_from else {}),
            })
            if dispatch:
                transaction.on_commit(functools.partial(clip_dispatch, clip.pk), robust=True)
    except IntegrityError as exc:
        raise IngestError(f"zone {clip.zone} of this exam was filled concurrently; retry", code="conflict",
                          status=409) from exc
    return IngestResult(clip, True)


def _same_file(related: list[ZoneClip], clip: ZoneClip) -> ZoneClip | None:
    """The clip (ready or being checked) with these bytes in this zone; refused when they fill
    another zone. Failed uploads do not count: the same file may be sent again."""
    same = next((c for c in related if c.sha256 == clip.sha256 and c.status != ClipStatus.FAILED), None)
    if same is not None and same.zone != clip.zone:
        raise IngestError(
            f"this exact file is already stored as zone {same.zone} of this exam", code="duplicate_file",
            status=409,
        )
    return same


def _zone_taken(here: list[ZoneClip], zone: str, *, replace: bool) -> bool:
    """Whether the new clip replaces a ready one once it is ready itself; refused when the zone has
    an upload being checked, or a clip and ``replace`` is not set (``here``: the zone's uploads)."""
    waiting = next((c for c in here if c.status in IN_FLIGHT), None)
    if waiting is not None:
        raise IngestError(
            f"zone {zone} of this exam already has an upload being checked "
            f"({waiting.original_filename or waiting.sha256[:12]}); wait until it is ready or has failed",
            code="zone_busy", status=409,
        )
    occupied = next((c for c in here if c.status == ClipStatus.READY), None)
    if occupied is not None and not replace:
        raise IngestError(
            f"zone {zone} of this exam already has a clip ({occupied.original_filename or occupied.sha256[:12]}); "
            "send replace=true to replace it", code="zone_occupied", status=409,
        )
    return occupied is not None


def _drop_failed(failed: list[ZoneClip], *, by: Any) -> None:
    """A new upload to a zone supersedes the zone's failed ones (their files are already gone)."""
    for old in failed:
        audit_record(actor=by, action=AuditAction.DELETE, study=old.exam.study, obj=old,
                     changes={"zone": {"old": old.zone, "new": None}, "status": {"old": old.status, "new": None},
                              "superseded": True})
        old.delete()
