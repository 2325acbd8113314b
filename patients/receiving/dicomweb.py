"""STOW-RS (PS3.18 section 10.5): DICOM instances posted over HTTP, each filed like a C-STORE.

``POST /dicomweb/studies`` (or ``/dicomweb/studies/<StudyInstanceUID>``, where every instance
must belong to that study) with ``Content-Type: multipart/related; type="application/dicom"``.
Each part goes through ``patients.receiving.services.instance_receive`` (``via="stow"``): the
same mapping and ingest as the DICOM receiver, a clip or an inbox item, or nothing stored and a
failure entry. The answer is the Store Instances Response Module in DICOM JSON: 200 when every
instance was stored, 202 when some failed, 409 when all failed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.http import parse_header_parameters
from pydicom import dcmread

from lusweb.errors import ServiceError
from patients.receiving.qido import element
from patients.receiving.services import instance_receive
from patients.studies import permissions
from patients.studies.models import Membership, Study

DICOM = "application/dicom"
#: PS3.18 / PS3.4 failure reasons (Failure Reason, 0008,1197).
PROCESSING_FAILURE = 0x0110
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
_REASONS = {"too_large": OUT_OF_RESOURCES, "permission_denied": NOT_AUTHORIZED}


class MediaTypeError(ServiceError):
    status = 415


@dataclass(frozen=True)
class Outcome:
    """One part's result: stored (with what it became) or failed with a reason."""

    sop_class: str
    sop_instance: str
    failure: int | None = None
    message: str = ""
    kind: str = ""


def boundary_of(content_type: str) -> str:
    """The multipart boundary; 415 for anything but ``multipart/related`` of ``application/dicom``."""
    media, params = parse_header_parameters(content_type or "")
    if media.lower() != "multipart/related":
        raise MediaTypeError(f"expected multipart/related; type=\"{DICOM}\", got {media or 'none'}",
                             code="unsupported_media_type")
    kind = params.get("type", DICOM).lower()
    if kind != DICOM:
        raise MediaTypeError(f"only {DICOM} parts are accepted (type={kind!r}); metadata and bulk data "
                             "requests are not supported", code="unsupported_media_type")
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70:
        raise ServiceError("the multipart request names no valid boundary", code="malformed_multipart")
    return boundary


def parts_split(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body (RFC 2046), headers lower-cased; 400 when it is malformed."""
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2:start] != b"\r\n"):
        raise ServiceError("the body has no multipart boundary line", code="malformed_multipart")
    parts: list[tuple[dict[str, str], bytes]] = []
    pos = start + len(delimiter)
    while body[pos:pos + 2] != b"--":
        line_end = body.find(b"\r\n", pos)
        following = body.find(b"\r\n" + delimiter, line_end + 2 if line_end >= 0 else len(body))
        if line_end < 0 or following < 0 or body[pos:line_end].strip(b" \t"):
            raise ServiceError("the multipart body is cut short or has no closing boundary",
                               code="malformed_multipart")
        parts.append(_part(body[line_end + 2:following]))
        pos = following + 2 + len(delimiter)
    if not parts:
        raise ServiceError("the multipart body holds no instances", code="malformed_multipart")
    return parts


def _part(raw: bytes) -> tuple[dict[str, str], bytes]:
    if raw.startswith(b"\r\n"):
        return {}, raw[2:]
    head, sep, data = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ServiceError("a part has no blank line after its headers", code="malformed_multipart")
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise ServiceError(f"a part has a malformed header line {line[:60]!r}", code="malformed_multipart")
        headers[name.strip().lower()] = value.strip()
    return headers, data


def target_study(user: Any, study_param: str | None) -> Study:
    """The study the instances go to: ``?study=<id>``, else the one study the user writes to.
    Outsiders get 404, researchers 403 (``permissions``)."""
    if study_param:
        if not study_param.isdigit():
            raise ServiceError("study must be a study id", code="bad_study")
        study, _role = permissions.visible_study(user, int(study_param))
        permissions.require_write(user, study)
        return study
    memberships = Membership.objects.filter(user=user, role__in=permissions.WRITE_ROLES, study__archived=False)
    studies = list(Study.objects.filter(pk__in=memberships.values("study_id"))[:2])
    if len(studies) == 1:
        return studies[0]
    if not studies:
        raise PermissionDenied("You write to no study: ask a study admin for a clinician's role.")
    raise ServiceError("you write to more than one study: name one with ?study=<id>", code="missing_study")


def _uids(data: bytes) -> tuple[str, str, str]:
    """SOP Class, SOP Instance and Study Instance UIDs of a part, or empty strings."""
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True,
                     specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"])
        values = [str(ds.get(k, "") or "")[:64] for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")]
    except Exception:  # noqa: BLE001 - pydicom raises assorted errors on garbage: the part is unreadable
        return "", "", ""
    return values[0], values[1], values[2]


def part_store(*, study: Study, headers: dict[str, str], data: bytes, study_uid: str | None, by: Any) -> Outcome:
    """File one part through the receiver; every refusal becomes a failure entry, nothing stored."""
    sop_class, sop_instance, uid = _uids(data)
    media = parse_header_parameters(headers.get("content-type", DICOM))[0].lower()
    if media != DICOM:
        return Outcome(sop_class, sop_instance, CANNOT_UNDERSTAND, f"a part of type {media} is no DICOM instance")
    if not sop_instance:
        return Outcome(sop_class, sop_instance, CANNOT_UNDERSTAND, "the part is no readable DICOM instance")
    if study_uid is not None and uid != study_uid:
        return Outcome(sop_class, sop_instance, DOES_NOT_MATCH,
                       f"the instance belongs to study {uid or '(none)'}, not {study_uid}")
    try:
        received = instance_receive(study=study, data=data, via="stow", by=by)
    except ServiceError as exc:
        reason = _REASONS.get(exc.code, PROCESSING_FAILURE if exc.status >= 500 else CANNOT_UNDERSTAND)
        return Outcome(sop_class, sop_instance, reason, exc.message)
    except PermissionDenied as exc:
        return Outcome(sop_class, sop_instance, NOT_AUTHORIZED, str(exc))
    return Outcome(sop_class, sop_instance, kind=received.kind)


def stow(*, user: Any, content_type: str, body: bytes, study_param: str | None,
         study_uid: str | None = None) -> tuple[int, dict[str, Any], list[Outcome]]:
    """Store a STOW-RS request's instances: the HTTP status, the DICOM JSON answer, the outcomes."""
    boundary = boundary_of(content_type)
    study = target_study(user, study_param)
    parts = parts_split(body, boundary)
    outcomes = [part_store(study=study, headers=h, data=d, study_uid=study_uid, by=user) for h, d in parts]
    stored = [o for o in outcomes if o.failure is None]
    failed = [o for o in outcomes if o.failure is not None]
    answer: dict[str, Any] = {}
    if stored:
        answer[element("ReferencedSOPSequence", None)[0]] = {"vr": "SQ", "Value": [
            dict(sorted([element("ReferencedSOPClassUID", o.sop_class), element("ReferencedSOPInstanceUID",
                                                                                o.sop_instance)])) for o in stored]}
    if failed:
        answer[element("FailedSOPSequence", None)[0]] = {"vr": "SQ", "Value": [
            dict(sorted([element("ReferencedSOPClassUID", o.sop_class),
                         element("ReferencedSOPInstanceUID", o.sop_instance), element("FailureReason", o.failure)]))
            for o in failed]}
    status = 200 if not failed else 202 if stored else 409
    return status, dict(sorted(answer.items())), outcomes


def body_limit() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def study_uid_checked(uid: str) -> str:
    if not uid or len(uid) > 64 or not all(c.isdigit() or c == "." for c in uid):
        raise Http404("Not found")
    return uid
