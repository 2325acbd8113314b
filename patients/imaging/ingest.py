"""Ingest: one uploaded zone clip, validated, decoded, de-identified when the study asks, stored.

The one way a clip enters the platform: the exam page's upload form, both API upload endpoints,
the dataset importers and the demo all call :func:`clip_ingest`. A stored clip is announced with
``patients.imaging.signals.clip_stored`` inside the ingest transaction.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from lusweb.errors import ServiceError
from lusweb.jsonable import jsonable
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.imaging.budget import clip_budget
from patients.imaging.core import deid
from patients.imaging.core.reader import Clip, ClipReadError, read_clip
from patients.imaging.core.sector import find_sector
from patients.imaging.models import ZoneClip
from patients.imaging.signals import clip_stored
from patients.records.models import Exam
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.protocols import get_protocol

logger = logging.getLogger(__name__)


class IngestError(ServiceError):
    pass


@dataclass(frozen=True)
class IngestResult:
    clip: ZoneClip
    created: bool


@dataclass(frozen=True)
class _Upload:
    """The spooled upload: a temporary file, its sha256 and size."""

    path: str
    sha256: str
    size: int


@dataclass
class _Decoded:
    """What is stored: frames (redacted when de-identified), meta, and the de-identified DICOM."""

    frames: np.ndarray
    fps: float | None
    meta: dict[str, Any]
    stored: deid.DeidResult | None
    source_study_uid: str  # the upload's own Study Instance UID (``meta`` has the remapped one)


def _max_upload_bytes() -> int:
    return int(settings.MAX_UPLOAD_MB) * 1024 * 1024


def _spool(upload: IO[bytes], *, limit: int) -> _Upload:
    """Copy the upload to a temporary file while hashing it; refuse it past ``limit`` bytes."""
    digest = hashlib.sha256()
    size = 0
    fd, path = tempfile.mkstemp(prefix="lusweb-ingest-")
    try:
        with os.fdopen(fd, "wb") as out:
            chunks = upload.chunks() if hasattr(upload, "chunks") else iter(lambda: upload.read(1 << 20), b"")
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise IngestError(
                        f"file is larger than the {limit // (1024 * 1024)} MB upload limit "
                        "(LUSWEB_MAX_UPLOAD_MB)", code="too_large", status=413,
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return _Upload(path, digest.hexdigest(), size)


def _frames_npz(frames: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, frames=np.ascontiguousarray(frames, dtype=np.uint8))
    return buf.getvalue()


def _text(meta: dict[str, Any], key: str, limit: int) -> str:
    value = meta.get(key)
    return "" if value is None else str(value)[:limit]


def clip_ingest(
    *,
    exam: Exam,
    upload: IO[bytes],
    zone: str,
    by: Any,
    filename: str = "",
    replace: bool = False,
) -> IngestResult:
    """Store one zone clip of an exam: validate, decode, de-identify when the study asks, store.

    Studies with ``deidentify`` (the default) store a de-identified DICOM (PS3.15 basic profile,
    burned-in text outside the sector redacted, also in the decoded frames) and keep the
    untouched upload in ``source`` only when ``keep_original`` is set. Other studies keep the
    original byte for byte. Re-uploading the same bytes to the same zone of the same exam returns the existing clip
    (``created=False``). Any failure raises ``IngestError`` naming the problem and leaves no row
    and no file behind.
    """
    permissions.require_write(by, exam.study)
    zone = _checked_zone(exam, zone)
    limit = _max_upload_bytes()
    _check_declared_size(upload, limit)
    spooled = _spool(upload, limit=limit)
    try:
        if spooled.size == 0:
            raise IngestError("the uploaded file is empty (0 bytes)", code="empty_file")
        same = _same_file(exam, zone, spooled.sha256)
        if same is not None:
            return IngestResult(same, False)
        occupied = _occupant(exam, zone, replace=replace)
        decoded = _decode(exam, spooled)
        _refuse_foreign_study_instance(exam, decoded)
        if decoded.stored is not None:
            # The uploaded name may carry the patient's name: keep only the zone and the type.
            filename = f"{zone.lower()}{os.path.splitext(filename)[1][:6].lower()}"
        return _clip_store(exam=exam, zone=zone, upload=spooled, decoded=decoded, filename=filename, by=by,
                           replace=occupied)
    finally:
        os.unlink(spooled.path)


def _checked_zone(exam: Exam, zone: str) -> str:
    """The zone code, upper case; refused when missing or not part of the exam's protocol."""
    protocol = get_protocol(exam.protocol)
    zone = (zone or "").strip().upper()
    if not zone:
        raise IngestError("no zone given; expected one of " + ", ".join(protocol.codes), code="missing_zone")
    if zone not in protocol.codes:
        raise IngestError(
            f"zone {zone!r} is not part of the {protocol.key} protocol of this exam; expected one of "
            + ", ".join(protocol.codes), code="bad_zone",
        )
    return zone


def _check_declared_size(upload: IO[bytes], limit: int) -> None:
    """Refuse an upload whose declared size is over the limit before reading a byte of it."""
    declared = getattr(upload, "size", None)
    if declared is not None and declared > limit:
        raise IngestError(
            f"file is {declared / (1024 * 1024):.1f} MB, over the {settings.MAX_UPLOAD_MB} MB upload limit "
            "(LUSWEB_MAX_UPLOAD_MB)", code="too_large", status=413,
        )


def _same_file(exam: Exam, zone: str, sha256: str) -> ZoneClip | None:
    """The clip already stored with these bytes in this zone; refused when they fill another zone."""
    same = ZoneClip.objects.filter(exam=exam, sha256=sha256).first()
    if same is not None and same.zone != zone:
        raise IngestError(
            f"this exact file is already stored as zone {same.zone} of this exam", code="duplicate_file",
            status=409,
        )
    return same


def _occupant(exam: Exam, zone: str, *, replace: bool) -> ZoneClip | None:
    """The clip the new one replaces; refused when the zone is taken and ``replace`` is not set."""
    occupied = ZoneClip.objects.filter(exam=exam, zone=zone).first()
    if occupied is not None and not replace:
        raise IngestError(
            f"zone {zone} of this exam already has a clip ({occupied.original_filename or occupied.sha256[:12]}); "
            "send replace=true to replace it", code="zone_occupied", status=409,
        )
    return occupied


def _decode(exam: Exam, upload: _Upload) -> _Decoded:
    """Read the clip and, in de-identifying studies, de-identify it."""
    try:
        clip_data: Clip = read_clip(upload.path, budget=clip_budget())
    except ClipReadError as exc:
        raise IngestError(str(exc), code=getattr(exc, "code", "unreadable")) from exc
    meta = dict(clip_data.meta)
    source_uid = _text(clip_data.meta, "study_instance_uid", 64)
    study = exam.study
    if not study.deidentify:
        return _Decoded(clip_data.frames, clip_data.fps, meta, None, source_uid)
    frames, stored, meta = _deidentify(study=study, exam=exam, path=upload.path, sha256=upload.sha256,
                                       frames=clip_data.frames, fps=clip_data.fps, meta=meta)
    return _Decoded(frames, clip_data.fps, meta, stored, source_uid)


def _refuse_foreign_study_instance(exam: Exam, decoded: _Decoded) -> None:
    """A DICOM Study Instance UID already recorded for another patient means a mixed-up upload
    (looked up as stored, i.e. remapped in de-identifying studies; named as the file has it)."""
    study_uid = _text(decoded.meta, "study_instance_uid", 64)
    if not study_uid:
        return
    foreign = (
        ZoneClip.objects.filter(study_instance_uid=study_uid)
        .exclude(exam__patient=exam.patient)
        .select_related("exam__patient__study")
        .first()
    )
    if foreign is not None:
        raise IngestError(
            f"this DICOM belongs to Study Instance UID {decoded.source_study_uid}, already recorded for another "
            f"patient's exam (exam {foreign.exam_id}); refusing to mix patients",
            code="foreign_study_instance",
        )


def _deidentify(*, study: Study, exam: Exam, path: str, sha256: str, frames: np.ndarray, fps: float | None,
                meta: dict[str, Any]) -> tuple[np.ndarray, deid.DeidResult, dict[str, Any]]:
    """Redact burned-in text outside the sector and de-identify the header (see ``patients.imaging.core.deid``).

    Returns the redacted frames, the de-identified DICOM to store and the clip's meta with the
    remapped UIDs. DICOM uploads keep their header (cleaned); videos and images become a
    de-identified DICOM of their redacted frames.
    """
    sector = find_sector(frames)
    redacted = deid.redact_frames(frames, sector.mask) if sector.found else frames
    pseudo = deid.pseudonym(study.secret, exam.patient_id)
    try:
        if meta.get("format") == "dicom":
            with open(path, "rb") as fh:
                result = deid.deidentify_dataset(fh.read(), secret=study.secret, grey_frames=frames, sector=sector,
                                                 patient_pseudonym=pseudo)
        else:
            result = deid.dicom_from_frames(redacted, secret=study.secret, source_sha256=sha256,
                                            patient_pseudonym=pseudo, fps=fps,
                                            manufacturer=_text(meta, "manufacturer", 64), model=_text(meta, "model", 64))
    except IngestError:
        raise
    except Exception as exc:  # pydicom raises assorted errors on odd headers: refuse rather than leak
        raise IngestError(f"the file could not be de-identified ({exc.__class__.__name__}: {exc}); "
                          "it was not stored", code="deidentification_failed") from exc
    meta = dict(meta)
    meta.update(
        sop_instance_uid=result.sop_instance_uid or None, study_instance_uid=result.study_instance_uid or None,
        series_instance_uid=result.series_instance_uid or None,
        deidentification={
            "profile": "DICOM PS3.15 E.1 basic + clean pixel data", "source_format": meta.get("format"),
            "pixels": result.pixels, "sector_found": sector.found, "sector_method": sector.method,
            "sector_area_fraction": round(sector.area_fraction, 4),
            "stored_sha256": hashlib.sha256(result.data).hexdigest(),
        },
    )
    return redacted, result, meta


def _new_clip(*, exam: Exam, zone: str, upload: _Upload, decoded: _Decoded, filename: str, by: Any) -> ZoneClip:
    """The clip row (not saved yet) of a decoded upload."""
    meta, frames = decoded.meta, decoded.frames
    return ZoneClip(
        exam=exam, zone=zone, sha256=upload.sha256, size_bytes=upload.size, original_filename=filename[:255],
        format=_text(meta, "format", 16), codec=_text(meta, "codec", 64) or _text(meta, "transfer_syntax", 64),
        frame_count=int(frames.shape[0]), fps=decoded.fps, rows=int(frames.shape[1]), columns=int(frames.shape[2]),
        manufacturer=_text(meta, "manufacturer", 128), model_name=_text(meta, "model", 128),
        transducer=_text(meta, "transducer", 128), sop_instance_uid=_text(meta, "sop_instance_uid", 64),
        study_instance_uid=_text(meta, "study_instance_uid", 64), meta=jsonable(meta), uploaded_by=by,
        deidentified=decoded.stored is not None,
    )


def _write_files(clip: ZoneClip, *, upload: _Upload, decoded: _Decoded, filename: str, written: list[str]) -> None:
    """Store the clip's file (the de-identified DICOM or the upload), the kept source and the frames;
    every name written is appended to ``written`` so a failure can remove them."""
    if decoded.stored is not None:
        clip.file.save("deidentified.dcm", ContentFile(decoded.stored.data), save=False)
    else:
        with open(upload.path, "rb") as fh:
            clip.file.save(filename or "clip", File(fh), save=False)
    written.append(str(clip.file.name))
    if decoded.stored is not None and clip.exam.study.keep_original:
        with open(upload.path, "rb") as fh:
            clip.source.save(filename or "clip", File(fh), save=False)
        written.append(str(clip.source.name))
    clip.frames.save("frames.npz", ContentFile(_frames_npz(decoded.frames)), save=False)
    written.append(str(clip.frames.name))


def _save_row(clip: ZoneClip, *, replace: ZoneClip | None, by: Any) -> None:
    """Replace the zone's previous clip (if any), save and audit the new one and announce it, all
    in one transaction: what ``clip_stored`` receivers write commits with the clip or not at all."""
    exam = clip.exam
    with transaction.atomic():
        replaced = None
        if replace is not None:
            replaced = replace.pk
            audit_record(actor=by, action=AuditAction.DELETE, study=exam.study, obj=replace,
                         changes={"zone": {"old": replace.zone, "new": None},
                                  "sha256": {"old": replace.sha256, "new": None}, "replaced": True})
            replace.delete()
        clip.save()
        audit_record(actor=by, action=AuditAction.CREATE, study=exam.study, obj=clip, changes={
            "exam": {"old": None, "new": exam.pk}, "zone": {"old": None, "new": clip.zone},
            "sha256": {"old": None, "new": clip.sha256}, "deidentified": {"old": None, "new": clip.deidentified},
            **({"replaced_clip": {"old": replaced, "new": None}} if replaced else {}),
        })
        clip_stored.send(sender=ZoneClip, clip=clip, by=by)


def _clip_store(*, exam: Exam, zone: str, upload: _Upload, decoded: _Decoded, filename: str, by: Any,
                replace: ZoneClip | None) -> IngestResult:
    clip = _new_clip(exam=exam, zone=zone, upload=upload, decoded=decoded, filename=filename, by=by)
    written: list[str] = []
    storage = ZoneClip._meta.get_field("file").storage  # type: ignore[attr-defined]
    try:
        _write_files(clip, upload=upload, decoded=decoded, filename=filename, written=written)
        _save_row(clip, replace=replace, by=by)
    except IntegrityError as exc:
        _remove(storage, written)
        raise IngestError(f"zone {zone} of this exam was filled concurrently; retry", code="conflict",
                          status=409) from exc
    except BaseException:
        _remove(storage, written)
        raise
    return IngestResult(clip, True)


def _remove(storage: Any, names: list[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except OSError:  # pragma: no cover - best effort cleanup
            logger.warning("could not remove %s after a failed ingest", name)
