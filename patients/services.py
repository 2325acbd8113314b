"""Writes. Views, serializers and tasks call these; nothing else writes patient data.

Every function takes keyword arguments only, validates everything before touching the
database or the disk, and leaves nothing behind when it fails.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from patients import permissions
from patients.models import (
    KPA_TO_MMHG,
    BloodGas,
    ClinicalInfo,
    Exam,
    GasUnit,
    Membership,
    Patient,
    Role,
    Study,
    ZoneClip,
)
from patients.protocols import PROTOCOLS, get_protocol

logger = logging.getLogger(__name__)


class ServiceError(ValueError):
    """Bad input: carries a machine code, a human message and the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str, *, code: str = "invalid", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status is not None:
            self.status = status


class IngestError(ServiceError):
    pass


# --- studies and members -------------------------------------------------------------------


def study_create(*, name: str, protocol: str, description: str = "", created_by: Any) -> Study:
    """Create a study; its creator becomes its study admin."""
    if not permissions.can_create_study(created_by):
        raise PermissionDenied("You may not create studies.")
    if protocol not in PROTOCOLS:
        raise ServiceError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}",
                           code="bad_protocol")
    name = name.strip()
    if not name:
        raise ServiceError("a study needs a name", code="bad_name")
    if Study.objects.filter(name=name).exists():
        raise ServiceError(f"a study named {name!r} already exists", code="duplicate")
    with transaction.atomic():
        study = Study.objects.create(name=name, protocol=protocol, description=description,
                                     created_by=created_by)
        Membership.objects.create(study=study, user=created_by, role=Role.STUDY_ADMIN)
    return study


def membership_set(*, study: Study, username: str, role: str, by: Any) -> tuple[Membership, bool]:
    """Add a member or change their role. Returns (membership, created)."""
    permissions.require_admin(by, study)
    if role not in Role.values:
        raise ServiceError(f"unknown role {role!r}; expected one of {', '.join(Role.values)}", code="bad_role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ServiceError(f"no user named {username!r}", code="unknown_user")
    existing = Membership.objects.filter(study=study, user=user).first()
    demoting_admin = existing is not None and existing.role == Role.STUDY_ADMIN and role != Role.STUDY_ADMIN
    if demoting_admin and not _other_admins(study, existing):
        raise ServiceError("a study must keep at least one study admin", code="last_admin")
    membership, created = Membership.objects.update_or_create(study=study, user=user, defaults={"role": role})
    # Roles are cached per request on the user object.
    user.__dict__.pop("_lusweb_roles", None)
    return membership, created


def _other_admins(study: Study, membership: Membership | None) -> bool:
    others = Membership.objects.filter(study=study, role=Role.STUDY_ADMIN)
    if membership is not None:
        others = others.exclude(pk=membership.pk)
    return others.exists()


def membership_remove(*, study: Study, username: str, by: Any) -> None:
    permissions.require_admin(by, study)
    membership = Membership.objects.filter(study=study, user__username=username).first()
    if membership is None:
        raise ServiceError(f"{username!r} is not a member of this study", code="not_member")
    if membership.role == Role.STUDY_ADMIN and not _other_admins(study, membership):
        raise ServiceError("a study must keep at least one study admin", code="last_admin")
    membership.delete()


# --- patients and exams --------------------------------------------------------------------


def patient_create(
    *,
    study: Study,
    code: str,
    by: Any,
    sex: str = "U",
    birth_year: int | None = None,
    admission_date: dt.date | None = None,
    name: str = "",
    hospital_number: str = "",
) -> Patient:
    permissions.require_write(by, study)
    code = code.strip()
    if not code:
        raise ServiceError("a patient needs a pseudonym code", code="bad_code")
    if Patient.objects.filter(study=study, code=code).exists():
        raise ServiceError(f"patient code {code!r} is already used in study {study.name!r}", code="duplicate")
    this_year = dt.date.today().year
    if birth_year is not None and not (1900 <= birth_year <= this_year):
        raise ServiceError(f"birth year {birth_year} is outside 1900-{this_year}", code="bad_birth_year")
    return Patient.objects.create(
        study=study, code=code, sex=sex, birth_year=birth_year, admission_date=admission_date,
        name=name, hospital_number=hospital_number,
    )


def exam_create(
    *,
    patient: Patient,
    acquired_at: dt.datetime,
    by: Any,
    protocol: str | None = None,
    device: str = "",
    probe: str = "",
    operator: str = "",
    notes: str = "",
) -> Exam:
    permissions.require_write(by, patient.study)
    protocol = protocol or patient.study.protocol
    if protocol not in PROTOCOLS:
        raise ServiceError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}",
                           code="bad_protocol")
    return Exam.objects.create(
        patient=patient, acquired_at=acquired_at, protocol=protocol, device=device, probe=probe,
        operator=operator, notes=notes, created_by=by,
    )


# --- clips ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    clip: ZoneClip
    created: bool


def _max_upload_bytes() -> int:
    return int(settings.MAX_UPLOAD_MB) * 1024 * 1024


def _spool(upload: IO[bytes], *, limit: int) -> tuple[str, str, int]:
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
    return path, digest.hexdigest(), size


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
    """Store one zone clip of an exam: validate, decode, keep the original byte for byte.

    Re-uploading the same bytes to the same zone of the same exam returns the existing clip
    (``created=False``). Any failure raises ``IngestError`` naming the problem and leaves no row
    and no file behind.
    """
    from scoring.core.reader import ClipReadError, read_clip

    permissions.require_write(by, exam.study)
    protocol = get_protocol(exam.protocol)
    zone = (zone or "").strip().upper()
    if not zone:
        raise IngestError("no zone given; expected one of " + ", ".join(protocol.codes), code="missing_zone")
    if zone not in protocol.codes:
        raise IngestError(
            f"zone {zone!r} is not part of the {protocol.key} protocol of this exam; expected one of "
            + ", ".join(protocol.codes), code="bad_zone",
        )
    declared = getattr(upload, "size", None)
    limit = _max_upload_bytes()
    if declared is not None and declared > limit:
        raise IngestError(
            f"file is {declared / (1024 * 1024):.1f} MB, over the {settings.MAX_UPLOAD_MB} MB upload limit "
            "(LUSWEB_MAX_UPLOAD_MB)", code="too_large", status=413,
        )
    path, sha256, size = _spool(upload, limit=limit)
    try:
        if size == 0:
            raise IngestError("the uploaded file is empty (0 bytes)", code="empty_file")
        same = ZoneClip.objects.filter(exam=exam, sha256=sha256).first()
        if same is not None:
            if same.zone == zone:
                return IngestResult(same, False)
            raise IngestError(
                f"this exact file is already stored as zone {same.zone} of this exam", code="duplicate_file",
                status=409,
            )
        occupied = ZoneClip.objects.filter(exam=exam, zone=zone).first()
        if occupied is not None and not replace:
            raise IngestError(
                f"zone {zone} of this exam already has a clip ({occupied.original_filename or occupied.sha256[:12]}); "
                "send replace=true to replace it", code="zone_occupied", status=409,
            )
        try:
            clip_data = read_clip(path)
        except ClipReadError as exc:
            raise IngestError(str(exc), code=getattr(exc, "code", "unreadable")) from exc
        meta = dict(clip_data.meta)
        study_uid = _text(meta, "study_instance_uid", 64)
        if study_uid:
            foreign = (
                ZoneClip.objects.filter(study_instance_uid=study_uid)
                .exclude(exam__patient=exam.patient)
                .select_related("exam__patient__study")
                .first()
            )
            if foreign is not None:
                raise IngestError(
                    f"this DICOM belongs to Study Instance UID {study_uid}, already recorded for another "
                    f"patient's exam (exam {foreign.exam_id}); refusing to mix patients",
                    code="foreign_study_instance",
                )
        result = _clip_store(
            exam=exam, zone=zone, path=path, sha256=sha256, size=size, frames=clip_data.frames,
            fps=clip_data.fps, meta=meta, filename=filename, by=by, replace=occupied,
        )
        if getattr(settings, "SCORING_ON_UPLOAD", True):
            from scoring.services import scoring_job_request

            # Dispatched when the surrounding transaction commits.
            scoring_job_request(exam=exam, reason="upload", by=by)
        return result
    finally:
        os.unlink(path)


def _clip_store(
    *,
    exam: Exam,
    zone: str,
    path: str,
    sha256: str,
    size: int,
    frames: np.ndarray,
    fps: float | None,
    meta: dict[str, Any],
    filename: str,
    by: Any,
    replace: ZoneClip | None,
) -> IngestResult:
    clip = ZoneClip(
        exam=exam, zone=zone, sha256=sha256, size_bytes=size, original_filename=filename[:255],
        format=_text(meta, "format", 16), codec=_text(meta, "codec", 64) or _text(meta, "transfer_syntax", 64),
        frame_count=int(frames.shape[0]), fps=fps, rows=int(frames.shape[1]), columns=int(frames.shape[2]),
        manufacturer=_text(meta, "manufacturer", 128), model_name=_text(meta, "model", 128),
        transducer=_text(meta, "transducer", 128), sop_instance_uid=_text(meta, "sop_instance_uid", 64),
        study_instance_uid=_text(meta, "study_instance_uid", 64), meta=_jsonable(meta), uploaded_by=by,
    )
    written: list[str] = []
    storage = ZoneClip._meta.get_field("file").storage  # type: ignore[attr-defined]
    try:
        with open(path, "rb") as fh:
            clip.file.save(filename or "clip", File(fh), save=False)
        written.append(str(clip.file.name))
        clip.frames.save("frames.npz", ContentFile(_frames_npz(frames)), save=False)
        written.append(str(clip.frames.name))
        with transaction.atomic():
            if replace is not None:
                replace.delete()
            clip.save()
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


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if value is None or isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [v if isinstance(v, (str, int, float, bool)) else str(v) for v in value]
        else:
            out[key] = str(value)
    return out


def clip_delete(*, clip: ZoneClip, by: Any) -> None:
    permissions.require_write(by, clip.exam.study)
    clip.delete()


# --- clinical information and blood gases ----------------------------------------------------


def clinical_info_create(*, patient: Patient, by: Any, recorded_at: dt.datetime, **fields: Any) -> ClinicalInfo:
    permissions.require_write(by, patient.study)
    allowed = {f.name for f in ClinicalInfo._meta.get_fields()} - {"id", "patient", "recorded_at", "created_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ServiceError(f"unknown clinical fields: {', '.join(sorted(unknown))}", code="bad_field")
    spo2 = fields.get("spo2")
    if spo2 is not None and not (0 <= spo2 <= 100):
        raise ServiceError(f"SpO2 {spo2} is outside 0-100 %", code="bad_spo2")
    rr = fields.get("respiratory_rate")
    if rr is not None and not (0 <= rr <= 120):
        raise ServiceError(f"respiratory rate {rr} is outside 0-120 /min", code="bad_respiratory_rate")
    return ClinicalInfo.objects.create(patient=patient, recorded_at=recorded_at, **fields)


GAS_RANGES_MMHG = {"paco2": (5.0, 200.0), "pao2": (10.0, 800.0)}


def to_mmhg(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    return value * KPA_TO_MMHG if unit == GasUnit.KPA else value


def blood_gas_create(
    *,
    patient: Patient,
    by: Any,
    sampled_at: dt.datetime,
    unit: str = GasUnit.MMHG,
    paco2: float | None = None,
    pao2: float | None = None,
    ph: float | None = None,
    hco3: float | None = None,
    lactate: float | None = None,
    sao2: float | None = None,
    fio2: float | None = None,
) -> BloodGas:
    """Record a blood gas; PaCO2/PaO2 are entered in ``unit`` and stored in mmHg."""
    permissions.require_write(by, patient.study)
    if unit not in GasUnit.values:
        raise ServiceError(f"unknown unit {unit!r}; use mmHg or kPa", code="bad_unit")
    converted = {"paco2": to_mmhg(paco2, unit), "pao2": to_mmhg(pao2, unit)}
    for name, value in converted.items():
        low, high = GAS_RANGES_MMHG[name]
        if value is not None and not (low <= value <= high):
            raise ServiceError(
                f"{name.upper()} {value:.1f} mmHg is outside the plausible range {low:.0f}-{high:.0f} mmHg "
                f"(entered in {unit}: is the unit right?)", code=f"bad_{name}",
            )
    if ph is not None and not (6.5 <= ph <= 8.0):
        raise ServiceError(f"pH {ph} is outside 6.5-8.0", code="bad_ph")
    if fio2 is not None and not (0.21 <= fio2 <= 1.0):
        raise ServiceError(f"FiO2 {fio2} must be a fraction between 0.21 and 1.0", code="bad_fio2")
    if sao2 is not None and not (0 <= sao2 <= 100):
        raise ServiceError(f"SaO2 {sao2} is outside 0-100 %", code="bad_sao2")
    return BloodGas.objects.create(
        patient=patient, sampled_at=sampled_at, paco2_mmhg=converted["paco2"], pao2_mmhg=converted["pao2"],
        ph=ph, hco3=hco3, lactate=lactate, sao2=sao2, fio2=fio2, unit_entered=unit,
    )
