"""QIDO-RS (PS3.18 section 10.6): the user's exams as DICOM studies, their clips as series.

An exam is a DICOM study: its Study Instance UID is ``Exam.study_instance_uid`` (received
instances) or, for uploads, that of its ready clips. Exams without any UID (videos kept as sent)
are no DICOM study and are not listed. A series is the ready clips of an exam that share a Series
Instance UID (``clip.meta``); a clip without one is a series of its own, with a UID derived from
the study's secret. Only the studies the user belongs to are searched, and identity follows the
role: clinicians and study admins see the patient's name and hospital number, researchers the
pseudonym code as both PatientName and PatientID, and no dates (``patients.records.chrono``).
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.uid import generate_uid

from lusweb.errors import ServiceError
from patients.imaging.models import ClipStatus, ZoneClip
from patients.records import chrono
from patients.records.models import Exam, Patient
from patients.studies import permissions
from patients.studies.models import Membership, Role, Study

STUDY_FIELDS = ("StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "PatientName", "PatientID",
                "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")
STUDY_OPTIONAL = ("StudyDescription", "PatientSex")
SERIES_FIELDS = ("Modality", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
                 "NumberOfSeriesRelatedInstances")
SERIES_OPTIONAL = ("Manufacturer", "ManufacturerModelName")
CONTROL = frozenset({"limit", "offset", "includefield", "fuzzymatching", "study"})
STUDY_KEYS = frozenset({"PatientID", "PatientName", "StudyDate", "StudyInstanceUID", "ModalitiesInStudy"})
SERIES_KEYS = STUDY_KEYS | {"SeriesInstanceUID", "Modality"}
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Query:
    """A parsed QIDO request: matching keys by keyword, the page, the attributes to add."""

    match: Mapping[str, str]
    limit: int
    offset: int
    include: frozenset[str]


def keyword_of(key: str) -> str:
    """A query key as a keyword: ``PatientID`` or its tag ``00100020``."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        return keyword_for_tag(int(key, 16)) or key
    return key


def query_parse(params: Mapping[str, list[str]], *, keys: frozenset[str]) -> Query:
    """Refuse (400) keys this server cannot match, bad pages and repeated keys."""
    match: dict[str, str] = {}
    include: set[str] = set()
    for raw, values in params.items():
        if raw == "includefield":
            include.update(keyword_of(v.strip()) for value in values for v in value.split(","))
            continue
        if raw in CONTROL:
            continue
        key = keyword_of(raw)
        if key not in keys:
            raise ServiceError(f"matching on {raw} is not supported; supported: {', '.join(sorted(keys))}",
                               code="unsupported_key")
        if len(values) != 1:
            raise ServiceError(f"{raw} given more than once", code="bad_query")
        match[key] = values[0]
    return Query(match, _int(params, "limit", 100, MAX_LIMIT), _int(params, "offset", 0, None), frozenset(include))


def _int(params: Mapping[str, list[str]], name: str, default: int, top: int | None) -> int:
    raw = (params.get(name) or [str(default)])[-1]
    if not raw.isdigit():
        raise ServiceError(f"{name} must be a whole number >= 0", code="bad_query")
    return min(int(raw), top) if top is not None else int(raw)


def _wild(field: str, value: str, *, fold: bool = False) -> Q:
    """DICOM wildcard matching (``*`` any run, ``?`` one character) of one field."""
    if "*" not in value and "?" not in value:
        return Q(**{f"{field}__iexact" if fold else field: value})
    pattern = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value) + "$"
    return Q(**{f"{field}__iregex" if fold else f"{field}__regex": pattern})


def _day_range(value: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``YYYYMMDD``, ``A-B``, ``A-`` or ``-B`` as local start (inclusive) and end (exclusive)."""
    low, sep, high = value.partition("-")
    if not sep:
        high = low

    def day(text: str) -> dt.date | None:
        if not text:
            return None
        try:
            return dt.datetime.strptime(text, "%Y%m%d").date()
        except ValueError as exc:
            raise ServiceError(f"StudyDate {value!r} is not YYYYMMDD or a range of them", code="bad_query") from exc

    start, end = day(low), day(high)
    zone = timezone.get_current_timezone()
    return (dt.datetime.combine(start, dt.time(), zone) if start else None,
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone) if end else None)


def roles_of(user: Any) -> dict[int, str]:
    """The user's role in each study it may read."""
    if user.is_superuser:
        return dict.fromkeys(Study.objects.values_list("pk", flat=True), Role.STUDY_ADMIN)
    return dict(Membership.objects.filter(user=user).values_list("study_id", "role"))


def exams_matching(*, user: Any, match: Mapping[str, str], study: int | None = None) -> QuerySet[Exam]:
    """The user's exams that are DICOM studies and match the keys (PatientID, PatientName,
    StudyDate, StudyInstanceUID, ModalitiesInStudy), newest first."""
    roles = roles_of(user)
    if study is not None:
        roles = {study: roles[study]} if study in roles else {}
    who = {pk for pk, role in roles.items() if role in permissions.IDENTIFYING_ROLES}
    ready = Q(clips__status=ClipStatus.READY) & ~Q(clips__study_instance_uid="")
    qs = Exam.objects.filter(patient__study_id__in=list(roles)).filter(~Q(study_instance_uid="") | ready)
    if "StudyInstanceUID" in match:
        uids = [u for u in match["StudyInstanceUID"].replace("\\", ",").split(",") if u]
        qs = qs.filter(Q(study_instance_uid__in=uids) | Q(ready, clips__study_instance_uid__in=uids))
    if "PatientID" in match:
        value = match["PatientID"]
        shown = Q(patient__hospital_number="") & _wild("patient__code", value) | _wild("patient__hospital_number", value)
        qs = qs.filter(Q(patient__study_id__in=who) & shown | ~Q(patient__study_id__in=who) & _wild("patient__code", value))
    if "PatientName" in match:
        value = match["PatientName"]
        qs = qs.filter(Q(patient__study_id__in=who) & _wild("patient__name", value, fold=True)
                       | ~Q(patient__study_id__in=who) & _wild("patient__code", value, fold=True))
    if "StudyDate" in match:
        start, end = _day_range(match["StudyDate"])
        qs = qs.filter(patient__study_id__in=who)  # researchers see no dates: nothing of theirs matches one
        qs = qs.filter(acquired_at__gte=start) if start else qs
        qs = qs.filter(acquired_at__lt=end) if end else qs
    if match.get("ModalitiesInStudy", "US") not in ("US", "*"):
        qs = qs.none()
    ready_clips = ZoneClip.objects.order_by("zone", "pk")
    return (qs.distinct().select_related("patient__study").prefetch_related(Prefetch("clips", queryset=ready_clips))
            .order_by("-acquired_at", "-pk"))


def exam_uid(exam: Exam) -> str:
    if exam.study_instance_uid:
        return exam.study_instance_uid
    return next((c.study_instance_uid for c in exam.clips.all() if c.study_instance_uid), "")


def series_of(exam: Exam) -> list[tuple[str, list[ZoneClip]]]:
    """The exam's ready clips by Series Instance UID, in the order of their first zone."""
    groups: dict[str, list[ZoneClip]] = {}
    for clip in exam.clips.all():
        uid = str((clip.meta or {}).get("series_instance_uid") or "") or generate_uid(
            prefix=None, entropy_srcs=[exam.patient.study.secret, "clip", str(clip.pk)])
        groups.setdefault(uid, []).append(clip)
    return list(groups.items())


def element(keyword: str, value: Any) -> tuple[str, dict[str, Any]]:
    """One attribute in the DICOM JSON model (PS3.18 F.2): tag and ``{"vr", "Value"}``."""
    vr = dictionary_VR(keyword)
    tag = f"{tag_for_keyword(keyword):08X}"
    if value in (None, ""):
        return tag, {"vr": vr}
    if vr == "PN":
        return tag, {"vr": vr, "Value": [{"Alphabetic": str(value)}]}
    return tag, {"vr": vr, "Value": [value]}


def patient_shown(patient: Patient, role: str) -> tuple[str, str]:
    """PatientName and PatientID as this role may see them."""
    if role in permissions.IDENTIFYING_ROLES:
        return patient.name or patient.code, patient.hospital_number or patient.code
    return patient.code, patient.code


def study_attributes(exam: Exam, role: str) -> dict[str, Any]:
    """Every attribute this server answers for an exam as a DICOM study, by keyword."""
    name, pid = patient_shown(exam.patient, role)
    dates = role in permissions.IDENTIFYING_ROLES
    when = chrono.local(exam.acquired_at)
    series = series_of(exam)
    return {
        "StudyDate": when.strftime("%Y%m%d") if dates else None, "StudyTime": when.strftime("%H%M%S") if dates else None,
        "AccessionNumber": None, "ModalitiesInStudy": "US", "PatientName": name, "PatientID": pid,
        "StudyInstanceUID": exam_uid(exam), "StudyID": str(exam.pk)[:16],
        "NumberOfStudyRelatedSeries": len(series), "NumberOfStudyRelatedInstances": sum(len(c) for _u, c in series),
        "StudyDescription": f"lung ultrasound, {exam.protocol}", "PatientSex": exam.patient.sex,
    }


def render(attributes: Mapping[str, Any], fields: tuple[str, ...], optional: tuple[str, ...],
           include: frozenset[str]) -> dict[str, Any]:
    """The chosen attributes as a DICOM JSON object, tags in ascending order."""
    chosen = set(fields) | {k for k in optional if k in include or "all" in include}
    return dict(sorted(element(k, attributes[k]) for k in chosen))


def _page(rows: list[Any], query: Query) -> list[Any]:
    return rows[query.offset:query.offset + query.limit]


def studies_search(*, user: Any, params: Mapping[str, list[str]], study: int | None = None) -> list[dict[str, Any]]:
    """``GET /dicomweb/studies``: the matching studies as DICOM JSON objects."""
    query = query_parse(params, keys=STUDY_KEYS)
    roles = roles_of(user)
    exams = exams_matching(user=user, match=query.match, study=study)[query.offset:query.offset + query.limit]
    return [render(study_attributes(e, roles[e.patient.study_id]), STUDY_FIELDS, STUDY_OPTIONAL, query.include)
            for e in exams]


def series_search(*, user: Any, params: Mapping[str, list[str]], study_uid: str | None = None,
                  study: int | None = None) -> list[dict[str, Any]]:
    """``GET /dicomweb/series`` and ``/dicomweb/studies/<uid>/series``: the matching series,
    each with its study's attributes when searched across studies."""
    query = query_parse(params, keys=SERIES_KEYS)
    match = dict(query.match)
    if study_uid is not None:
        match["StudyInstanceUID"] = study_uid
    wanted_series, modality = match.pop("SeriesInstanceUID", None), match.pop("Modality", "US")
    roles = roles_of(user)
    rows: list[dict[str, Any]] = []
    for exam in exams_matching(user=user, match=match, study=study)[:MAX_LIMIT]:
        study_part = {} if study_uid is not None else study_attributes(exam, roles[exam.patient.study_id])
        for number, (uid, clips) in enumerate(series_of(exam), start=1):
            if (wanted_series is not None and uid not in wanted_series.split(",")) or modality not in ("US", "*"):
                continue
            first = clips[0]
            attributes = {"Modality": "US", "SeriesInstanceUID": uid, "SeriesNumber": number,
                          "SeriesDescription": "zone " + ", ".join(c.zone for c in clips),
                          "NumberOfSeriesRelatedInstances": len(clips), "Manufacturer": first.manufacturer,
                          "ManufacturerModelName": first.model_name, **study_part}
            fields = SERIES_FIELDS + (("StudyInstanceUID", "PatientID", "PatientName", "StudyDate")
                                      if study_part else ())
            rows.append(render(attributes, fields, SERIES_OPTIONAL, query.include))
    return _page(rows, query)
