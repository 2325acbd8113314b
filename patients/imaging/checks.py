"""What ingest refuses, and how it says so: the errors shared by the upload request
(``patients.imaging.accept``) and the worker's check (``patients.imaging.process``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings

from lusweb.errors import ServiceError
from patients.imaging.models import ZoneClip
from patients.records.models import Exam
from patients.studies.protocols import get_protocol

#: The words of the reader for a file that is no clip at all (``read_clip``'s ``UnsupportedFormat``).
UNSUPPORTED = ("not a recognised DICOM, video or image file "
               "(expected DICOM, MP4, MOV, AVI, MPEG, GIF, PNG or JPEG)")


#: The usual suffix of each format: stored names end with it (never with the uploaded name's).
FORMAT_SUFFIXES = {"dicom": ".dcm", "mp4": ".mp4", "mov": ".mov", "avi": ".avi", "mpeg": ".mpg", "gif": ".gif",
                   "png": ".png", "jpeg": ".jpg"}


class IngestError(ServiceError):
    pass


@dataclass(frozen=True)
class IngestResult:
    """The clip of an upload; ``created`` is False when the same file was already in that zone."""

    clip: ZoneClip
    created: bool


def max_upload_bytes() -> int:
    return int(settings.MAX_UPLOAD_MB) * 1024 * 1024


def too_large(limit: int) -> IngestError:
    return IngestError(f"file is larger than the {limit // (1024 * 1024)} MB upload limit (LUSWEB_MAX_UPLOAD_MB)",
                       code="too_large", status=413)


def check_declared_size(upload: IO[bytes], limit: int) -> None:
    """Refuse an upload whose declared size is over the limit before reading a byte of it."""
    declared = getattr(upload, "size", None)
    if declared is not None and declared > limit:
        raise IngestError(
            f"file is {declared / (1024 * 1024):.1f} MB, over the {settings.MAX_UPLOAD_MB} MB upload limit "
            "(LUSWEB_MAX_UPLOAD_MB)", code="too_large", status=413,
        )


def checked_zone(exam: Exam, zone: str) -> str:
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


def text(meta: dict[str, Any], key: str, limit: int) -> str:
    value = meta.get(key)
    return "" if value is None else str(value)[:limit]


def refuse_foreign_study_instance(*, exam: Exam, stored_uid: str, source_uid: str) -> None:
    """Refuse a DICOM whose Study Instance UID is already recorded for another patient of the same
    study: a mixed-up upload.

    Compared within the exam's study only (as stored: remapped in de-identifying studies, the same
    within a study), so a clip of another study never blocks an upload and the message names
    nothing outside the caller's study. The UID is named as the study records it (remapped in
    de-identifying studies, where the file's own UID is not kept). Files without a Study Instance
    UID of their own (videos, images; a de-identified video's DICOM gets a generated one) are not
    compared.
    """
    if not source_uid or not stored_uid:
        return
    foreign = (
        ZoneClip.objects.filter(exam__patient__study_id=exam.patient.study_id, study_instance_uid=stored_uid)
        .exclude(exam__patient_id=exam.patient_id)
        .order_by("pk").values_list("exam_id", flat=True).first()
    )
    if foreign is not None:
        raise IngestError(
            f"this DICOM belongs to Study Instance UID {stored_uid}, already recorded in this study for another "
            f"patient's exam (exam {foreign}); refusing to mix patients", code="foreign_study_instance",
        )
