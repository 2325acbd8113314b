"""Study and membership writes. Views, serializers and importers call these.

Every function takes keyword arguments only, validates before touching the database and audits
what it changes.
"""
from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from pydicom.datadict import dictionary_VR, tag_for_keyword

from lusweb.errors import ServiceError, check_settable
from patients.audit.models import AuditAction
from patients.audit.services import audit_record, diff, snapshot, update_audited
from patients.studies import permissions
from patients.studies.models import DicomPatientMatch, Membership, Role, Study
from patients.studies.protocols import validate_protocol

#: Receiving DICOM (``lus_dicom_scp``, STOW-RS): who may send and how instances map to records.
DICOM_SETTINGS = ("dicom_calling_aets", "dicom_patient_match", "dicom_zone_tag", "dicom_zone_pattern")
STUDY_AUDIT_FIELDS = ("name", "protocol", "description", "archived", "deidentify", "keep_original", *DICOM_SETTINGS)
STUDY_SETTINGS = ("name", "protocol", "description", "deidentify", "keep_original", *DICOM_SETTINGS)
#: Data element VRs whose value is no text a zone pattern could read.
_NO_TEXT_VRS = frozenset({"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"})


def _clean_study_name(name: Any, *, exclude: Study | None = None) -> str:
    """The stripped name; refuses an empty one or one another study already has."""
    name = str(name).strip()
    if not name:
        raise ServiceError("a study needs a name", code="bad_name")
    clash = Study.objects.filter(name=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ServiceError(f"a study named {name!r} already exists", code="duplicate")
    return name


def study_create(*, name: str, protocol: str, description: str = "", created_by: Any, deidentify: bool = True,
                 keep_original: bool = False) -> Study:
    """Create a study; its creator becomes its study admin. A new random secret keys its pseudonyms."""
    if not permissions.can_create_study(created_by):
        raise PermissionDenied("You may not create studies.")
    return _study_create(name=name, protocol=protocol, description=description, created_by=created_by,
                         deidentify=deidentify, keep_original=keep_original)


def _study_create(*, name: str, protocol: str, description: str, created_by: Any, deidentify: bool,
                  keep_original: bool) -> Study:
    validate_protocol(protocol)
    name = _clean_study_name(name)
    with transaction.atomic():
        study = Study.objects.create(name=name, protocol=protocol, description=description,
                                     created_by=created_by, deidentify=deidentify, keep_original=keep_original)
        Membership.objects.create(study=study, user=created_by, role=Role.STUDY_ADMIN)
        audit_record(actor=created_by, action=AuditAction.CREATE, study=study, obj=study,
                     changes=diff({}, snapshot(study, STUDY_AUDIT_FIELDS)))
    return study


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
    permissions.roles_forget(by)
    return study


def study_update(*, study: Study, by: Any, **fields: Any) -> Study:
    """Change a study's name, default protocol (for new exams), description, ``deidentify``,
    ``keep_original`` or its DICOM receiving settings (``DICOM_SETTINGS``: allowed calling AE
    titles, patient match, zone tag and pattern) (study admins). Audited with old and new values."""
    permissions.require_admin(by, study)
    check_settable(fields, STUDY_SETTINGS)
    if "protocol" in fields:
        validate_protocol(fields["protocol"])
    if "name" in fields:
        fields["name"] = _clean_study_name(fields["name"], exclude=study)
    _clean_dicom_settings(study, fields)
    update_audited(study, fields=fields, tracked=STUDY_AUDIT_FIELDS, study=study, by=by)
    return study


def _clean_dicom_settings(study: Study, fields: dict[str, Any]) -> None:
    """Check (and normalise in place) the DICOM receiving settings among ``fields``."""
    if "dicom_calling_aets" in fields:
        fields["dicom_calling_aets"] = _clean_calling_aets(study, fields["dicom_calling_aets"])
    if "dicom_patient_match" in fields and fields["dicom_patient_match"] not in DicomPatientMatch.values:
        raise ServiceError(f"dicom_patient_match must be one of {', '.join(DicomPatientMatch.values)}",
                           code="bad_patient_match")
    if "dicom_zone_tag" in fields:
        fields["dicom_zone_tag"] = _clean_zone_tag(fields["dicom_zone_tag"])
    if "dicom_zone_pattern" in fields:
        pattern = str(fields["dicom_zone_pattern"] or "")
        if not pattern.strip() or len(pattern) > 200:
            raise ServiceError("the zone pattern must be a regular expression of 1 to 200 characters",
                               code="bad_zone_pattern")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ServiceError(f"the zone pattern is not a regular expression: {exc}", code="bad_zone_pattern") from exc


def ae_title_problem(title: str) -> str | None:
    """Why ``title`` is no DICOM AE title (1-16 printable ASCII characters, no backslash), or None."""
    if not 1 <= len(title) <= 16:
        return f"AE title {title!r} must have 1 to 16 characters"
    if "\\" in title or any(not 32 <= ord(c) <= 126 for c in title):
        return f"AE title {title!r} may hold printable ASCII characters only, no backslash or control character"
    return None


def _clean_calling_aets(study: Study, titles: Any) -> list[str]:
    """The allow-list stripped and without repeats; an AE title belongs to one study only (the
    receiver files what a sender sends in the one study that allows it)."""
    if not isinstance(titles, list | tuple) or not all(isinstance(t, str) for t in titles):
        raise ServiceError("dicom_calling_aets must be a list of AE titles", code="bad_calling_aets")
    cleaned = list(dict.fromkeys(t.strip() for t in titles))
    for title in cleaned:
        problem = ae_title_problem(title)
        if problem:
            raise ServiceError(problem, code="bad_calling_aets")
    for other in Study.objects.exclude(pk=study.pk).exclude(dicom_calling_aets=[]).only("name", "dicom_calling_aets"):
        taken = sorted(set(cleaned) & {str(t).strip() for t in other.dicom_calling_aets or []})
        if taken:
            raise ServiceError(f"AE title {', '.join(taken)} already sends to study {other.name!r}; an AE title "
                               "sends to one study only", code="calling_aet_taken")
    return cleaned


def _clean_zone_tag(keyword: Any) -> str:
    keyword = str(keyword or "").strip()
    tag = tag_for_keyword(keyword) if keyword else None
    if tag is None:
        raise ServiceError(f"{keyword!r} is not a DICOM keyword (such as SeriesDescription or ImageComments)",
                           code="bad_zone_tag")
    if dictionary_VR(tag) in _NO_TEXT_VRS:
        raise ServiceError(f"{keyword} holds no text to read a zone from", code="bad_zone_tag")
    return keyword


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
    permissions.roles_forget(user)
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
    permissions.roles_forget(membership.user)
