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

from lusweb.errors import ServiceError
from patients import permissions
from patients.audit import audit_record, diff, snapshot
from patients.imaging.core import deid
from patients.imaging.core.sector import find_sector
from patients.models import (
    KPA_TO_MMHG,
    AuditAction,
    BloodGas,
    ClinicalInfo,
    Exam,
    GasUnit,
    Membership,
    Patient,
    Role,
    ScoreOverride,
    Study,
    ZoneAnnotation,
    ZoneClip,
)
from patients.protocols import PROTOCOLS, get_protocol

logger = logging.getLogger(__name__)


class IngestError(ServiceError):
    pass


# --- studies and members -------------------------------------------------------------------


def study_create(*, name: str, protocol: str, description: str = "", created_by: Any, deidentify: bool = True,
                 keep_original: bool = False) -> Study:
    """Create a study; its creator becomes its study admin. A new random secret keys its pseudonyms."""
    if not permissions.can_create_study(created_by):
        raise PermissionDenied("You may not create studies.")
    return _study_create(name=name, protocol=protocol, description=description, created_by=created_by,
                         deidentify=deidentify, keep_original=keep_original)


def _study_create(*, name: str, protocol: str, description: str, created_by: Any, deidentify: bool,
                  keep_original: bool) -> Study:
    _check_protocol(protocol)
    name = name.strip()
    if not name:
        raise ServiceError("a study needs a name", code="bad_name")
    if Study.objects.filter(name=name).exists():
        raise ServiceError(f"a study named {name!r} already exists", code="duplicate")
    with transaction.atomic():
        study = Study.objects.create(name=name, protocol=protocol, description=description,
                                     created_by=created_by, deidentify=deidentify, keep_original=keep_original)
        Membership.objects.create(study=study, user=created_by, role=Role.STUDY_ADMIN)
        audit_record(actor=created_by, action=AuditAction.CREATE, study=study, obj=study,
                     changes=diff({}, snapshot(study, STUDY_AUDIT_FIELDS)))
    return study


STUDY_AUDIT_FIELDS = ("name", "protocol", "description", "archived", "deidentify", "keep_original")
STUDY_SETTINGS = ("name", "protocol", "description", "deidentify", "keep_original")


def study_for_import(*, name: str, protocol: str, by: Any, description: str = "", deidentify: bool = False,
                     keep_original: bool = True) -> Study:
    """Get or create a study for a dataset importer (a trusted command-line operation: no
    creation permission is needed) and make ``by`` its study admin."""
    study = Study.objects.filter(name=name).first()
    if study is None:
        study = _study_create(name=name, protocol=protocol, description=description, created_by=by,
                              deidentify=deidentify, keep_original=keep_original)
    elif study.protocol != protocol:
        raise ServiceError(f"study {name!r} exists with protocol {study.protocol}, not {protocol}", code="bad_protocol")
    Membership.objects.get_or_create(study=study, user=by, defaults={"role": Role.STUDY_ADMIN})
    by.__dict__.pop("_lusweb_roles", None)
    return study


def study_update(*, study: Study, by: Any, **fields: Any) -> Study:
    """Change a study's name, default protocol (for new exams), description, ``deidentify`` or
    ``keep_original`` (study admins). Audited with old and new values."""
    permissions.require_admin(by, study)
    unknown = set(fields) - set(STUDY_SETTINGS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}; settable: {', '.join(STUDY_SETTINGS)}",
                           code="bad_field")
    if "protocol" in fields and fields["protocol"] not in PROTOCOLS:
        raise ServiceError(f"unknown protocol {fields['protocol']!r}; expected one of {', '.join(PROTOCOLS)}",
                           code="bad_protocol")
    if "name" in fields:
        fields["name"] = str(fields["name"]).strip()
        if not fields["name"]:
            raise ServiceError("a study needs a name", code="bad_name")
        if Study.objects.filter(name=fields["name"]).exclude(pk=study.pk).exists():
            raise ServiceError(f"a study named {fields['name']!r} already exists", code="duplicate")
    before = snapshot(study, STUDY_AUDIT_FIELDS)
    for key, value in fields.items():
        setattr(study, key, value)
    changes = diff(before, snapshot(study, STUDY_AUDIT_FIELDS))
    if changes:
        with transaction.atomic():
            study.save(update_fields=[*fields])
            audit_record(actor=by, action=AuditAction.UPDATE, study=study, obj=study, changes=changes)
    return study


def study_set_archived(*, study: Study, archived: bool, by: Any) -> Study:
    """Archive (read-only for everyone) or unarchive a study. Study admins only; unlike other
    admin actions this one works on an archived study, or it could never be undone."""
    role = permissions.require_read(by, study)
    if role not in permissions.ADMIN_ROLES:
        raise PermissionDenied("Only a study admin can archive or unarchive this study.")
    if study.archived == archived:
        return study
    with transaction.atomic():
        Study.objects.filter(pk=study.pk).update(archived=archived)
        audit_record(actor=by, action=AuditAction.UPDATE, study=study, obj=study,
                     changes={"archived": {"old": study.archived, "new": archived}})
    study.archived = archived
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
    with transaction.atomic():
        membership, created = Membership.objects.update_or_create(study=study, user=user, defaults={"role": role})
        if created or existing is None or existing.role != role:
            audit_record(actor=by, action=AuditAction.CREATE if created else AuditAction.UPDATE, study=study,
                         object_type="membership", object_id=username,
                         changes={"role": {"old": None if existing is None else existing.role, "new": role}})
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
    with transaction.atomic():
        membership.delete()
        audit_record(actor=by, action=AuditAction.DELETE, study=study, object_type="membership", object_id=username,
                     changes={"role": {"old": membership.role, "new": None}})
    membership.user.__dict__.pop("_lusweb_roles", None)


# --- patients and exams --------------------------------------------------------------------


def _clean_patient_code(study: Study, code: str, *, exclude: Patient | None = None) -> str:
    """The stripped code; refuses an empty one or one already used by another patient of the study."""
    code = str(code).strip()
    if not code:
        raise ServiceError("a patient needs a pseudonym code", code="bad_code")
    clash = Patient.objects.filter(study=study, code=code)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ServiceError(f"patient code {code!r} is already used in study {study.name!r}", code="duplicate")
    return code


def _check_birth_year(birth_year: int | None) -> None:
    this_year = dt.date.today().year
    if birth_year is not None and not (1900 <= birth_year <= this_year):
        raise ServiceError(f"birth year {birth_year} is outside 1900-{this_year}", code="bad_birth_year")


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ServiceError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}",
                           code="bad_protocol")


def _check_settable(fields: dict[str, Any], settable: tuple[str, ...]) -> None:
    unknown = set(fields) - set(settable)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}; settable: {', '.join(settable)}",
                           code="bad_field")


def _update_audited(obj: Any, *, fields: dict[str, Any], tracked: tuple[str, ...], study: Study, by: Any) -> None:
    """Apply ``fields`` to ``obj``; save and audit old/new values only when something changed."""
    before = snapshot(obj, tracked)
    for key, value in fields.items():
        setattr(obj, key, value)
    changes = diff(before, snapshot(obj, tracked))
    if changes:
        with transaction.atomic():
            obj.save(update_fields=[*fields])
            audit_record(actor=by, action=AuditAction.UPDATE, study=study, obj=obj, changes=changes)


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
    code = _clean_patient_code(study, code)
    _check_birth_year(birth_year)
    with transaction.atomic():
        patient = Patient.objects.create(
            study=study, code=code, sex=sex, birth_year=birth_year, admission_date=admission_date,
            name=name, hospital_number=hospital_number,
        )
        audit_record(actor=by, action=AuditAction.CREATE, study=study, obj=patient,
                     changes=diff({}, snapshot(patient, PATIENT_FIELDS)))
    return patient


PATIENT_FIELDS = ("code", "sex", "birth_year", "admission_date", "name", "hospital_number")


def patient_update(*, patient: Patient, by: Any, **fields: Any) -> Patient:
    """Change a patient's fields; the audit keeps the old and new values."""
    permissions.require_write(by, patient.study)
    _check_settable(fields, PATIENT_FIELDS)
    if "code" in fields:
        fields["code"] = _clean_patient_code(patient.study, fields["code"], exclude=patient)
    _check_birth_year(fields.get("birth_year"))
    _update_audited(patient, fields=fields, tracked=PATIENT_FIELDS, study=patient.study, by=by)
    return patient


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
    _check_protocol(protocol)
    with transaction.atomic():
        exam = Exam.objects.create(
            patient=patient, acquired_at=acquired_at, protocol=protocol, device=device, probe=probe,
            operator=operator, notes=notes, created_by=by,
        )
        audit_record(actor=by, action=AuditAction.CREATE, study=patient.study, obj=exam,
                     changes=diff({}, snapshot(exam, EXAM_FIELDS)))
    return exam


EXAM_FIELDS = ("acquired_at", "protocol", "device", "probe", "operator", "notes")


def exam_update(*, exam: Exam, by: Any, **fields: Any) -> Exam:
    """Change an exam's fields (not its patient); audited with old and new values."""
    permissions.require_write(by, exam.study)
    _check_settable(fields, EXAM_FIELDS)
    if "protocol" in fields:
        _check_protocol(fields["protocol"])
    _update_audited(exam, fields=fields, tracked=EXAM_FIELDS, study=exam.study, by=by)
    return exam


def exam_delete(*, exam: Exam, by: Any) -> None:
    permissions.require_write(by, exam.study)
    with transaction.atomic():
        audit_record(actor=by, action=AuditAction.DELETE, study=exam.study, obj=exam,
                     changes={**diff(snapshot(exam, EXAM_FIELDS), {}), "clips": {"old": exam.clips.count(), "new": 0}})
        exam.delete()


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
    """Store one zone clip of an exam: validate, decode, de-identify when the study asks, store.

    Studies with ``deidentify`` (the default) store a de-identified DICOM (PS3.15 basic profile,
    burned-in text outside the sector redacted, also in the decoded frames) and keep the
    untouched upload in ``source`` only when ``keep_original`` is set. Other studies keep the
    original byte for byte. Re-uploading the same bytes to the same zone of the same exam returns the existing clip
    (``created=False``). Any failure raises ``IngestError`` naming the problem and leaves no row
    and no file behind.
    """
    from patients.imaging.core.reader import ClipReadError, read_clip

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
        study = exam.study
        frames = clip_data.frames
        stored: deid.DeidResult | None = None
        if study.deidentify:
            frames, stored, meta = _deidentify(study=study, exam=exam, path=path, sha256=sha256, frames=frames,
                                               fps=clip_data.fps, meta=meta)
        study_uid = _text(meta, "study_instance_uid", 64)
        if study_uid:
            foreign = (
                ZoneClip.objects.filter(study_instance_uid=study_uid)
                .exclude(exam__patient=exam.patient)
                .select_related("exam__patient__study")
                .first()
            )
            if foreign is not None:
                shown = _text(clip_data.meta, "study_instance_uid", 64)
                raise IngestError(
                    f"this DICOM belongs to Study Instance UID {shown}, already recorded for another "
                    f"patient's exam (exam {foreign.exam_id}); refusing to mix patients",
                    code="foreign_study_instance",
                )
        if stored is not None:
            # The uploaded name may carry the patient's name: keep only the zone and the type.
            filename = f"{zone.lower()}{os.path.splitext(filename)[1][:6].lower()}"
        result = _clip_store(
            exam=exam, zone=zone, path=path, sha256=sha256, size=size, frames=frames,
            fps=clip_data.fps, meta=meta, filename=filename, by=by, replace=occupied, stored=stored,
            keep_source=stored is not None and study.keep_original,
        )
        if getattr(settings, "SCORING_ON_UPLOAD", True):
            from scoring.services import scoring_job_request

            # Dispatched when the surrounding transaction commits.
            scoring_job_request(exam=exam, reason="upload", by=by)
        return result
    finally:
        os.unlink(path)


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
    stored: deid.DeidResult | None = None,
    keep_source: bool = False,
) -> IngestResult:
    clip = ZoneClip(
        exam=exam, zone=zone, sha256=sha256, size_bytes=size, original_filename=filename[:255],
        format=_text(meta, "format", 16), codec=_text(meta, "codec", 64) or _text(meta, "transfer_syntax", 64),
        frame_count=int(frames.shape[0]), fps=fps, rows=int(frames.shape[1]), columns=int(frames.shape[2]),
        manufacturer=_text(meta, "manufacturer", 128), model_name=_text(meta, "model", 128),
        transducer=_text(meta, "transducer", 128), sop_instance_uid=_text(meta, "sop_instance_uid", 64),
        study_instance_uid=_text(meta, "study_instance_uid", 64), meta=_jsonable(meta), uploaded_by=by,
        deidentified=stored is not None,
    )
    written: list[str] = []
    storage = ZoneClip._meta.get_field("file").storage  # type: ignore[attr-defined]
    try:
        if stored is not None:
            clip.file.save("deidentified.dcm", ContentFile(stored.data), save=False)
        else:
            with open(path, "rb") as fh:
                clip.file.save(filename or "clip", File(fh), save=False)
        written.append(str(clip.file.name))
        if keep_source:
            with open(path, "rb") as fh:
                clip.source.save(filename or "clip", File(fh), save=False)
            written.append(str(clip.source.name))
        clip.frames.save("frames.npz", ContentFile(_frames_npz(frames)), save=False)
        written.append(str(clip.frames.name))
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
                "exam": {"old": None, "new": exam.pk}, "zone": {"old": None, "new": zone},
                "sha256": {"old": None, "new": sha256}, "deidentified": {"old": None, "new": clip.deidentified},
                **({"replaced_clip": {"old": replaced, "new": None}} if replaced else {}),
            })
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
        elif isinstance(value, dict):
            out[key] = _jsonable(value)
        elif isinstance(value, (list, tuple)):
            out[key] = [v if isinstance(v, (str, int, float, bool)) else str(v) for v in value]
        else:
            out[key] = str(value)
    return out


def clip_delete(*, clip: ZoneClip, by: Any) -> None:
    permissions.require_write(by, clip.exam.study)
    with transaction.atomic():
        audit_record(actor=by, action=AuditAction.DELETE, study=clip.exam.study, obj=clip,
                     changes={"exam": {"old": clip.exam_id, "new": None}, "zone": {"old": clip.zone, "new": None},
                              "sha256": {"old": clip.sha256, "new": None}})
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
    with transaction.atomic():
        record = ClinicalInfo.objects.create(patient=patient, recorded_at=recorded_at, **fields)
        audit_record(actor=by, action=AuditAction.CREATE, study=patient.study, obj=record,
                     changes=diff({}, {"recorded_at": recorded_at, **fields}))
    return record


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
    with transaction.atomic():
        gas = BloodGas.objects.create(
            patient=patient, sampled_at=sampled_at, paco2_mmhg=converted["paco2"], pao2_mmhg=converted["pao2"],
            ph=ph, hco3=hco3, lactate=lactate, sao2=sao2, fio2=fio2, unit_entered=unit,
        )
        audit_record(actor=by, action=AuditAction.CREATE, study=patient.study, obj=gas,
                     changes=diff({}, snapshot(gas, ("sampled_at", "paco2_mmhg", "pao2_mmhg", "ph", "hco3", "lactate",
                                                     "sao2", "fio2", "unit_entered"))))
    return gas


# --- clinician overrides and rater annotations -------------------------------------------------


def current_override(*, clip: ZoneClip) -> ScoreOverride | None:
    """The clip's effective override: the latest one."""
    return ScoreOverride.objects.filter(clip=clip).order_by("-at", "-pk").first()


def score_override_create(*, clip: ZoneClip, score: Any, reason: str, by: Any) -> ScoreOverride:
    """A clinician or study admin sets a zone's score (0-3) with a reason; the latest override wins
    and earlier ones stay as history. Audited with the previous effective score."""
    study = clip.exam.study
    permissions.require_write(by, study)
    try:
        value = int(score)
    except (TypeError, ValueError):
        raise ServiceError(f"score {score!r} is not an integer 0-3", code="bad_score") from None
    if isinstance(score, float) and score != value or not 0 <= value <= 3:
        raise ServiceError(f"score {score!r} is outside 0-3 (Soldati scale)", code="bad_score")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("an override needs a reason", code="missing_reason")
    from scoring.models import ClipScore

    previous = current_override(clip=clip)
    ai = (ClipScore.objects.filter(clip=clip).order_by("-model_version__is_active", "-created_at", "-pk")
          .values_list("score", flat=True).first())
    with transaction.atomic():
        override = ScoreOverride.objects.create(clip=clip, score=value, reason=reason, by=by)
        audit_record(actor=by, action=AuditAction.OVERRIDE, study=study, obj=clip, changes={
            "score": {"old": previous.score if previous else ai, "new": value},
            "source": {"old": "override" if previous else ("ai" if ai is not None else None), "new": "override"},
            "reason": {"old": previous.reason if previous else None, "new": reason},
        })
    return override


def annotation_set(*, clip: ZoneClip, rater: str, by: Any, score: int | None = None,
                   findings: dict[str, Any] | None = None, comment: str = "") -> tuple[ZoneAnnotation, bool]:
    """Record (or replace) a rater's reading of a clip. Returns (annotation, created)."""
    study = clip.exam.study
    permissions.require_write(by, study)
    rater = (rater or "").strip()
    if not rater or len(rater) > 64:
        raise ServiceError("a rater name of 1-64 characters is required", code="bad_rater")
    if rater == "clinician-override":
        raise ServiceError("'clinician-override' is reserved for score overrides", code="bad_rater")
    if score is not None and not 0 <= int(score) <= 3:
        raise ServiceError(f"score {score!r} is outside 0-3", code="bad_score")
    existing = ZoneAnnotation.objects.filter(clip=clip, rater=rater).first()
    new = {"score": score, "findings": findings or {}, "comment": comment}
    if existing is not None:
        changes = diff({"score": existing.score, "findings": existing.findings, "comment": existing.comment}, new)
        if not changes:
            return existing, False
    with transaction.atomic():
        annotation, created = ZoneAnnotation.objects.update_or_create(
            clip=clip, rater=rater, defaults={**new, "created_by": by})
        audit_record(actor=by, action=AuditAction.CREATE if created else AuditAction.UPDATE, study=study,
                     obj=annotation, changes=diff({}, new) if created else changes)
    return annotation, created
